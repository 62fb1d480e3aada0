import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../core/package-root.js";
import { task } from "./helpers/cli.js";

/*
 * The Go SDK (sdks/go): its own unit and end-to-end tests (against a fake
 * sidecar), then the example worker (examples/go) serving a pipeline that
 * `task run` drives to the end. Needs a Go toolchain (1.19+), no network:
 * the SDK uses the standard library only. The first build takes a while.
 */

const GO_SDK = packagePath("sdks", "go");

function hasGo(): boolean {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

interface Ran {
  code: number | null;
  output: string;
}

/** Runs a command to completion, stdout and stderr together; never fetches modules. */
function run(command: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, GOPROXY: "off", GOFLAGS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.on("data", (d: Buffer) => chunks.push(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output: Buffer.concat(chunks).toString("utf8") }));
  });
}

describe("the Go SDK", () => {
  it("has a Go toolchain to build with (apt-get install golang-go; see README)", () => {
    expect(hasGo()).toBe(true);
  });

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-go-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("passes its tests (envelopes, error mapping, a worker against a fake sidecar)", async () => {
    const result = await run("go", ["test", "-count=1", "./..."], GO_SDK);
    expect(result.output).not.toContain("FAIL");
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/ok\s+taskframe\/sdk/);
  }, 300_000);

  it("is vetted and gofmt-clean, the example and the conformance adapter included", async () => {
    for (const cwd of [GO_SDK, packagePath("examples", "go")]) {
      const vet = await run("go", ["vet", "./..."], cwd);
      expect(vet.code, vet.output).toBe(0);
      const fmt = await run("gofmt", ["-l", "."], cwd);
      expect(fmt.code, fmt.output).toBe(0);
      expect(fmt.output.trim(), "files gofmt would change").toBe("");
    }
  }, 300_000);

  it("serves the example pipeline started by task run: needs, a retry, logs", async () => {
    const data = join(dir, "data");
    const result = await task(["run", "examples/go/pipeline.yaml", "--data", data], {
      cwd: packagePath("."),
    });
    const stdout = result.stdout.toString();
    expect(result.code, `${stdout}\n${result.stderr}`).toBe(0);
    expect(stdout).toMatch(/count\s+SUCCEEDED\s+1\/3/);
    expect(stdout).toMatch(/shout\s+SUCCEEDED\s+1\/3/);
    expect(stdout).toMatch(/flaky\s+SUCCEEDED\s+2\/3/);
    expect(stdout).toMatch(/SUCCEEDED in .*: 3 succeeded/);

    const count = await task(["logs", "count", "--data", data], { cwd: packagePath(".") });
    expect(count.stdout.toString()).toContain("counted 11 words");
    const flaky = await task(["logs", "flaky", "--data", data], { cwd: packagePath(".") });
    expect(flaky.stdout.toString()).toContain("succeeded on attempt 2");
    // the first attempt's error, with the Go error's type
    expect(flaky.stderr).toContain("errorString: attempt 1 fails on purpose");
    const shout = await task(["logs", "shout", "--data", data], { cwd: packagePath(".") });
    expect(shout.stderr).toContain("progress 50% shouting");
  }, 300_000);
});
