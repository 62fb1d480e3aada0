import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../core/package-root.js";
import { task } from "./helpers/cli.js";

// The Java SDK (sdks/java) is built with the JDK alone; javac is slow on small machines: generous timeouts.
const root = packagePath(".");
let dir: string;
let built = false;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-java-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a command to completion in the repository, with its stdout and stderr together. */
function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const output: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => output.push(d));
    child.stderr.on("data", (d: Buffer) => output.push(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output: Buffer.concat(output).toString("utf8") }));
  });
}

/** The SDK's jar and adapter, for the tests that run workers (test.sh builds them too). */
async function ensureBuilt(): Promise<void> {
  if (built) return;
  const result = await run("bash", [packagePath("sdks/java/build.sh")]);
  expect(result.code, result.output).toBe(0);
  built = true;
}

describe("the Java SDK", () => {
  it("passes its own tests: JSON, envelopes, chunked bodies, errors, a fake sidecar, SIGTERM", async () => {
    const result = await run("bash", [packagePath("sdks/java/test.sh")]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/^\d+ passed, 0 failed$/m);
    built = true;
  }, 600_000);

  it("serves the example pipeline's handler tasks, started by task run from workers:", async () => {
    await ensureBuilt();
    const data = join(dir, "example");
    const result = await task(["run", "examples/java/pipeline.yaml", "--data", data], { cwd: root });
    const table = result.stdout.toString();
    expect(result.code, `${table}\n${result.stderr}`).toBe(0);
    for (const name of ["count", "shout", "flaky", "digest"]) {
      expect(table).toMatch(new RegExp(`^${name}\\s+SUCCEEDED`, "m"));
    }
    expect(table).toMatch(/^flaky\s+SUCCEEDED\s+2\/3/m);
    const count = await task(["logs", "count", "--data", data], { cwd: root });
    expect(count.stdout.toString()).toContain("counted 11 words");
    const flaky = await task(["logs", "flaky", "--data", data], { cwd: root });
    expect(flaky.stdout.toString()).toContain("succeeded on attempt 2");
    expect(flaky.stderr).toContain("IllegalStateException: attempt 1 fails on purpose");
    const workerLogs = await readdir(join(data, "workers"));
    expect(workerLogs).toEqual(["java-0.log"]);
    expect(await readFile(join(data, "workers", "java-0.log"), "utf8")).toContain("registered as");
  }, 300_000);

  it("has a conformance adapter whose behaviours end as the suite expects, against a real sidecar", async () => {
    await ensureBuilt();
    const data = join(dir, "conformance");
    const result = await task(["run", "sdks/java/test/conformance-smoke.yaml", "--data", data], {
      cwd: root,
    });
    const table = result.stdout.toString();
    expect(result.code, `${table}\n${result.stderr}`).toBe(1); // some cases fail on purpose
    // name, state, attempts, the detail column (after the duration)
    const expected: Array<[string, string, string, string]> = [
      ["echo", "SUCCEEDED", "1/1", ""],
      ["steps", "SUCCEEDED", "1/1", ""],
      ["retried", "SUCCEEDED", "2/3", ""],
      ["never", "FAILED", "1/3", "failed: NonRetryableException: not again (not retryable)"],
      ["later", "SUCCEEDED", "2/2", ""],
      ["waits", "TIMED_OUT", "1/1", "timed out: deadline exceeded (Cancelled: deadline exceeded)"],
      [
        "unknown-step",
        "FAILED",
        "1/1",
        "failed: NonRetryableException: unknown step [dance] (not retryable)",
      ],
    ];
    const rows = new Map(
      table
        .split("\n")
        .map((line) => line.trim().split(/\s+/))
        .map(([name = "", state, attempts, _duration, ...detail]) => [
          name,
          [state, attempts, detail.join(" ")],
        ]),
    );
    for (const [name, state, attempts, detail] of expected) {
      const row = rows.get(name);
      if (name === "waits") {
        // whether the worker's own "Cancelled" answer arrives before the sidecar stops waiting for it
        // depends on the machine's load; the state and the reason do not
        expect(row?.slice(0, 2), name).toEqual([state, attempts]);
        expect(String(row?.[2]), name).toMatch(/^timed out: deadline exceeded\b/);
      } else expect(row, name).toEqual([state, attempts, detail]);
    }
    const steps = await task(["logs", "steps", "--data", data], { cwd: root });
    expect(steps.stdout.toString()).toBe("to stdout\n");
    expect(steps.stderr).toContain("to stderr");
    expect(steps.stderr).toContain("[taskframe] progress 50% half");
    const retried = await task(["logs", "retried", "--data", data], { cwd: root });
    expect(retried.stdout.toString() + retried.stderr).toContain("[taskframe] ValueError: first attempt");
  }, 300_000);
});
