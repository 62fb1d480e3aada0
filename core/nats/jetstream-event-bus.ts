import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import { errorMessage } from "../errors.js";
import type { EventSink, EventSource, ReceivedEvents } from "../event-bus.js";
import { type EventBatch, EventBatchSchema } from "../gen/taskframe/v1/messages_pb.js";
import type { Logger } from "../logger.js";
import { ensureConsumer, ensureStream } from "./ensure.js";
import { linkedSignal } from "./linked-signal.js";
import { NatsNames } from "./names.js";
import { ConsumerUnavailableError, keepWorking, PullConsumer, type PulledMessage } from "./pull.js";
import { parsePubAck, replyMuxOf } from "./replies.js";
import { splitEventBatch } from "./split-event-batch.js";

/*
 * The event stream `<NS>_EVENTS` (subjects `<ns>.events.>`): sidecars publish
 * EventBatches to `<ns>.events.<host>`; every hub reads them through one
 * shared durable consumer and acks them once recorded. Work-queue retention:
 * a recorded event leaves the stream; nothing else expires.
 */

export interface EventStreamOptions {
  /** @default "taskframe" */
  namespace?: string;
  /** @default 1 */
  replicas?: number;
  /** @default "file" */
  storage?: "file" | "memory";
}

/** Sink retries of one batch within this window are dropped by JetStream. */
const EVENT_DEDUPE_WINDOW_MS = 120_000;
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** How long a publish waits for JetStream's PubAck (as nats.js's default). */
const PUBLISH_TIMEOUT_MS = 5_000;

/** Creates the event stream, or updates it to these settings. */
export async function ensureEventStream(nc: NatsConnection, options: EventStreamOptions = {}): Promise<void> {
  await ensureEventStreamWith(await manager(nc), new NatsNames(options.namespace), options);
}

async function ensureEventStreamWith(
  jsm: JetStreamManager,
  names: NatsNames,
  options: EventStreamOptions,
): Promise<void> {
  await ensureStream(jsm, {
    name: names.eventStream,
    subjects: [names.eventSubjects],
    retention: RetentionPolicy.Workqueue,
    storage: options.storage ?? "file",
    num_replicas: options.replicas ?? 1,
    duplicate_window: nanos(EVENT_DEDUPE_WINDOW_MS),
    discard: DiscardPolicy.Old,
  });
}

