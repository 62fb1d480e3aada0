import { formatDuration } from "../core/definitions/duration.js";
import type { StateTransition } from "../core/gen/taskframe/v1/messages_pb.js";
import type { RetryPolicy } from "../core/gen/taskframe/v1/spec_pb.js";
import { describeLeaseEpoch } from "../core/lease-epoch.js";
import { ATTEMPT_OUTCOMES, isTerminal, TaskState, taskStateName } from "../core/states.js";
import { retryDelayMs } from "./retry-delay.js";

/** The mutable part of a task row, as the recorder sees it inside its transaction. */
export interface TaskRow {
  readonly id: string;
  readonly runId: string;
  readonly name: string;
  state: TaskState;
  attempt: number;
  readonly maxAttempts: number;
  leaseEpoch: number;
  readonly cancelRequested: boolean;
  host: string | null;
  exitCode: number | null;
  detail: string | null;
  retryAtMs: number | null;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  /** Set when a handler task succeeds with a result (never read back into the row). */
  /** A handler's result; `stored`: staged in task_outputs under the row's attempt and lease epoch. */
  output?: { data: Uint8Array; contentType: string; stored?: boolean };
  /** Decoded on demand: only failing tasks need it. */
  readonly retryPolicy: () => RetryPolicy | undefined;
}

export interface AuditRow {
  runId: string;
  taskId: string;
  attempt: number;
  from: TaskState;
  to: TaskState;
  atMs: number;
  host: string;
  leaseEpoch: number;
  exitCode: number | null;
  detail: string;
  rejected: boolean;
}

/** One delivery to stop; attempt/leaseEpoch 0 match any. */
export interface StopRequest {
  taskId: string;
  runId: string;
  attempt: number;
  leaseEpoch: number;
  reason: string;
  /** Only the copy on this host (one epoch reached two hosts); any host when absent. */
  host?: string;
}

export interface AppliedTransitions {
  /** Rows whose columns changed and must be written back. */
  changed: Set<TaskRow>;
  events: AuditRow[];
  /** Reached SUCCEEDED: their dependents may become ready. */
  succeeded: TaskRow[];
  /** Reached a terminal state other than SUCCEEDED: their descendants are skipped. */
  unsuccessful: TaskRow[];
  /** Deliveries to stop: late or redelivered copies of tasks that must not run. */
  stop: StopRequest[];
}

/**
 * A terminal outcome decided by the hub rather than reported by a sidecar,
 * e.g. a work item that ran out of deliveries. Not fenced by lease epoch:
 * it applies while the attempt is still PENDING or RUNNING.
 */
export interface HubVerdict {
  taskId: string;
  attempt: number;
  to: TaskState;
  detail: string;
}

/**
 * The state machine of a batch of sidecar transitions, fenced by attempt and
 * lease epoch. Pure: the recorder loads the rows, calls this, writes back.
 * Recording the same transition twice changes nothing.
 */
