import type { ChildSpec, ChildStatus, SpawnedChild } from "../../core/gen/taskframe/v1/runner_pb.js";

/** What a handler gets besides its input. */
export interface TaskContext {
  readonly taskId: string;
  readonly runId: string;
  readonly taskName: string;
  /** 1-based. */
  readonly attempt: number;
  readonly input: Uint8Array;
  readonly contentType: string;
  /** The W3C trace context of this attempt (`00-TRACEID-SPANID-01`): the parent of the handler's own spans. */
  readonly traceparent: string;
  /** Aborts when the task is cancelled, its deadline passes, its lease is lost, or the worker stops; `reason` says which. */
  readonly signal: AbortSignal;
  /** The input as text (UTF-8). */
  text(): string;
  /** The input parsed as JSON. */
  json<T = unknown>(): T;
  /** A line in the task's log (`task logs NAME`). */
  log(line: string, stream?: "stdout" | "stderr"): void;
  /** Still working; `progress` is 0..1 (or omitted). Keeps the task's lease. */
  heartbeat(progress?: number, message?: string): void;
  /** Adds children to this task's run (idempotent per key). */
  spawn(children: readonly SpawnChild[]): Promise<SpawnedChild[]>;
  /** Where this task's children stand now (all, or those with these keys). */
  children(keys?: readonly string[]): Promise<ChildStatus[]>;
  /**
   * Waits until the children (all, or those with these keys) and everything they spawned have ended,
   * and returns them; throws ChildFailedError if one did not succeed, unless `failOnError` is false.
   */
  awaitChildren(keys?: readonly string[], options?: { failOnError?: boolean }): Promise<ChildStatus[]>;
}

/** A child task: a handler (with input) or an executable, keyed uniquely among this task's children. */
export interface SpawnChild {
  key: string;
  handler?: string;
  input?: Uint8Array | string | object;
  command?: string;
  args?: string[];
  /** Keys of sibling children that must succeed first. */
  needs?: string[];
  retries?: number;
  timeoutMs?: number;
}

export type ChildSpecs = ChildSpec[];
