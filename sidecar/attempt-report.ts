import { create } from "@bufbuild/protobuf";
import {
  type LogChunk,
  LogChunkSchema,
  type StateTransition,
  StateTransitionSchema,
  type WorkItem,
} from "../core/gen/taskframe/v1/messages_pb.js";
import { LogStream } from "../core/gen/taskframe/v1/state_pb.js";
import type { TaskState } from "../core/states.js";
import type { CapturedChunk } from "./log-capture.js";
import type { AttemptResult } from "./outcome.js";

/** What a sidecar reports about one delivery of a task: which attempt, under which lease. */
export interface Delivery {
  readonly item: WorkItem;
  readonly epoch: number;
}

export type ReportedResult = Pick<AttemptResult, "exitCode" | "signal" | "detail"> & {
  output?: Uint8Array;
  outputContentType?: string;
  /** The output is on the hub already (too large for an event message). */
  outputStored?: boolean;
  nonRetryable?: boolean;
  retryAfterMs?: number;
};

export function transitionOf(
  delivery: Delivery,
  host: string,
  to: TaskState,
  result: ReportedResult,
): StateTransition {
  return create(StateTransitionSchema, {
    taskId: delivery.item.taskId,
    runId: delivery.item.runId,
    attempt: delivery.item.attempt,
    leaseEpoch: BigInt(delivery.epoch),
    to,
    atUnixMs: BigInt(Date.now()),
    host,
    ...(result.exitCode === undefined ? {} : { exitCode: result.exitCode }),
    signal: result.signal,
    detail: result.detail,
    ...(result.output ? { output: result.output, outputContentType: result.outputContentType ?? "" } : {}),
    ...(result.outputStored ? { outputStored: true, outputContentType: result.outputContentType ?? "" } : {}),
    nonRetryable: result.nonRetryable ?? false,
    retryAfterMs: BigInt(Math.max(0, Math.round(result.retryAfterMs ?? 0))),
  });
}

const STREAMS = { stdout: LogStream.STDOUT, stderr: LogStream.STDERR, system: LogStream.SYSTEM } as const;

export function logChunksOf(delivery: Delivery, chunks: readonly CapturedChunk[]): LogChunk[] {
  return chunks.map((chunk) =>
    create(LogChunkSchema, {
      taskId: delivery.item.taskId,
      runId: delivery.item.runId,
      attempt: delivery.item.attempt,
      stream: STREAMS[chunk.stream],
      seq: chunk.seq,
      atUnixMs: BigInt(chunk.atUnixMs),
      data: chunk.data,
      droppedBytes: BigInt(chunk.droppedBytes),
    }),
  );
}
