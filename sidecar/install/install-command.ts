/**
 * Runs one installer command (pip, npm, apt-get, tar) and sends its output to
 * the task's log, line by line, stdout and stderr each split on their own.
 */
import { StringDecoder } from "node:string_decoder";
import { quote } from "shlex";
import { type ProcessOutputStream, runProcess } from "../process-runner.js";
import { type Ecosystem, InstallError } from "./install-error.js";

export interface InstallCommand {
  ecosystem: Ecosystem;
  command: string;
  args: readonly string[];
  /** The whole environment of the command. */
  env: Record<string, string>;
  cwd: string;
  log: (line: string) => void;
  signal: AbortSignal;
}

// A line longer than this is logged in pieces (a progress bar without newlines, say).
const MAX_LINE_CHARS = 16 * 1024;
const KILL_GRACE_MS = 3000;

/** Rejects with InstallError if the command cannot start or does not exit 0, with the signal's reason if aborted. */
export async function runInstallCommand(options: InstallCommand): Promise<void> {
  const { ecosystem, command, args, log, signal } = options;
  signal.throwIfAborted();
  const commandLine = [command, ...args].map((word) => quote(word)).join(" ");
  log(`$ ${commandLine}`);
  const splitters = { stdout: new LineSplitter(log), stderr: new LineSplitter(log) };
  const outcome = await runProcess({
    command,
    args,
    env: options.env,
    cwd: options.cwd,
    signal,
    killGraceMs: KILL_GRACE_MS,
    onOutput: (stream: ProcessOutputStream, data: Buffer) => splitters[stream].push(data),
  });
  splitters.stdout.end();
  splitters.stderr.end();
  if (outcome.cancelled) throw signal.reason;
  if (outcome.spawnError)
    throw new InstallError(`${ecosystem}: ${outcome.spawnError.message}`, { ecosystem });
  if (outcome.exitCode === 0) return;
  const how = outcome.signal
    ? `was killed by ${outcome.signal}`
    : `failed with exit code ${outcome.exitCode}`;
  throw new InstallError(`${ecosystem}: \`${commandLine}\` ${how}`, {
    ecosystem,
    ...(outcome.exitCode === null ? {} : { exitCode: outcome.exitCode }),
  });
}

/** Turns chunks of UTF-8 into whole lines (without their line ending). */
class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";

  constructor(private readonly emit: (line: string) => void) {}

  push(data: Buffer): void {
    this.pending += this.decoder.write(data);
    const lines = this.pending.split(/\r?\n/);
    this.pending = lines.pop() ?? "";
    for (const line of lines) this.emit(line);
    while (this.pending.length > MAX_LINE_CHARS) {
      this.emit(this.pending.slice(0, MAX_LINE_CHARS));
      this.pending = this.pending.slice(MAX_LINE_CHARS);
    }
  }

  end(): void {
    this.pending += this.decoder.end();
    if (this.pending !== "") this.emit(this.pending);
    this.pending = "";
  }
}
