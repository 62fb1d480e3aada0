import { type ChildProcessByStdio, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";

export interface StartedCommand {
  child: ChildProcessByStdio<Writable, Readable, null>;
  /** Resolves on exit 0; rejects saying how it ended otherwise. */
  exited: Promise<void>;
}

/**
 * One step of a phase's pipeline: never through a shell, stdin and stdout
 * piped, stderr into the task's log. Killed (SIGTERM) when `signal` aborts.
 */
export function startCommand(
  label: string,
  argv: readonly string[],
  signal: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): StartedCommand {
  const [command, ...args] = argv;
  if (!command) throw new Error(`${label}: no command`);
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"], env, signal });
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.name === "AbortError")
        reject(new Error(`${label} stopped: ${String(signal.reason ?? "aborted")}`));
      else reject(new Error(`${label}: could not start ${command}: ${error.message}`));
    });
    child.once("close", (code, exitSignal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${label} (${argv.join(" ")}) ${exitSignal ? `was killed by ${exitSignal}` : `exited with code ${code}`}`,
          ),
        );
    });
  });
  // a command that stops reading its input early is its own business; its exit code tells
  child.stdin.on("error", () => {});
  return { child, exited };
}

export function countNewlines(chunk: Buffer): number {
  let count = 0;
  for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) count++;
  return count;
}

/** A pipe into a command that exited: its exit code is what tells how it went. */
export function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
}
