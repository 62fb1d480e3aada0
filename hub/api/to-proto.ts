import { create } from "@bufbuild/protobuf";
import {
  type AuditEvent,
  AuditEventSchema,
  type LogEntry,
  LogEntrySchema,
  MapReduceState,
  type MapReduceStatus,
  MapReduceStatusSchema,
  type Run,
  RunSchema,
  type Task,
  TaskSchema,
} from "../../core/gen/taskframe/v1/hub_pb.js";
import type { MapReduceJobRow } from "../store/queries/mapreduce-jobs.js";
import type { AuditRecord, LogRecord, RunRecord, TaskRecord } from "../store/queries/read.js";
import type { TaskChange } from "../store/queries/task-change.js";

const ms = (value: number | null | undefined): bigint => (value ? BigInt(Math.round(value)) : 0n);

export function runToProto(run: RunRecord, job?: MapReduceJobRow): Run {
  return create(RunSchema, {
    ...(job ? { mapreduce: mapReduceToProto(job) } : {}),
    id: run.id,
    name: run.name,
    state: run.state,
    source: run.source,
    createdAtUnixMs: ms(run.createdAtMs),
    finishedAtUnixMs: ms(run.finishedAtMs),
    totalTasks: run.totalTasks,
    counts: [...run.counts].sort(([a], [b]) => a - b).map(([state, count]) => ({ state, count })),
    labels: run.labels,
    tenant: run.tenant,
  });
}

export function taskToProto(task: TaskRecord): Task {
  return create(TaskSchema, {
    id: task.id,
    runId: task.runId,
    name: task.name,
    state: task.state,
    attempt: task.attempt,
    maxAttempts: task.maxAttempts,
    createdAtUnixMs: ms(task.createdAtMs),
    startedAtUnixMs: ms(task.startedAtMs),
    finishedAtUnixMs: ms(task.finishedAtMs),
    host: task.host ?? "",
    ...(task.exitCode === null ? {} : { exitCode: task.exitCode }),
    detail: task.detail ?? "",
    needs: task.needs,
    after: task.after,
    ...(task.output ? { output: task.output.data, outputContentType: task.output.contentType } : {}),
    retryAtUnixMs: ms(task.retryAtMs),
  });
}

/** Applies a change to a task a watcher already holds. */
export function mergeChange(task: Task, change: TaskChange): void {
  task.state = change.state;
  task.attempt = change.attempt;
  task.host = change.host ?? "";
  task.exitCode = change.exitCode ?? undefined;
  task.detail = change.detail ?? "";
  task.startedAtUnixMs = ms(change.startedAtMs);
  task.finishedAtUnixMs = ms(change.finishedAtMs);
  task.retryAtUnixMs = ms(change.retryAtMs);
}

export function auditToProto(event: AuditRecord): AuditEvent {
  return create(AuditEventSchema, {
    attempt: event.attempt,
    from: event.from,
    to: event.to,
    atUnixMs: ms(event.atMs),
    host: event.host,
    detail: event.detail,
    ...(event.exitCode === null ? {} : { exitCode: event.exitCode }),
    leaseEpoch: BigInt(event.leaseEpoch),
    rejected: event.rejected,
  });
}

export function logToProto(chunk: LogRecord): LogEntry {
  return create(LogEntrySchema, {
    attempt: chunk.attempt,
    stream: chunk.stream,
    atUnixMs: ms(chunk.atMs),
    data: chunk.data,
    droppedBytes: BigInt(chunk.droppedBytes),
  });
}

const JOB_STATES: Record<MapReduceJobRow["state"], MapReduceState> = {
  running: MapReduceState.RUNNING,
  committing: MapReduceState.COMMITTING,
  committed: MapReduceState.COMMITTED,
  aborting: MapReduceState.ABORTING,
  aborted: MapReduceState.ABORTED,
};

export function mapReduceToProto(job: MapReduceJobRow): MapReduceStatus {
  const count = (name: string) => BigInt(Math.max(0, Math.trunc(job.counters[name] ?? 0)));
  return create(MapReduceStatusSchema, {
    state: JOB_STATES[job.state],
    output: job.output,
    stagingDir: job.stagingDir,
    maps: job.maps,
    reducers: job.reducers,
    detail: job.detail,
    counters: {
      mapRecordsIn: count("map_records_in"),
      mapRecordsOut: count("map_records_out"),
      shuffleBytes: count("shuffle_bytes"),
      reduceRecordsIn: count("reduce_records_in"),
      reduceRecordsOut: count("reduce_records_out"),
      outputBytes: count("output_bytes"),
    },
    decidedAtUnixMs: ms(job.decidedAtMs),
    finishedAtUnixMs: ms(job.finishedAtMs),
  });
}
