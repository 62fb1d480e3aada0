import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSuites } from "../conformance/src/suites.js";
import { packagePath } from "../core/package-root.js";
import { task } from "./helpers/cli.js";
import { TEST_NATS_URL } from "./helpers/cluster.js";
import { TEST_POSTGRES_URL } from "./helpers/databases.js";

/*
 * The Runner protocol's conformance suite (conformance/suites) against the
 * four SDKs' adapters, as CI runs it; and the runner itself, shown able to
 * fail: an adapter that answers wrongly, and stale known-failing lists.
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-conformance-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("task conformance", () => {
  it("passes every case for the TypeScript, Python, Go and Java SDKs, on hub and sidecar processes over Postgres and NATS", async () => {
    const cases = await loadSuites(packagePath("conformance/suites"));
    const result = await task(
      [
        "conformance",
        ...["--sdk", "typescript", "python", "go", "java"],
        ...["--postgres", TEST_POSTGRES_URL, "--nats", TEST_NATS_URL],
        ...["-q", "--logs", join(dir, "logs")],
      ],
      { cwd: packagePath(".") },
    );
    const matrix = result.stdout.toString();
    if (result.code !== 0) console.log(matrix, result.stderr);
    expect(result.code).toBe(0);
    for (const sdk of ["typescript", "python", "go", "java"]) {
      expect(matrix).toContain(`${sdk}: ${cases.length} passed, 0 failed`);
    }
  }, 900_000);

  it("passes every case for the reference SDK on the embedded hub and sidecar", async () => {
    const cases = await loadSuites(packagePath("conformance/suites"));
    const result = await task(["conformance", "--sdk", "typescript", "-q"], { cwd: packagePath(".") });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toContain(`typescript: ${cases.length} passed, 0 failed`);
  }, 300_000);

  const wrong = ["node", packagePath("test/fixtures/wrong-adapter.mjs")];
  const basics = ["--run", "basic-execution/*"];

  it("fails an adapter that answers wrongly, naming each case and what differed", async () => {
    const result = await task(["conformance", "--name", "wrong", ...basics, "-q", "--", ...wrong], {
      cwd: packagePath("."),
    });
    expect(result.code).toBe(1);
    const out = result.stdout.toString();
    expect(out).toMatch(/basic-execution\/returns-json\s+FAIL/);
    expect(out).toContain('t: output "<not JSON: wrong>", expected {"answer":42,"list":[1,"two",null]}');
    expect(out).toContain("t: output content type 'text/plain; charset=utf-8', expected 'application/json'");
    expect(out).toContain("t: ended SUCCEEDED (no detail), expected FAILED");
    expect(out).toMatch(/wrong: 0 passed, \d+ failed/);
  }, 120_000);

  it("accepts listed failures, and fails a listed case that passes (the list is stale)", async () => {
    const list = join(dir, "known-failing.txt");
    await writeFile(list, "# everything basic fails for this adapter\nbasic-execution/*\n");
    const listed = await task(
      ["conformance", "--name", "wrong", ...basics, "--known-failing", list, "-q", "--", ...wrong],
      { cwd: packagePath(".") },
    );
    expect(listed.code).toBe(0);
    expect(listed.stdout.toString()).toMatch(/wrong: 0 passed, 0 failed, \d+ known failing/);

    const stale = await task(
      [
        "conformance",
        "--name",
        "ts",
        "--run",
        "basic-execution/returns-text",
        "--known-failing",
        list,
        "-q",
        "--",
        "node",
        "dist/sdks/ts/conformance-adapter.js",
      ],
      { cwd: packagePath(".") },
    );
    expect(stale.code).toBe(1);
    expect(stale.stdout.toString()).toContain(
      "passes but is listed as known-failing: remove it from the list",
    );
  }, 120_000);

  it("says what is wrong with a bad invocation", async () => {
    const none = await task(["conformance"], { cwd: packagePath(".") });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("nothing to test: give --sdk NAME or an adapter command after --");
    const unknown = await task(["conformance", "--sdk", "cobol"], { cwd: packagePath(".") });
    expect(unknown.stderr).toContain("no SDK named 'cobol': expected one of typescript, python, go, java");
  });
});
