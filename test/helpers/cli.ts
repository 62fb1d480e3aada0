import { type SpawnOptions, spawn } from "node:child_process";
import { packagePath } from "../../core/package-root.js";

/** The `task` command as users run it: bin/task.js over the compiled dist/ (`npm test` builds first). */
export const TASK_BIN = packagePath("bin", "task.js");

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `task ...args` to completion in `cwd` and collects its output. */
export function task(args: string[], options: SpawnOptions & { cwd: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const { TASKFRAME_DATA: _data, TASKFRAME_HUB: _hub, ...inherited } = process.env;
    const child = spawn(process.execPath, [TASK_BIN, ...args], {
      ...options,
      env: { ...inherited, NO_COLOR: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => stdout.push(d));
    child.stderr?.on("data", (d: Buffer) => stderr.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString("utf8") }),
    );
  });
}