async function manager(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (error) {
    throw new Error(`JetStream is not available on ${nc.getServer()}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

export interface JetStreamEventSinkOptions extends EventStreamOptions {
  /** This sidecar's host: events go to `<ns>.events.<host>`. */
  host: string;
  /** Largest message to publish; the server's max_payload less a margin when unset or larger. */
  maxMessageBytes?: number;
}

/** A sidecar's side: publish() resolves once JetStream has stored every part of the batch. */
export class JetStreamEventSink implements EventSink {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #names: NatsNames;
  readonly #options: JetStreamEventSinkOptions;
  readonly #subject: string;
  // A batch the publisher retries keeps its message ids, so a retry after a lost PubAck is dropped.
  readonly #batchIds = new WeakMap<EventBatch, string>();

  private constructor(nc: NatsConnection, jsm: JetStreamManager, options: JetStreamEventSinkOptions) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#names = new NatsNames(options.namespace);
    this.#options = options;
    this.#subject = this.#names.eventSubject(options.host);
  }

  static async open(nc: NatsConnection, options: JetStreamEventSinkOptions): Promise<JetStreamEventSink> {
    const sink = new JetStreamEventSink(nc, await manager(nc), options);
    await ensureEventStreamWith(sink.#jsm, sink.#names, options);
    return sink;
  }

  async publish(batch: EventBatch): Promise<void> {
    if (batch.transitions.length === 0 && batch.logs.length === 0) return;
    let id = this.#batchIds.get(batch);
    if (id === undefined) {
      id = randomUUID();
      this.#batchIds.set(batch, id);
    }
    const parts = splitEventBatch(batch, this.#maxBytes()).map((data, i) => ({ data, msgID: `${id}:${i}` }));
    let failures = await this.#publish(parts);
    if (failures.length > 0) {
      // the stream may be gone (NATS restarted with memory storage): recreate it and try once more
      await ensureEventStreamWith(this.#jsm, this.#names, this.#options).catch(() => {});
      failures = await this.#publish(failures.map((f) => f.part));
    }
    if (failures.length > 0) {
      const { error } = failures[0]!;
      throw new Error(
        `JetStream did not accept ${failures.length} of ${parts.length} event messages from ${this.#options.host}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }

  async #publish(parts: readonly EventPart[]): Promise<{ part: EventPart; error: unknown }[]> {
    const results = await Promise.allSettled(
      parts.map(({ data, msgID }) =>
        replyMuxOf(this.#nc)
          .request(this.#subject, data, { timeoutMs: PUBLISH_TIMEOUT_MS, msgId: msgID })
          .then(parsePubAck),
      ),
    );
    return results.flatMap((result, i) =>
      result.status === "rejected" ? [{ part: parts[i]!, error: result.reason as unknown }] : [],
    );
  }

  /** Nothing to release (the connection is the caller's); for symmetry with the source. */
  async close(): Promise<void> {}

  #maxBytes(): number {
    const maxPayload = this.#nc.info?.max_payload || DEFAULT_MAX_PAYLOAD;
    // room for the subject, headers (the message id) and protocol overhead
    const limit = Math.floor(Math.max(maxPayload / 2, maxPayload - 64 * 1024));
    return Math.min(limit, this.#options.maxMessageBytes ?? limit);
  }
}

interface EventPart {
  readonly data: Uint8Array;
  readonly msgID: string;
}

export interface JetStreamEventSourceOptions extends EventStreamOptions {
  /**
   * How long a hub may hold a batch before it goes to another hub, should the
   * hub die. Extended while the batch is being recorded. @default 5_000
   */
  recorderAckWaitMs?: number;
  /** NATS messages merged into one received batch. @default 256 */
  maxMessagesPerBatch?: number;
  logger?: Logger;
}

/** The hub's side: batches merged from up to `maxMessagesPerBatch` messages, in stream order. */
export class JetStreamEventSource implements EventSource {
  readonly #jsm: JetStreamManager;
  readonly #names: NatsNames;
  readonly #options: JetStreamEventSourceOptions;
  readonly #ackWaitMs: number;
  readonly #maxMessages: number;
  readonly #pull: PullConsumer;
  readonly #closing = new AbortController();

  private constructor(nc: NatsConnection, jsm: JetStreamManager, options: JetStreamEventSourceOptions) {
    this.#jsm = jsm;
    this.#names = new NatsNames(options.namespace);
    this.#options = options;
    // short: a batch held by a hub that died goes to another hub this soon (the heartbeat covers slow ones)
    this.#ackWaitMs = options.recorderAckWaitMs ?? 5_000;
    this.#maxMessages = options.maxMessagesPerBatch ?? 256;
    this.#pull = new PullConsumer(nc, this.#names.eventStream, this.#names.recorderConsumer);
  }

  static async open(
    nc: NatsConnection,
    options: JetStreamEventSourceOptions = {},
  ): Promise<JetStreamEventSource> {
    const source = new JetStreamEventSource(nc, await manager(nc), options);
    await source.#ensure();
    return source;
  }

  async #ensure(): Promise<void> {
    await ensureEventStreamWith(this.#jsm, this.#names, this.#options);
    await ensureConsumer(this.#jsm, this.#names.eventStream, {
      durable_name: this.#names.recorderConsumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.#ackWaitMs),
      // events are the record: never give up on one
      max_deliver: -1,
      max_ack_pending: 20_000,
      deliver_policy: DeliverPolicy.All,
    });
  }

  async *receive(signal: AbortSignal): AsyncIterable<ReceivedEvents> {
    const linked = linkedSignal(signal, this.#closing.signal);
    try {
      for (let failures = 0; !linked.signal.aborted; ) {
        let messages: PulledMessage[];
        try {
          messages = await this.#pull.fetch(this.#maxMessages, { signal: linked.signal, maxWaitMs: 30_000 });
          failures = 0;
        } catch (error) {
          failures += 1;
          const delayMs = Math.min(5_000, 100 * 2 ** failures);
          this.#options.logger?.warn({ delayMs }, `receiving events: ${errorMessage(error)}`);
          // e.g. NATS restarted with memory storage: the stream and consumer are gone
          if (error instanceof ConsumerUnavailableError) await this.#ensure().catch(() => {});
          await sleep(delayMs, undefined, { signal: linked.signal }).catch(() => {});
          continue;
        }
        const batches: EventBatch[] = [];
        const kept: PulledMessage[] = [];
        for (const message of messages) {
          try {
            batches.push(fromBinary(EventBatchSchema, message.data));
            kept.push(message);
          } catch {
            // not an EventBatch: it could never be recorded
            await message.term().catch(() => {});
          }
        }
        if (kept.length === 0) continue;
        yield* this.#hold(batches, kept);
      }
    } finally {
      linked.dispose();
    }
  }

  /** Yields one merged batch; extends its messages until acked, hands them back if it never is. */
  async *#hold(
    batches: readonly EventBatch[],
    messages: readonly PulledMessage[],
  ): AsyncIterable<ReceivedEvents> {
    let acked = false;
    const stopExtending = keepWorking(messages, Math.max(100, Math.floor(this.#ackWaitMs / 3)));
    try {
      yield {
        transitions: batches.flatMap((b) => b.transitions),
        logs: batches.flatMap((b) => b.logs),
        ack: async () => {
          // confirmed: a recorded batch must be gone from the backlog the moment this resolves
          await Promise.all(messages.map((m) => m.ackConfirmed()));
          acked = true;
          stopExtending();
        },
      };
    } finally {
      stopExtending();
      // not recorded (the hub is stopping): redeliver now, to whichever hub is still there
      if (!acked) await Promise.allSettled(messages.map((m) => m.nak()));
    }
  }

  /** Messages (each one sidecar batch, or part of one) not yet recorded. */
  async backlog(): Promise<number> {
    const info = await this.#jsm.consumers.info(this.#names.eventStream, this.#names.recorderConsumer);
    return info.num_pending + info.num_ack_pending;
  }

  /** Ends every receive(); the connection is the caller's. */
  async close(): Promise<void> {
    this.#closing.abort();
  }
}
