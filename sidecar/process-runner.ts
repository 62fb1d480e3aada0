/**
 * Runs one executable as a task: argv directly (never a shell), in a process
 * group of its own, with a timeout and cancellation that stop the whole group.
 * When the main process exits for any reason, whatever is left of its group is
 * killed (like systemd's KillMode=control-group), so no orphan survives it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";

export type ProcessOutputStream = "stdout" | "stderr";

export interface RunProcessOptions {
  command: string;
  args: readonly string[];
  /** The child's whole environment: nothing is inherited from this process. */
  env: Record<string, string>;
  cwd: string;
  /** Undefined or 0: no timeout. */
  timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL on timeout or cancellation; 5000 by default. */
  killGraceMs?: number;
  /** Cancels the task with the same kill sequence as a timeout; an aborted signal starts nothing. */
  signal?: AbortSignal;
  /** Raw bytes as they arrive. Must not block; if it throws, the task is killed and runProcess rejects. */
  onOutput(stream: ProcessOutputStream, data: Buffer): void;
  /** Called once the process exists, with its pid (which is also its process group id). */
  onSpawn?(pid: number): void;
  /** Confinement applied between fork and exec (the native spawner's; see SpawnProcess in spawner.proto). */
  confine?: Confinement;
}

export interface Confinement {
  /** The child writes its pid to each (the cgroup.procs of the task's cgroups). */
  cgroupProcsFiles: readonly string[];
  /** A compiled seccomp filter, opened as fd 3 in the child (for `bwrap --seccomp 3`). */
  seccompFilterPath?: string;
  /** RLIMIT_CORE=0. */
  noCoreDumps: boolean;
  /**
   * The account to switch to before exec. runProcess (Node's spawn) sets uid
   * and gid only: libuv drops every supplementary group, `groups` included.
   */
  account?: { uid: number; gid: number; groups: readonly number[] };
}

/** What runProcess reports for confinement only the native spawner helper can apply. */
export const CONFINEMENT_NEEDS_NATIVE_HELPER =
  "cgroups and seccomp need the native spawner helper (built at install with a C compiler)";

export interface SpawnFailure {
  /** errno code: ENOENT, EACCES, ENOTDIR... */
  code: string;
  message: string;
}

export interface ProcessOutcome {
  pid: number | undefined;
  exitCode: number | null;
  /** The signal that ended the main process, if one did. */
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  /** Set when the process could not be started at all; exitCode is then null. */
  spawnError?: SpawnFailure;
  startedAtMs: number;
  durationMs: number;
}

const DEFAULT_KILL_GRACE_MS = 5000;
// After the group is gone, how long to wait for a pipe held open by a process outside it.
const PIPE_DRAIN_MS = 1000;
// setTimeout fires at once for longer delays.
const MAX_TIMER_MS = 2 ** 31 - 1;

export async function runProcess(options: RunProcessOptions): Promise<ProcessOutcome> {
  const startedAtMs = Date.now();
  const startedAt = performance.now();
  checkDuration("timeoutMs", options.timeoutMs);
  checkDuration("killGraceMs", options.killGraceMs);
  const notStarted = { pid: undefined, exitCode: null, signal: null, timedOut: false, startedAtMs };

  if (options.signal?.aborted) return { ...notStarted, cancelled: true, durationMs: 0 };
  const { confine } = options;
  // noCoreDumps is left out: Node's spawn cannot set a limit, and it only guards the host
  if (confine && (confine.cgroupProcsFiles.length > 0 || confine.seccompFilterPath)) {
    const spawnError = {
      code: "ENOTSUP",
      message: `cannot start ${JSON.stringify(options.command)}: ${CONFINEMENT_NEEDS_NATIVE_HELPER}`,
    };
    return { ...notStarted, cancelled: false, spawnError, durationMs: performance.now() - startedAt };
  }
  let child: ChildProcess;
  try {
    child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      shell: false,
      stdio: ["ignore", "pipe", "pipe"],
      ...(confine?.account ? { uid: confine.account.uid, gid: confine.account.gid } : {}),
    });
  } catch (error) {
    // some failures (ENOTDIR for cwd) are thrown rather than emitted
    const spawnError = await describeSpawnError(error, options.command, options.cwd);
    return { ...notStarted, cancelled: false, spawnError, durationMs: performance.now() - startedAt };
  }
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  const result = await supervise(child, options);
  return { ...notStarted, ...result, durationMs: performance.now() - startedAt };
}

type SupervisedResult = Pick<
  ProcessOutcome,
  "pid" | "exitCode" | "signal" | "timedOut" | "cancelled" | "spawnError"
>;

