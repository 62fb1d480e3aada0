import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, JetStreamApiError, type JetStreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { type NatsConnection, nanos, type Subscription } from "@nats-io/transport-node";
import { AsyncQueue } from "../async-queue.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import { ensureConsumer, ensureStream } from "./ensure.js";
import type { NatsNames } from "./names.js";
import { ConsumerUnavailableError, keepWorking, PullConsumer, type PulledMessage } from "./pull.js";

/*
 * The MaxDeliver advisories of a namespace's work consumers. The server sends
 * each advisory once, on core NATS; a stream keeps them until a hub has dealt
 * with them, so that an item that runs out of deliveries while no hub listens
 * still becomes a dead letter later (otherwise it would stay in its work
 * stream, "queued" but never delivered again). Should another stream already
 * capture these subjects (a monitoring stream on $JS.EVENT.ADVISORY.>), we fall
 * back to a plain subscription, which only sees advisories sent while it runs.
 */

export interface MaxDeliveriesAdvisory {
  readonly stream: string;
  readonly consumer: string;
  readonly stream_seq: number;
  readonly deliveries: number;
}

export interface ReceivedAdvisory {
  readonly advisory: MaxDeliveriesAdvisory;
  /** Dealt with: never deliver it again. */
  done(): Promise<void>;
}

export interface DeadLetterAdvisoriesOptions {
  replicas: number;
  storage: "file" | "memory";
  logger?: Logger;
}

const SUBJECTS_OVERLAP = 10065;
const ACK_WAIT_MS = 60_000;

export class DeadLetterAdvisories {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #names: NatsNames;
  readonly #options: DeadLetterAdvisoriesOptions;
  #pull: PullConsumer | undefined;

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    names: NatsNames,
    options: DeadLetterAdvisoriesOptions,
  ) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#names = names;
    this.#options = options;
  }

  static async open(
    nc: NatsConnection,
    jsm: JetStreamManager,
    names: NatsNames,
    options: DeadLetterAdvisoriesOptions,
  ): Promise<DeadLetterAdvisories> {
    const advisories = new DeadLetterAdvisories(nc, jsm, names, options);
    try {
      await advisories.#ensure();
    } catch (error) {
      if (!(error instanceof Error && error.cause instanceof JetStreamApiError)) throw error;
      if (error.cause.code !== SUBJECTS_OVERLAP) throw error;
      options.logger?.warn(
        `${errorMessage(error)}: dead letters are seen only while a hub listens for them (plain subscription)`,
      );
    }
    return advisories;
  }

  async #ensure(): Promise<void> {
    const names = this.#names;
    await ensureStream(this.#jsm, {
      name: names.deadLetterStream,
      subjects: [names.deadLetterAdvisories],
      retention: RetentionPolicy.Workqueue,
      storage: this.#options.storage,
      num_replicas: this.#options.replicas,
    });
    await ensureConsumer(this.#jsm, names.deadLetterStream, {
      durable_name: names.deadLetterConsumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
      max_ack_pending: 10_000,
    });
    this.#pull = new PullConsumer(this.#nc, names.deadLetterStream, names.deadLetterConsumer);
  }

  /** Advisories of this namespace's work streams, until `signal` aborts. */
  receive(signal: AbortSignal): AsyncIterable<ReceivedAdvisory> {
    return this.#pull ? this.#durable(this.#pull, signal) : this.#subscribed(signal);
  }

  async *#durable(pull: PullConsumer, signal: AbortSignal): AsyncIterable<ReceivedAdvisory> {
    for (let failures = 0; !signal.aborted; ) {
      let messages: PulledMessage[];
      try {
        messages = await pull.fetch(64, { signal, maxWaitMs: 30_000 });
        failures = 0;
      } catch (error) {
        failures += 1;
        const delayMs = Math.min(5_000, 100 * 2 ** failures);
        this.#options.logger?.warn({ delayMs }, `reading dead-letter advisories: ${errorMessage(error)}`);
        if (error instanceof ConsumerUnavailableError) await this.#ensure().catch(() => {});
        await sleep(delayMs, undefined, { signal }).catch(() => {});
        continue;
      }
      for (const [i, message] of messages.entries()) {
        const advisory = this.#parse(message.data);
        if (!advisory) {
          await message.term().catch(() => {});
          continue;
        }
        // yield hands control to the hub, which records the letter before asking for the next
        const stop = keepWorking([message], ACK_WAIT_MS / 3);
        let resumed = false;
        try {
          yield { advisory, done: () => message.ackConfirmed() };
          resumed = true;
        } finally {
          stop();
          // the hub stopped mid-batch: let another hub take the rest at once
          if (!resumed) await nakAll(messages.slice(i));
        }
        if (signal.aborted) {
          await nakAll(messages.slice(i + 1));
          return;
        }
      }
    }
  }

  async *#subscribed(signal: AbortSignal): AsyncIterable<ReceivedAdvisory> {
    const queue = new AsyncQueue<MaxDeliveriesAdvisory>();
    let sub: Subscription | undefined;
    try {
      sub = this.#nc.subscribe(this.#names.deadLetterAdvisories, {
        callback: (error, msg) => {
          const advisory = error ? undefined : this.#parse(msg.data);
          if (advisory) queue.push(advisory);
        },
      });
      while (!signal.aborted) {
        const advisories = await queue.take(Number.POSITIVE_INFINITY, { signal });
        if (advisories === undefined) return;
        for (const advisory of advisories) yield { advisory, done: async () => {} };
      }
    } finally {
      sub?.unsubscribe();
      queue.close();
    }
  }

  #parse(data: Uint8Array): MaxDeliveriesAdvisory | undefined {
    let parsed: Partial<MaxDeliveriesAdvisory>;
    try {
      parsed = JSON.parse(new TextDecoder().decode(data)) as Partial<MaxDeliveriesAdvisory>;
    } catch {
      return undefined;
    }
    const { stream, consumer, stream_seq, deliveries } = parsed;
    if (typeof stream !== "string" || typeof consumer !== "string") return undefined;
    if (typeof stream_seq !== "number" || typeof deliveries !== "number") return undefined;
    if (!this.#names.isWorkStream(stream) || consumer !== this.#names.workConsumer) return undefined;
    return { stream, consumer, stream_seq, deliveries };
  }
}

async function nakAll(messages: readonly PulledMessage[]): Promise<void> {
  await Promise.allSettled(messages.map((message) => message.nak()));
}
