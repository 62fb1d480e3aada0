import { formatDuration } from "../core/definitions/duration.js";
import { TaskState } from "../core/states.js";
import type { ProcessOutcome } from "./process-runner.js";

export interface AttemptResult {
  state: TaskState;
  exitCode?: number;
  signal: string;
  detail: string;
  /** A line for the task's log (system stream) when the end was not a plain exit 0. */
  systemLine?: string;
  /** The exit code is one the task declared not worth retrying. */
  nonRetryable?: boolean;
}

/** A failure by one of the task's non-retryable exit codes ends the task, retries left or not. */
export function withRetryPolicy(
  result: AttemptResult,
  nonRetryableExitCodes: readonly number[],
): AttemptResult {
  if (result.state !== TaskState.FAILED || result.signal || result.exitCode === undefined) return result;
  if (!nonRetryableExitCodes.includes(result.exitCode)) return result;
  return {
    ...result,
    nonRetryable: true,
    systemLine: `${result.systemLine ?? `[taskframe] exit code ${result.exitCode}`}; exit code ${result.exitCode} is declared not retryable`,
  };
}

/** What a finished process means for its attempt. */
export function resultOf(
  outcome: ProcessOutcome,
  timeoutMs: number,
  killGraceMs: number,
  cancelReason: string,
): AttemptResult {
  const exit = outcome.exitCode ?? undefined;
  const signal = outcome.signal ?? "";
  const ended = signal ? `killed by ${signal}` : `exit code ${exit}`;
  if (outcome.spawnError) {
    const detail = `could not start: ${outcome.spawnError.message}`;
    return { state: TaskState.FAILED, signal: "", detail, systemLine: `[taskframe] ${detail}` };
  }
  if (outcome.timedOut) {
    const detail = `after ${formatDuration(timeoutMs)}`;
    return {
      state: TaskState.TIMED_OUT,
      ...(exit === undefined ? {} : { exitCode: exit }),
      signal,
      detail,
      systemLine: `[taskframe] timed out after ${formatDuration(timeoutMs)}: sent SIGTERM to the process group, SIGKILL after ${formatDuration(killGraceMs)} (${ended})`,
    };
  }
  if (outcome.cancelled) {
    const detail = cancelReason || "cancelled";
    return {
      state: TaskState.CANCELLED,
      ...(exit === undefined ? {} : { exitCode: exit }),
      signal,
      detail,
      systemLine: `[taskframe] stopped: ${detail} (${ended})`,
    };
  }
  if (exit === 0) return { state: TaskState.SUCCEEDED, exitCode: 0, signal: "", detail: "" };
  return {
    state: TaskState.FAILED,
    ...(exit === undefined ? {} : { exitCode: exit }),
    signal,
    detail: "",
    systemLine: `[taskframe] ${ended} after ${formatDuration(outcome.durationMs)}`,
  };
}