function supervise(child: ChildProcess, options: RunProcessOptions): Promise<SupervisedResult> {
  const { signal: abortSignal, onOutput } = options;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const stdout = child.stdout!;
  const stderr = child.stderr!;

  return new Promise<SupervisedResult>((resolvePromise, rejectPromise) => {
    const pid = child.pid;
    let timedOut = false;
    let cancelled = false;
    let terminating = false;
    let exited = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let openStreams = 2;
    let outputFailed = false;
    let outputError: unknown;
    let cancelTimeout: (() => void) | undefined;
    let cancelGrace: (() => void) | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const killGroup = (signal: NodeJS.Signals) => {
      if (pid !== undefined) signalGroup(pid, signal);
    };

    const terminate = () => {
      if (exited || terminating) return;
      terminating = true;
      killGroup("SIGTERM");
      cancelGrace = startTimer(killGraceMs, () => killGroup("SIGKILL"));
    };

    const onTimeout = () => {
      if (exited || terminating) return;
      timedOut = true;
      terminate();
    };

    const onAbort = () => {
      if (exited || terminating) return;
      cancelled = true;
      terminate();
    };

    const forward = (stream: ProcessOutputStream) => (data: Buffer) => {
      if (outputFailed) return;
      try {
        onOutput(stream, data);
      } catch (error) {
        outputFailed = true;
        outputError = error;
        // nobody is listening any more: no grace
        terminating = true;
        killGroup("SIGKILL");
      }
    };
    const onStdout = forward("stdout");
    const onStderr = forward("stderr");

    const stopTimers = () => {
      cancelTimeout?.();
      cancelGrace?.();
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      abortSignal?.removeEventListener("abort", onAbort);
    };

    const cleanup = () => {
      stopTimers();
      child.off("exit", onExit);
      child.off("error", onError);
      stdout.off("data", onStdout);
      stderr.off("data", onStderr);
      stdout.off("close", onStreamClose);
      stderr.off("close", onStreamClose);
      stdout.off("error", ignore);
      stderr.off("error", ignore);
    };

    const finishIfDone = () => {
      if (!exited || openStreams > 0) return;
      cleanup();
      if (outputFailed) rejectPromise(outputError);
      else resolvePromise({ pid, exitCode, signal: exitSignal, timedOut, cancelled });
    };

    function onExit(code: number | null, signal: NodeJS.Signals | null): void {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      stopTimers();
      // the main process is gone: nothing of its group may outlive it
      killGroup("SIGKILL");
      if (openStreams > 0) {
        drainTimer = setTimeout(() => {
          stdout.destroy();
          stderr.destroy();
        }, PIPE_DRAIN_MS);
      }
      finishIfDone();
    }

    function onError(error: Error): void {
      // with a pid, errors come from kill() or send(), which are not used here
      if (pid !== undefined) return;
      cleanup();
      stdout.destroy();
      stderr.destroy();
      void describeSpawnError(error, options.command, options.cwd).then((spawnError) =>
        resolvePromise({ pid, exitCode: null, signal: null, timedOut: false, cancelled: false, spawnError }),
      );
    }

    function onStreamClose(): void {
      openStreams--;
      finishIfDone();
    }

    child.on("exit", onExit);
    child.on("error", onError);
    // flowing mode, never paused: a task must never block on a full pipe
    stdout.on("data", onStdout);
    stderr.on("data", onStderr);
    stdout.on("close", onStreamClose);
    stderr.on("close", onStreamClose);
    stdout.on("error", ignore);
    stderr.on("error", ignore);

    if (pid === undefined) return; // the spawn failed: onError follows
    if (options.timeoutMs) cancelTimeout = startTimer(options.timeoutMs, onTimeout);
    abortSignal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Sends `signal` to the process group led by `pid`; a group already gone is not an error. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // EPERM: every member left changed user (setuid); nothing this process can do about it
    if (errorCode(error) !== "ESRCH" && errorCode(error) !== "EPERM") throw error;
  }
}

/**
 * A one-shot timer measured on the monotonic clock, for any delay (setTimeout
 * alone fires at once past ~24.8 days). Returns its cancel function.
 */
function startTimer(delayMs: number, onFire: () => void): () => void {
  const deadline = performance.now() + delayMs;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const remaining = deadline - performance.now();
    if (remaining <= 0) {
      timer = undefined;
      onFire();
      return;
    }
    timer = setTimeout(arm, Math.min(Math.ceil(remaining), MAX_TIMER_MS));
  };
  timer = setTimeout(arm, Math.min(Math.ceil(delayMs), MAX_TIMER_MS));
  return () => {
    if (timer !== undefined) clearTimeout(timer);
  };
}

function checkDuration(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (Number.isNaN(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative number, got ${value}`);
}

/** What a failed spawn means for this command and cwd, from the error's errno code (ENOENT, EACCES...). */
export async function describeSpawnError(
  error: unknown,
  command: string,
  cwd: string,
): Promise<SpawnFailure> {
  const code = errorCode(error) ?? "UNKNOWN";
  const start = `cannot start ${JSON.stringify(command)}`;
  // spawn reports a bad working directory with the same codes as a bad command
  if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES") {
    const cwdProblem = await checkDirectory(cwd);
    if (cwdProblem !== undefined) {
      return {
        code: cwdProblem.code,
        message: `${start}: working directory ${JSON.stringify(cwd)} ${cwdProblem.reason}`,
      };
    }
  }
  switch (code) {
    case "ENOENT":
      if (!command.includes("/")) return { code, message: `${start}: command not found in PATH` };
      if (await exists(resolve(cwd, command))) {
        return {
          code,
          message: `${start}: its interpreter (the #! line) or a library it needs was not found`,
        };
      }
      return { code, message: `${start}: no such file` };
    case "EACCES":
      return { code, message: `${start}: permission denied (not executable, or a directory)` };
    default:
      return { code, message: `${start}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

async function checkDirectory(path: string): Promise<{ code: string; reason: string } | undefined> {
  try {
    if (!(await stat(path)).isDirectory()) return { code: "ENOTDIR", reason: "is not a directory" };
    await access(path, constants.X_OK);
    return undefined;
  } catch (error) {
    const code = errorCode(error) ?? "UNKNOWN";
    if (code === "ENOENT") return { code, reason: "does not exist" };
    if (code === "ENOTDIR") return { code, reason: "does not exist (a parent is not a directory)" };
    if (code === "EACCES") return { code, reason: "is not accessible (permission denied)" };
    return { code, reason: `cannot be used (${code})` };
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}

function ignore(): void {}
