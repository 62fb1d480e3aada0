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
      else reject(new CommandFailedError(label, argv, code, exitSignal));
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

/** A step's command ended badly; the attempt ends with its exit code, so that the task shows it. */
export class CommandFailedError extends Error {
  constructor(
    label: string,
    argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
  ) {
    super(
      `${label} (${argv.join(" ")}) ${signal ? `was killed by ${signal}` : `exited with code ${exitCode}`}`,
    );
  }
}

/**
 * Waits for every step of a phase's pipeline (commands in pipeline order);
 * on the first failure stops the rest, and reports the command that failed
 * rather than a pipe it broke or a kill of ours: of the commands that exited
 * non-zero by themselves, the last, as bash's pipefail does. A command that
 * quits breaks the pipe of the one feeding it (`sort` then exits 2, "Broken
 * pipe"), never the other way round; the commands this stop killed ended by
 * a signal.
 */
export async function allSteps(steps: readonly Promise<unknown>[], stop: AbortController): Promise<void> {
  try {
    await Promise.all(steps);
  } catch (error) {
    stop.abort(error);
    const failures = (await Promise.allSettled(steps)).flatMap((s) =>
      s.status === "rejected" && s.reason instanceof CommandFailedError ? [s.reason] : [],
    );
    throw failures.filter((f) => f.signal === null).at(-1) ?? failures[0] ?? error;
  }
}