export function applyTransitions(
  rows: ReadonlyMap<string, TaskRow>,
  transitions: readonly StateTransition[],
  nowMs: number,
  random: () => number = Math.random,
  verdicts: readonly HubVerdict[] = [],
): AppliedTransitions {
  const result: AppliedTransitions = {
    changed: new Set(),
    events: [],
    succeeded: [],
    unsuccessful: [],
    stop: [],
  };

  for (const verdict of verdicts) {
    const row = rows.get(verdict.taskId);
    if (!row || row.attempt !== verdict.attempt) continue;
    if (row.state !== TaskState.PENDING && row.state !== TaskState.RUNNING) continue;
    const from = row.state;
    finish(row, verdict.to, nowMs, null, verdict.detail);
    result.events.push({
      runId: row.runId,
      taskId: row.id,
      attempt: row.attempt,
      from,
      to: verdict.to,
      atMs: nowMs,
      host: "",
      leaseEpoch: row.leaseEpoch,
      exitCode: null,
      detail: verdict.detail,
      rejected: false,
    });
    result.unsuccessful.push(row);
    result.stop.push({
      taskId: row.id,
      runId: row.runId,
      attempt: row.attempt,
      leaseEpoch: 0,
      reason: verdict.detail,
    });
  }

  for (const t of withFoldedStarts(transitions)) {
    const row = rows.get(t.taskId);
    const at = Number(t.atUnixMs) || nowMs;
    const epoch = Number(t.leaseEpoch);
    const event = (from: TaskState, to: TaskState, detail: string, rejected = false): AuditRow => ({
      // the row's run, not the report's: a report is only trusted as far as the fence lets it
      runId: row?.runId ?? t.runId,
      taskId: t.taskId,
      attempt: t.attempt,
      from,
      to,
      atMs: at,
      host: t.host,
      leaseEpoch: epoch,
      exitCode: t.exitCode ?? null,
      detail,
      rejected,
    });
    const stop = (reason: string, host?: string) =>
      result.stop.push({
        taskId: t.taskId,
        runId: t.runId,
        attempt: t.attempt,
        leaseEpoch: epoch,
        reason,
        ...(host ? { host } : {}),
      });
    // One delivery reaches one sidecar; the same epoch from another host means the queue forgot
    // its delivery counts (a nats-server that restarted without its consumer state) and delivered again.
    const secondHolder =
      epoch === row?.leaseEpoch &&
      row.host !== null &&
      row.host !== "" &&
      t.host !== "" &&
      t.host !== row.host;
    const reject = (reason: string) => {
      result.events.push(event(row?.state ?? TaskState.UNSPECIFIED, t.to, `rejected: ${reason}`, true));
    };

    // a report about no task has no audit trail to join; the sidecar that sent it logged it
    if (!row) continue;
    if (t.attempt !== row.attempt) {
      reject(`stale attempt ${t.attempt}; the task is at attempt ${row.attempt}`);
      if (t.to === TaskState.RUNNING) stop("stale attempt");
      continue;
    }

    if (t.to === TaskState.RUNNING) {
      if (secondHolder && row.state !== TaskState.PENDING) {
        const why = `a second delivery of the lease (${describeLeaseEpoch(epoch)}) reached ${t.host} while ${row.host} holds it: the queue lost its delivery counts`;
        reject(`${why}; this delivery was stopped`);
        stop(why, t.host);
        continue;
      }
      if (epoch === row.leaseEpoch && row.state !== TaskState.PENDING) {
        // a duplicate, or the RUNNING of an outcome recorded before it (several recorders can reorder)
        if (row.startedAtMs === null) {
          row.startedAtMs = at;
          result.changed.add(row);
        }
        continue;
      }
      const redelivered = row.state === TaskState.RUNNING && epoch > row.leaseEpoch;
      if (row.state !== TaskState.PENDING && !redelivered) {
        const why =
          row.state === TaskState.RUNNING
            ? `stale lease (${describeLeaseEpoch(epoch)}); current lease is ${describeLeaseEpoch(row.leaseEpoch)}`
            : epoch > row.leaseEpoch
              ? `the task is already ${taskStateName(row.state)}: a redelivery (${describeLeaseEpoch(epoch)}) after its result was recorded, as the queue never got that result's acknowledgement`
              : `the task is already ${taskStateName(row.state)}`;
        reject(`${why}; this delivery was stopped`);
        stop(why);
        continue;
      }
      if (redelivered && row.cancelRequested) {
        finish(row, TaskState.CANCELLED, at, null, "cancelled; the redelivered attempt was stopped");
        result.events.push(event(TaskState.RUNNING, TaskState.CANCELLED, row.detail ?? ""));
        result.unsuccessful.push(row);
        stop("cancelled");
        continue;
      }
      const detail = redelivered
        ? `redelivered to ${t.host || "a sidecar"} (${describeLeaseEpoch(epoch)}): the lease held by ${row.host || "the previous sidecar"} expired`
        : "";
      result.events.push(event(row.state, TaskState.RUNNING, detail));
      row.state = TaskState.RUNNING;
      row.leaseEpoch = epoch;
      row.host = t.host;
      row.startedAtMs = at;
      row.detail = detail || null;
      result.changed.add(row);
      continue;
    }

    if (!ATTEMPT_OUTCOMES.has(t.to)) {
      reject(`${taskStateName(t.to)} is not an outcome a sidecar can report`);
      continue;
    }
    if (row.state === TaskState.PENDING && epoch > row.leaseEpoch) {
      // The outcome overtook its RUNNING (recorders work in parallel): it still proves the delivery ran.
      result.events.push(event(TaskState.PENDING, TaskState.RUNNING, "recorded with its outcome"));
      row.state = TaskState.RUNNING;
      row.leaseEpoch = epoch;
      row.host = t.host;
      result.changed.add(row);
    }
    if (secondHolder) {
      reject(`${t.host} reported under the lease (${describeLeaseEpoch(epoch)}) that ${row.host} holds`);
      continue;
    }
    if (row.state !== TaskState.RUNNING || epoch !== row.leaseEpoch) {
      const alreadyRecorded = epoch === row.leaseEpoch && row.finishedAtMs === at;
      if (alreadyRecorded && (isTerminal(row.state) || row.state === TaskState.RETRYING)) continue; // duplicate
      // the same host ran the same lease again after its result was recorded: the queue delivered it
      // again without counting (a nats-server that restarted without its consumer's state)
      const ranAgain = isTerminal(row.state) && epoch === row.leaseEpoch && t.host === row.host;
      reject(
        ranAgain
          ? `the task is already ${taskStateName(row.state)}: a redelivery (${describeLeaseEpoch(epoch)}) after its result was recorded, under the same lease: the queue lost its delivery counts`
          : row.state !== TaskState.RUNNING
            ? `the task is ${taskStateName(row.state)}, not RUNNING`
            : `stale lease (${describeLeaseEpoch(epoch)}); current lease is ${describeLeaseEpoch(row.leaseEpoch)}`,
      );
      continue;
    }

    const exitCode = t.exitCode ?? null;
    const outcome = describeOutcome(t);
    if (t.to === TaskState.SUCCEEDED) {
      finish(row, TaskState.SUCCEEDED, at, exitCode, null);
      if (t.outputStored)
        row.output = { data: new Uint8Array(), contentType: t.outputContentType, stored: true };
      else if (t.output.length > 0) row.output = { data: t.output, contentType: t.outputContentType };
      result.events.push(event(TaskState.RUNNING, TaskState.SUCCEEDED, outcome));
      result.succeeded.push(row);
    } else if (t.to === TaskState.SKIPPED) {
      finish(row, TaskState.SKIPPED, at, exitCode, t.detail || "its condition was not met");
      result.events.push(event(TaskState.RUNNING, TaskState.SKIPPED, row.detail ?? ""));
      result.unsuccessful.push(row);
    } else if (t.to === TaskState.CANCELLED || row.cancelRequested) {
      finish(row, TaskState.CANCELLED, at, exitCode, outcome || "cancelled");
      result.events.push(event(TaskState.RUNNING, TaskState.CANCELLED, row.detail ?? ""));
      result.unsuccessful.push(row);
    } else if (row.attempt < row.maxAttempts && !t.nonRetryable) {
      // a handler may ask for a longer wait than the policy's (RetryAfter)
      const delay = Math.max(retryDelayMs(row.retryPolicy(), row.attempt, random), Number(t.retryAfterMs));
      const detail = `attempt ${row.attempt} ${outcome}; retrying in ${formatDuration(delay)} (attempt ${row.attempt + 1} of ${row.maxAttempts})`;
      row.state = TaskState.RETRYING;
      row.retryAtMs = nowMs + delay;
      row.exitCode = exitCode;
      row.detail = detail;
      row.finishedAtMs = at;
      result.events.push(event(TaskState.RUNNING, TaskState.RETRYING, detail));
      result.changed.add(row);
    } else {
      const suffix = t.nonRetryable
        ? " (not retryable)"
        : row.maxAttempts > 1
          ? ` (attempt ${row.attempt} of ${row.maxAttempts})`
          : "";
      finish(row, t.to, at, exitCode, `${outcome}${suffix}`);
      result.events.push(event(TaskState.RUNNING, t.to, row.detail ?? ""));
      result.unsuccessful.push(row);
    }
  }
  return result;

  function finish(
    row: TaskRow,
    state: TaskState,
    at: number,
    exitCode: number | null,
    detail: string | null,
  ) {
    row.state = state;
    row.finishedAtMs = at;
    row.exitCode = exitCode;
    row.detail = detail;
    row.retryAtMs = null;
    result.changed.add(row);
  }
}

