import { AsyncQueue } from "./async-queue.js";
import type { WorkItem } from "./gen/taskframe/v1/messages_pb.js";
import { leaseEpoch } from "./lease-epoch.js";
import {
  DEFAULT_WORK_QUEUE_OPTIONS,
  type DeadLetter,
  dedupeKey,
  type Lease,
  laneKey,
  laneOf,
  type QueuedTask,
  type WorkConsumer,
  type WorkQueue,
  type WorkQueueOptions,
} from "./work-queue.js";

interface Entry {
  readonly item: WorkItem;
  readonly pool: string;
  deliveries: number;
}

interface InFlight {
  readonly entry: Entry;
  readonly delivery: number;
  deadline: number;
}

interface Delayed {
  readonly entry: Entry;
  readyAt: number;
}

/**
 * The embedded mode's work queue: JetStream's lease contract (ack, nak with
 * delay, in-progress extension, redelivery on expiry, max deliveries, dedupe
 * window) in one process. One sweep timer serves every lease.
 */
export class MemoryWorkQueue implements WorkQueue {
  readonly options: WorkQueueOptions;
  #pools = new Map<string, AsyncQueue<Entry>>();
  #inFlight = new Set<InFlight>();
  #delayed = new Set<Delayed>();
  #dedupe = new Map<string, number>();
  #deadLetters = new AsyncQueue<DeadLetter>();
  #sweeper: NodeJS.Timeout;
  #closed = false;

  readonly #routeAllTo: string | undefined;

  /**
   * `routeAllTo`: deliver every item to this one pool whatever pool it names
   * (the embedded mode, where one sidecar on one host runs every pool).
   */
  constructor(options: Partial<WorkQueueOptions> & { routeAllTo?: string } = {}) {
    const { routeAllTo, ...queueOptions } = options;
    this.#routeAllTo = routeAllTo;
    this.options = { ...DEFAULT_WORK_QUEUE_OPTIONS, ...queueOptions };
    const sweepEveryMs = Math.max(5, Math.min(250, Math.floor(this.options.ackWaitMs / 10)));
    this.#sweeper = setInterval(() => this.#sweep(), sweepEveryMs);
    this.#sweeper.unref();
  }

  async publish(items: readonly WorkItem[]): Promise<void> {
    if (this.#closed) throw new Error("work queue is closed");
    const now = Date.now();
    for (const item of items) {
      const key = dedupeKey(item);
      const seenUntil = this.#dedupe.get(key);
      if (seenUntil !== undefined && seenUntil > now) continue;
      this.#dedupe.delete(key); // keep the map in expiry order
      this.#dedupe.set(key, now + this.options.dedupeWindowMs);
      const lane = laneOf(item);
      const pool = laneKey({ ...lane, pool: this.#routeAllTo ?? lane.pool });
      this.#pool(pool).push({ item, pool, deliveries: 0 });
    }
  }

  consumer(pool: string, handler?: string): WorkConsumer {
    const lane = laneKey(handler ? { pool, handler } : { pool });
    return {
      fetch: async (max, options = {}) => {
        // #pool would create a fresh, never-closed queue for a pool first seen after close
        if (this.#closed) return [];
        const entries = await this.#pool(lane).take(max, options);
        return (entries ?? []).map((entry) => this.#lease(entry));
      },
    };
  }

  async *deadLetters(signal: AbortSignal): AsyncIterable<DeadLetter> {
    while (!signal.aborted) {
      const letters = await this.#deadLetters.take(Number.POSITIVE_INFINITY, { signal });
      if (letters === undefined) return;
      yield* letters;
    }
  }

  async queued(tasks: readonly QueuedTask[]): Promise<Set<string>> {
    const wanted = new Set(tasks.map((t) => t.taskId));
    const found = new Set<string>();
    const check = (entry: Entry) => {
      if (wanted.has(entry.item.taskId)) found.add(entry.item.taskId);
    };
    for (const queue of this.#pools.values()) for (const entry of queue.peek()) check(entry);
    for (const flight of this.#inFlight) check(flight.entry);
    for (const delayed of this.#delayed) check(delayed.entry);
    return found;
  }

  /** Items waiting in a pool (not leased, not delayed). */
  depth(pool: string): number {
    return this.#pools.get(pool)?.size ?? 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const queue of this.#pools.values()) queue.close();
    this.#deadLetters.close();
    this.#inFlight.clear();
    this.#delayed.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #pool(pool: string): AsyncQueue<Entry> {
    let queue = this.#pools.get(pool);
    if (!queue) {
      queue = new AsyncQueue<Entry>();
      this.#pools.set(pool, queue);
    }
    return queue;
  }

  #lease(entry: Entry): Lease {
    entry.deliveries += 1;
    const flight: InFlight = {
      entry,
      delivery: entry.deliveries,
      deadline: Date.now() + this.options.ackWaitMs,
    };
    this.#inFlight.add(flight);
    // Only the newest delivery of an entry may settle it; a late ack from an
    // expired lease is ignored (the store's fence decides what counts).
    const current = () => this.#inFlight.has(flight);
    return {
      item: entry.item,
      delivery: flight.delivery,
      epoch: leaseEpoch(entry.item.dispatch, flight.delivery),
      ack: async () => {
        this.#inFlight.delete(flight);
      },
      nak: async (delayMs = 0) => {
        if (!current()) return;
        this.#inFlight.delete(flight);
        if (delayMs > 0) this.#delayed.add({ entry, readyAt: Date.now() + delayMs });
        else this.#requeue(entry);
      },
      extend: async () => {
        if (current()) flight.deadline = Date.now() + this.options.ackWaitMs;
      },
    };
  }

  #requeue(entry: Entry): void {
    if (entry.deliveries >= this.options.maxDeliveries) {
      this.#deadLetters.push({ item: entry.item, deliveries: entry.deliveries });
      return;
    }
    this.#pool(entry.pool).push(entry);
  }

  #sweep(): void {
    const now = Date.now();
    for (const flight of this.#inFlight) {
      if (flight.deadline > now) continue;
      this.#inFlight.delete(flight);
      this.#requeue(flight.entry);
    }
    for (const delayed of this.#delayed) {
      if (delayed.readyAt > now) continue;
      this.#delayed.delete(delayed);
      // through #requeue: a nak(delay) of the last delivery makes a dead letter too
      this.#requeue(delayed.entry);
    }
    for (const [key, until] of this.#dedupe) {
      if (until > now) break; // insertion order is expiry order
      this.#dedupe.delete(key);
    }
  }
}
