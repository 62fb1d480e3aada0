import type { WorkItem } from "./gen/taskframe/v1/messages_pb.js";

/*
 * The work-queue seam. The hub publishes ready attempts; sidecars lease them
 * in batches. Implementations: in-process (core/memory-work-queue.ts, the
 * embedded mode) and NATS JetStream (distributed mode). Both pass the same
 * contract suite (test/contract/work-queue-contract.ts).
 *
 * Delivery is at least once. A lease that is neither acked nor extended within
 * `ackWaitMs` is redelivered with a higher delivery count, until
 * `maxDeliveries` is reached; then the item becomes a dead letter. Whether a
 * result counts is decided by the lease epoch in the store, never by the queue.
 */
export interface WorkQueue extends AsyncDisposable {
  /** Publishes items to their pools; a dedupe key seen within the window is dropped. */
  publish(items: readonly WorkItem[]): Promise<void>;
  /**
   * A consumer of one lane: a pool's executables, or one handler of a pool
   * (so that a sidecar leases only the handlers its workers serve). The
   * consumers of a lane share its items.
   */
  consumer(pool: string, handler?: string): WorkConsumer;
  /** Items that ran out of deliveries, for the hub to record. Ends when `signal` aborts. */
  deadLetters(signal: AbortSignal): AsyncIterable<DeadLetter>;
  /**
   * Which of these tasks still have a work item in the queue (waiting,
   * leased or delayed): the reconciler republishes the others.
   */
  queued(tasks: readonly QueuedTask[]): Promise<Set<string>>;
  close(): Promise<void>;
}

export interface WorkConsumer {
  /**
   * Leases up to `max` items, waiting up to `maxWaitMs` for the first one.
   * Returns [] on timeout or when `signal` aborts.
   */
  fetch(max: number, options?: { signal?: AbortSignal; maxWaitMs?: number }): Promise<Lease[]>;
}

export interface Lease {
  readonly item: WorkItem;
  /** 1-based delivery count of this publication. */
  readonly delivery: number;
  /** Fencing token: see core/lease-epoch.ts. */
  readonly epoch: number;
  /**
   * Set when the queue cannot vouch that a first delivery is one: it came
   * soon after a reconnect, and a restarted nats-server may have lost its
   * delivery counts (the work may have run already).
   */
  readonly deliveryCountUncertain?: boolean;
  /** Done with the item: it will not be delivered again. */
  ack(): Promise<void>;
  /** Give the item back, to be redelivered after `delayMs`. */
  nak(delayMs?: number): Promise<void>;
  /** Still working: restart the ack timer. */
  extend(): Promise<void>;
}

export interface QueuedTask {
  readonly pool: string;
  /** Set for handler tasks: their lane. */
  readonly handler?: string;
  readonly taskId: string;
}

export interface DeadLetter {
  readonly item: WorkItem;
  readonly deliveries: number;
}

export interface WorkQueueOptions {
  /** How long a lease lasts without ack or extend. @default 30_000 */
  ackWaitMs: number;
  /** Deliveries of one publication before it becomes a dead letter. @default 5 */
  maxDeliveries: number;
  /** How long a dedupe key is remembered. @default 120_000 (JetStream's default) */
  dedupeWindowMs: number;
}

export const DEFAULT_WORK_QUEUE_OPTIONS: WorkQueueOptions = {
  ackWaitMs: 30_000,
  maxDeliveries: 5,
  dedupeWindowMs: 120_000,
};

export const DEFAULT_POOL = "default";

export const poolOf = (item: WorkItem): string => item.spec?.pool || DEFAULT_POOL;

/** Where an item waits: its pool, and for a handler task also the handler. */
export interface Lane {
  readonly pool: string;
  readonly handler?: string;
}

export function laneOf(item: WorkItem): Lane {
  const target = item.spec?.target;
  return target?.case === "handler"
    ? { pool: poolOf(item), handler: target.value.handler }
    : { pool: poolOf(item) };
}

/** One string per lane, for maps: `pool` or `pool/handler`. */
export const laneKey = (lane: Lane): string => (lane.handler ? `${lane.pool}/${lane.handler}` : lane.pool);

/** `task_id:attempt:dispatch`: the same publication is never queued twice. */
export const dedupeKey = (item: WorkItem): string => `${item.taskId}:${item.attempt}:${item.dispatch}`;