/** "failed: exit code 1", "timed out: ...", "killed by SIGKILL" — from what the sidecar saw. */
function describeOutcome(t: StateTransition): string {
  // a failed check says itself which check and how
  if (t.to === TaskState.CHECK_FAILED && t.detail) return t.detail;
  const parts: string[] = [];
  if (t.to === TaskState.TIMED_OUT) parts.push("timed out");
  else if (t.to === TaskState.CHECK_FAILED) parts.push("check failed");
  else if (t.to === TaskState.FAILED) parts.push("failed");
  if (t.signal) parts.push(`killed by ${t.signal}`);
  else if (t.exitCode !== undefined && t.to !== TaskState.SUCCEEDED) parts.push(`exit code ${t.exitCode}`);
  if (t.detail) parts.push(t.detail);
  if (parts.length <= 1) return parts.join("");
  return `${parts[0]}: ${parts.slice(1).join("; ")}`;
}

/** An outcome that carries its attempt's start (the sidecar folded the two) is applied as RUNNING, then itself. */
function* withFoldedStarts(transitions: readonly StateTransition[]): Iterable<StateTransition> {
  for (const t of transitions) {
    if (t.startedAtUnixMs > 0n && t.to !== TaskState.RUNNING) {
      yield {
        ...t,
        to: TaskState.RUNNING,
        atUnixMs: t.startedAtUnixMs,
        startedAtUnixMs: 0n,
        detail: "",
        exitCode: undefined,
      };
    }
    yield t;
  }
}
