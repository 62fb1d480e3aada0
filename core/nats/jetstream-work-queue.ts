import { clone, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  ReplayPolicy,
  RetentionPolicy,
  type StoredMsg,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import { encodedWorkItem } from "../encoded-work-item.js";
import { errorMessage } from "../errors.js";
import { type WorkItem, WorkItemSchema } from "../gen/taskframe/v1/messages_pb.js";
import { leaseEpoch } from "../lease-epoch.js";
import type { Logger } from "../logger.js";
import {
  DEFAULT_WORK_QUEUE_OPTIONS,
  type DeadLetter,
  dedupeKey,
  type Lane,
  type Lease,
  laneKey,
  laneOf,
  type QueuedTask,
  type WorkConsumer,
  type WorkQueue,
  type WorkQueueOptions,
} from "../work-queue.js";
import { DeadLetterAdvisories } from "./dead-letter-advisories.js";
import { ensureConsumer, ensureStream } from "./ensure.js";
import { linkedSignal } from "./linked-signal.js";
import { NatsNames, validatePool } from "./names.js";
import { ConsumerUnavailableError, PullConsumer, type PulledMessage } from "./pull.js";
import { onReconnect } from "./reconnects.js";
import { parsePubAck, replyMuxOf } from "./replies.js";

export interface JetStreamWorkQueueOptions extends Partial<WorkQueueOptions> {
  /** Prefix of every subject, stream and consumer name. @default "taskframe" */
  namespace?: string;
  /** Stream replicas (3 in a cluster). @default 1 */
  replicas?: number;
  /** @default "file" */
  storage?: "file" | "memory";
  /** Where problems that do not fail a call are reported (e.g. retried dead-letter reads). */
  logger?: Logger;
}

/** Publishes awaited at once; larger publishes go in windows of this many. */
const PUBLISH_WINDOW = 2_048;
/** How long a publish waits for JetStream's PubAck (as nats.js's default). */
const PUBLISH_TIMEOUT_MS = 5_000;
/** Concurrent by-subject lookups of queued(). */
const LOOKUP_WINDOW = 256;

/**
 * The distributed mode's work queue: one work-queue stream per pool
 * (`<NS>_WORK_<POOL>`, subjects `<ns>.work.<pool>.<taskId>`) with one durable
 * pull consumer shared by every sidecar of the pool. Streams and consumers
 * are created (or updated to these options) when a pool is first used. The
 * caller owns the connection: close() leaves it open.
 */
export class JetStreamWorkQueue implements WorkQueue {
  readonly options: WorkQueueOptions;
  readonly names: NatsNames;
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #replicas: number;
  readonly #storage: "file" | "memory";
  readonly #advisories: DeadLetterAdvisories;
  readonly #logger: Logger | undefined;
  readonly #pools = new Map<string, Promise<PullConsumer>>();
  readonly #closing = new AbortController();
  readonly #stopWatchingReconnects: () => void;
  /** Until when (monotonic clock) deliveries follow a reconnect closely enough to be uncertain. */
  #countsUncertainUntil = 0;

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    names: NatsNames,
    advisories: DeadLetterAdvisories,
    options: JetStreamWorkQueueOptions,
  ) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.names = names;
    this.#advisories = advisories;
    this.#replicas = options.replicas ?? 1;
    this.#storage = options.storage ?? "file";
    this.#logger = options.logger;
    this.options = {
      ackWaitMs: options.ackWaitMs ?? DEFAULT_WORK_QUEUE_OPTIONS.ackWaitMs,
      maxDeliveries: options.maxDeliveries ?? DEFAULT_WORK_QUEUE_OPTIONS.maxDeliveries,
      dedupeWindowMs: options.dedupeWindowMs ?? DEFAULT_WORK_QUEUE_OPTIONS.dedupeWindowMs,
    };
    // a server that restarted redelivers what it had not seen acked within an ack wait or so,
    // possibly without its delivery counts
    this.#stopWatchingReconnects = onReconnect(nc, () => {
      this.#countsUncertainUntil = performance.now() + 2 * this.options.ackWaitMs;
    });
  }

  static async open(
    nc: NatsConnection,
    options: JetStreamWorkQueueOptions = {},
  ): Promise<JetStreamWorkQueue> {
    const names = new NatsNames(options.namespace);
    const jsm = await jetstreamManager(nc).catch((error: unknown) => {
      throw new Error(`JetStream is not available on ${nc.getServer()}: ${errorMessage(error)}`, {
        cause: error,
      });
    });
    const advisories = await DeadLetterAdvisories.open(nc, jsm, names, {
      replicas: options.replicas ?? 1,
      storage: options.storage ?? "file",
      logger: options.logger,
    });
    return new JetStreamWorkQueue(nc, jsm, names, advisories, options);
  }

  get #closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * The item as one message. Too large for one, it goes without the task's
   * dependencies (the hub resolved them; a task with a million `needs` names
   * them all) and then without a handler input (the sidecar fetches it).
   */
  #encode(item: WorkItem): Uint8Array {
    const encoded = encodedWorkItem(item);
    const limit = (this.#nc.info?.max_payload || 1024 * 1024) - 4 * 1024;
    if (encoded.length <= limit || !item.spec) return encoded;
    const slim = clone(WorkItemSchema, item);
    const spec = slim.spec!;
    spec.needs = [];
    spec.after = [];
    const withoutDependencies = toBinary(WorkItemSchema, slim);
    if (withoutDependencies.length <= limit || spec.target.case !== "handler") return withoutDependencies;
    slim.inputElided = true;
    spec.target.value.input = new Uint8Array();
    return toBinary(WorkItemSchema, slim);
  }

  async publish(items: readonly WorkItem[]): Promise<void> {
    if (this.#closed) throw new Error("work queue is closed");
    // every subject first: a bad task id fails the call before anything is published
    const messages = items.map((item) => {
      const lane = laneOf(item);
      return { item, lane: laneKey(lane), subject: this.names.workSubject(lane, item.taskId) };
    });
    let pending = messages;
    for (let attempt = 1; pending.length > 0; attempt++) {
      await Promise.all([...new Set(pending.map((m) => m.lane))].map((lane) => this.#pool(lane)));
      const failed: { message: (typeof messages)[number]; error: unknown }[] = [];
      for (let start = 0; start < pending.length; start += PUBLISH_WINDOW) {
        const window = pending.slice(start, start + PUBLISH_WINDOW);
        const results = await Promise.allSettled(
          window.map(({ item, subject }) =>
            replyMuxOf(this.#nc)
              .request(subject, this.#encode(item), { timeoutMs: PUBLISH_TIMEOUT_MS, msgId: dedupeKey(item) })
              .then(parsePubAck),
          ),
        );
        for (const [i, result] of results.entries()) {
          if (result.status === "rejected") failed.push({ message: window[i]!, error: result.reason });
        }
      }
      if (failed.length === 0) return;
      if (attempt >= 2) {
        throw new Error(
          `JetStream did not accept ${failed.length} of ${items.length} work items: ${errorMessage(failed[0]!.error)}`,
          { cause: failed[0]!.error },
        );
      }
      // The stream may be gone (e.g. NATS restarted with memory storage): recreate it, then
      // publish the rest again; their dedupe keys drop any that did arrive.
      for (const lane of new Set(failed.map((f) => f.message.lane))) this.#pools.delete(lane);
      pending = failed.map((f) => f.message);
    }
  }

  consumer(pool: string, handler?: string): WorkConsumer {
    validatePool(pool);
    const lane = laneKey(handler ? { pool, handler } : { pool });
    return { fetch: (max, options) => this.#fetch(lane, max, options) };
  }

  async #fetch(
    pool: string,
    max: number,
    options: { signal?: AbortSignal; maxWaitMs?: number } = {},
  ): Promise<Lease[]> {
    if (this.#closed || options.signal?.aborted) return [];
    const { signal, dispose } = linkedSignal(options.signal, this.#closing.signal);
    try {
      for (let attempt = 1; ; attempt++) {
        const ready = this.#pool(pool);
        const pull = await ready;
        if (signal.aborted) return [];
        try {
          return await this.#leases(await pull.fetch(max, { signal, maxWaitMs: options.maxWaitMs }));
        } catch (error) {
          if (attempt >= 2 || !(error instanceof ConsumerUnavailableError)) throw error;
          this.#forget(pool, ready); // e.g. NATS restarted with memory storage: recreate them once
        }
      }
    } finally {
      dispose();
    }
  }

  async #leases(messages: readonly PulledMessage[]): Promise<Lease[]> {
    const leases: Lease[] = [];
    const uncertain = performance.now() < this.#countsUncertainUntil;
    for (const message of messages) {
      let item: WorkItem;
      try {
        item = fromBinary(WorkItemSchema, message.data);
      } catch {
        // not a work item (someone else published here): it could never succeed
        await message.term().catch(() => {});
        continue;
      }
      leases.push({
        item,
        delivery: message.deliveryCount,
        epoch: leaseEpoch(item.dispatch, message.deliveryCount),
        ...(uncertain ? { deliveryCountUncertain: true } : {}),
        ack: () => message.ack(),
        nak: (delayMs) => message.nak(delayMs),
        extend: () => message.working(),
      });
    }
    return leases;
  }

  async *deadLetters(signal: AbortSignal): AsyncIterable<DeadLetter> {
    if (this.#closed) return;
    const linked = linkedSignal(signal, this.#closing.signal);
    try {
      for await (const { advisory, done } of this.#advisories.receive(linked.signal)) {
        const stream = advisory.stream;
        let stored: StoredMsg | null;
        try {
          stored = await this.#jsm.streams.getMessage(stream, { seq: advisory.stream_seq });
        } catch (error) {
          if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) {
            // not done(): the advisory comes back after its ack wait
            this.#logger?.warn(
              `reading dead letter ${stream}#${advisory.stream_seq}: ${errorMessage(error)}`,
            );
            continue;
          }
          stored = null;
        }
        let item: WorkItem | undefined;
        try {
          item = stored ? fromBinary(WorkItemSchema, stored.data) : undefined;
        } catch {
          item = undefined;
        }
        // stored is null when another hub already dealt with it (or it was acked late)
        if (item) yield { item, deliveries: advisory.deliveries };
        try {
          // work-queue streams keep what their consumer gave up on: remove it once recorded
          if (stored) await this.#deleteMessage(stream, advisory.stream_seq);
          await done();
        } catch (error) {
          // the advisory comes back after its ack wait, and with it another try
          this.#logger?.warn(`removing dead letter ${stream}#${advisory.stream_seq}: ${errorMessage(error)}`);
        }
      }
    } finally {
      linked.dispose();
    }
  }

  async #deleteMessage(stream: string, seq: number): Promise<void> {
    try {
      await this.#jsm.streams.deleteMessage(stream, seq, false);
    } catch (error) {
      // already gone: someone else deleted it
      if (!(error instanceof JetStreamApiError)) throw error;
    }
  }

  async queued(tasks: readonly QueuedTask[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let start = 0; start < tasks.length; start += LOOKUP_WINDOW) {
      await Promise.all(
        tasks.slice(start, start + LOOKUP_WINDOW).map(async ({ pool, handler, taskId }) => {
          if (await this.#hasMessage(handler ? { pool, handler } : { pool }, taskId)) found.add(taskId);
        }),
      );
    }
    return found;
  }

  async #hasMessage(lane: Lane, taskId: string): Promise<boolean> {
    try {
      const stored = await this.#jsm.streams.getMessage(this.names.workStream(lane), {
        last_by_subj: this.names.workSubject(lane, taskId),
      });
      return stored !== null;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return false;
      throw error;
    }
  }

  async close(): Promise<void> {
    // ends pending fetches and dead-letter iterations; the connection is the caller's
    this.#closing.abort();
    this.#stopWatchingReconnects();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #pool(pool: string): Promise<PullConsumer> {
    let ready = this.#pools.get(pool);
    if (!ready) {
      const ensuring = this.#ensurePool(pool);
      ready = ensuring;
      this.#pools.set(pool, ensuring);
      ensuring.catch(() => {
        if (this.#pools.get(pool) === ensuring) this.#pools.delete(pool);
      });
    }
    return ready;
  }

  #forget(pool: string, ready: Promise<PullConsumer>): void {
    if (this.#pools.get(pool) === ready) this.#pools.delete(pool);
  }

  /** `key` is a lane key (laneKey): `pool` or `pool/handler`. */
  async #ensurePool(key: string): Promise<PullConsumer> {
    const separator = key.indexOf("/");
    const lane: Lane =
      separator < 0 ? { pool: key } : { pool: key.slice(0, separator), handler: key.slice(separator + 1) };
    const stream = this.names.workStream(lane);
    await ensureStream(this.#jsm, {
      name: stream,
      subjects: [this.names.workSubjects(lane)],
      retention: RetentionPolicy.Workqueue,
      storage: this.#storage,
      num_replicas: this.#replicas,
      duplicate_window: nanos(this.options.dedupeWindowMs),
      discard: DiscardPolicy.Old,
    });
    await ensureConsumer(this.#jsm, stream, {
      durable_name: this.names.workConsumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.options.ackWaitMs),
      max_deliver: this.options.maxDeliveries,
      max_ack_pending: 100_000,
      deliver_policy: DeliverPolicy.All,
      replay_policy: ReplayPolicy.Instant,
    });
    return new PullConsumer(this.#nc, stream, this.names.workConsumer);
  }
}
