import type { AuditEvent, LogEntry, Run, Task } from "../../core/gen/taskframe/v1/hub_pb.js";
import { LogStream } from "../../core/gen/taskframe/v1/state_pb.js";
import { runStateName, taskStateName } from "../../core/states.js";
import { mapReduceJson } from "./mapreduce.js";

/*
 * The CLI's --json shapes: states as names, times as ISO strings (null when
 * unset), durations in ms. Stable for scripts; documented in the README.
 */

const iso = (unixMs: bigint): string | null => (unixMs ? new Date(Number(unixMs)).toISOString() : null);

export function runJson(run: Run) {
  return {
    id: run.id,
    name: run.name,
    state: runStateName(run.state),
    source: run.source,
    created_at: iso(run.createdAtUnixMs),
    finished_at: iso(run.finishedAtUnixMs),
    total_tasks: run.totalTasks,
    counts: Object.fromEntries(run.counts.map((c) => [taskStateName(c.state), c.count])),
    labels: run.labels,
    ...(run.mapreduce ? { mapreduce: mapReduceJson(run.mapreduce) } : {}),
  };
}

export function taskJson(task: Task) {
  const started = Number(task.startedAtUnixMs);
  const finished = Number(task.finishedAtUnixMs);
  return {
    id: task.id,
    run_id: task.runId,
    name: task.name,
    state: taskStateName(task.state),
    attempt: task.attempt,
    max_attempts: task.maxAttempts,
    host: task.host || null,
    exit_code: task.exitCode ?? null,
    detail: task.detail || null,
    needs: task.needs,
    created_at: iso(task.createdAtUnixMs),
    started_at: iso(task.startedAtUnixMs),
    finished_at: iso(task.finishedAtUnixMs),
    duration_ms: started && finished ? finished - started : null,
    retry_at: iso(task.retryAtUnixMs),
  };
}

export function auditJson(event: AuditEvent) {
  return {
    at: iso(event.atUnixMs),
    attempt: event.attempt,
    from: event.from ? taskStateName(event.from) : null,
    to: taskStateName(event.to),
    host: event.host || null,
    exit_code: event.exitCode ?? null,
    lease_epoch: Number(event.leaseEpoch),
    rejected: event.rejected,
    detail: event.detail || null,
  };
}

const STREAM_NAMES: Record<number, string> = {
  [LogStream.STDOUT]: "stdout",
  [LogStream.STDERR]: "stderr",
  [LogStream.SYSTEM]: "system",
};

/** Log text is decoded leniently (invalid UTF-8 becomes U+FFFD); the raw output keeps the exact bytes. */
export function logJson(entry: LogEntry) {
  return {
    at: iso(entry.atUnixMs),
    attempt: entry.attempt,
    stream: STREAM_NAMES[entry.stream] ?? "unknown",
    text: Buffer.from(entry.data).toString("utf8"),
    dropped_bytes: Number(entry.droppedBytes) || undefined,
  };
}

export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};
