import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../core/package-root.js";
import { task } from "./helpers/cli.js";

/*
 * The Python SDK (sdks/python): its own unit and end-to-end tests, and the
 * example worker driven by `task run` through a pipeline's `workers:` map.
 */

interface Exit {
  code: number | null;
  output: string;
}

/** Runs a command to completion in the repository root, stdout and stderr together. */
function run(command: string, args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const { TASKFRAME_DATA: _data, TASKFRAME_HUB: _hub, TASKFRAME_SOCKET: _socket, ...env } = process.env;
    const child = spawn(command, args, { cwd: packagePath("."), env, stdio: ["ignore", "pipe", "pipe"] });
    const output: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => output.push(d));
    child.stderr.on("data", (d: Buffer) => output.push(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output: Buffer.concat(output).toString("utf8") }));
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-sdk-python-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the Python SDK", () => {
  it("passes its unit tests (python3 -m unittest discover -s sdks/python/tests)", async () => {
    const result = await run("python3", ["-m", "unittest", "discover", "-s", "sdks/python/tests"]);
    expect(result.output).toMatch(/\bOK\b/);
    expect(result.code, result.output).toBe(0);
  }, 180_000);

  it("serves the example pipeline under task run, logs included", async () => {
    const data = join(dir, "example");
    const cwd = packagePath(".");
    const result = await task(["run", "examples/python/pipeline.yaml", "--data", data, "--json"], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const { run: state, tasks } = JSON.parse(result.stdout.toString()) as {
      run: { state: string };
      tasks: { name: string; state: string; attempt: number }[];
    };
    expect(state.state).toBe("SUCCEEDED");
    expect(tasks.map((t) => [t.name, t.state]).sort()).toEqual([
      ["count", "SUCCEEDED"],
      ["flaky", "SUCCEEDED"],
      ["shout", "SUCCEEDED"],
    ]);
    expect(tasks.find((t) => t.name === "flaky")?.attempt).toBe(2);

    const count = await task(["logs", "count", "--data", data], { cwd });
    expect(count.stdout.toString()).toContain("counted 11 words");
    const flaky = await task(["logs", "flaky", "--data", data], { cwd });
    expect(flaky.stdout.toString()).toContain("succeeded on attempt 2");
    expect(flaky.stderr).toContain("RuntimeError: attempt 1 fails on purpose");
  }, 120_000);
});
