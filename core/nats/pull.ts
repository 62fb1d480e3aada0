import { createInbox, type Msg, type MsgHdrs, type NatsConnection, nanos } from "@nats-io/transport-node";
import { errorMessage } from "../errors.js";
import { onReconnect } from "./reconnects.js";
import { replyMuxOf } from "./replies.js";

/*
 * A low-level pull from a JetStream durable consumer that returns as soon as
 * work is there. nats.js's consumer.fetch waits until it has `max` messages
 * or `expires` passed (and rejects expires < 1 s), so this speaks the pull
 * protocol itself: a JSON request to $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
 * with a reply inbox, answered by data messages (whose reply subject is the
 * ack subject) and status messages (404 No Messages, 408 Request Timeout,
 * 409 ...) that end the request.
 */

export interface PulledMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** Where acks go: `$JS.ACK.<stream>.<consumer>...` */
  readonly ackSubject: string;
  readonly streamSequence: number;
  /** 1-based: how many times the consumer delivered this message. */
  readonly deliveryCount: number;
  /** Messages the consumer had yet to deliver when it sent this one. */
  readonly pending: number;
  /** Done: not delivered again (sent without waiting for the server's confirmation). */
  ack(): Promise<void>;
  /** Done, and resolves once the server has confirmed it (for callers that count on it at once). */
  ackConfirmed(): Promise<void>;
  /** Redeliver now, or after `delayMs`. */
  nak(delayMs?: number): Promise<void>;
  /** Still working on it: restarts the ack timer. */
  working(): Promise<void>;
  /** Never redeliver (a message that cannot be processed at all). */
  term(): Promise<void>;
}

export interface AckSubjectInfo {
  readonly stream: string;
  readonly consumer: string;
  readonly deliveryCount: number;
  readonly streamSequence: number;
  readonly consumerSequence: number;
  readonly pending: number;
}

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
 * and the v2 form `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>...`
 * (possibly followed by more tokens).
 */
export function parseAckSubject(subject: string): AckSubjectInfo | undefined {
  const tokens = subject.split(".");
  if (tokens[0] !== "$JS" || tokens[1] !== "ACK") return undefined;
  let rest: string[];
  if (tokens.length === 9) rest = tokens.slice(2);
  else if (tokens.length >= 11) rest = tokens.slice(4);
  else return undefined;
  const [stream, consumer, delivered, sseq, cseq, , pending] = rest;
  const numbers = [delivered, sseq, cseq, pending].map(Number);
  if (!stream || !consumer || numbers.some((n) => !Number.isSafeInteger(n))) return undefined;
  const [deliveryCount, streamSequence, consumerSequence, pendingCount] = numbers as [
    number,
    number,
    number,
    number,
  ];
  return { stream, consumer, deliveryCount, streamSequence, consumerSequence, pending: pendingCount };
}

/** The consumer (or its stream) does not exist, or JetStream does not answer for it. */
export class ConsumerUnavailableError extends Error {
  override name = "ConsumerUnavailableError";
  constructor(
    readonly stream: string,
    readonly consumer: string,
    readonly status: number,
    description: string,
  ) {
    super(`JetStream consumer ${stream}/${consumer} is unavailable: ${status} ${description}`);
  }
}

/** JetStream does not answer for the consumer at all: the server is unreachable (or JetStream is off). */
export class PullUnansweredError extends Error {
  override name = "PullUnansweredError";
  constructor(
    readonly stream: string,
    readonly consumer: string,
    problem: string,
  ) {
    super(`JetStream does not answer for consumer ${stream}/${consumer}: ${problem}`);
  }
}

export interface PullConsumerOptions {
  /** @default "$JS.API" */
  apiPrefix?: string;
  /** How long an ack, nak or extension waits for the server's confirmation. @default 5_000 */
  ackTimeoutMs?: number;
  /** The longest one waiting request may last; longer waits take several. @default 30_000 */
  maxRequestWaitMs?: number;
  /** How long past a request's expiry to wait for the server's answer (e.g. while disconnected). @default 1_000 */
  graceMs?: number;
}

interface FetchOptions {
  signal?: AbortSignal;
  /** Wait at most this long for the first message; forever (until `signal`) when unset. */
  maxWaitMs?: number;
}

const UNANSWERED = Symbol("unanswered");

/** After a request is abandoned, how long past its expiry its inbox keeps handing back late deliveries. */
const LINGER_GRACE_MS = 5_000;

export class PullConsumer {
  readonly #nc: NatsConnection;
  readonly #apiPrefix: string;
  readonly #nextSubject: string;
  readonly #ackTimeoutMs: number;
  readonly #maxRequestWaitMs: number;
  readonly #graceMs: number;

  constructor(
    nc: NatsConnection,
    readonly stream: string,
    readonly consumer: string,
    options: PullConsumerOptions = {},
  ) {
    this.#nc = nc;
    this.#apiPrefix = options.apiPrefix ?? "$JS.API";
    this.#nextSubject = `${this.#apiPrefix}.CONSUMER.MSG.NEXT.${stream}.${consumer}`;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 5_000;
    this.#maxRequestWaitMs = options.maxRequestWaitMs ?? 30_000;
    this.#graceMs = options.graceMs ?? 1_000;
  }

  /**
   * Up to `max` messages: whatever is there at once; if nothing, waits for the
   * first one (up to `maxWaitMs`) and adds whatever else is there by then.
   * Returns [] on timeout, and on abort (handing back anything received).
   */
  async fetch(max: number, options: FetchOptions = {}): Promise<PulledMessage[]> {
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`fetch max must be a positive integer: ${max}`);
    const { signal, maxWaitMs } = options;
    if (signal?.aborted) return [];
    const deadline = maxWaitMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + maxWaitMs;

    const ready = await this.#request(max, undefined, signal);
    // unanswered: a reconnect dropped it, or NATS 2.9 left it (right after a message ran out of deliveries)
    if (ready === UNANSWERED) await this.#checkConsumer();
    else if (ready.length > 0) return this.#unlessAborted(ready, signal);

    let first: PulledMessage[] = [];
    while (first.length === 0) {
      const remainingMs = Math.ceil(deadline - Date.now());
      if (remainingMs <= 0 || signal?.aborted) return [];
      const waited = await this.#request(1, Math.min(remainingMs, this.#maxRequestWaitMs), signal);
      // a reconnect dropped the request (the server may have lost the consumer too), or no answer at all
      if (waited === UNANSWERED) await this.#checkConsumer();
      else first = waited;
    }
    if (max === 1) return this.#unlessAborted(first, signal);
    const rest = await this.#request(max - 1, undefined, signal);
    return this.#unlessAborted(rest === UNANSWERED ? first : [...first, ...rest], signal);
  }

  /** Throws if the consumer does not exist or JetStream does not answer. */
  async #checkConsumer(): Promise<void> {
    let reply: Msg;
    try {
      reply = await this.#nc.request(
        `${this.#apiPrefix}.CONSUMER.INFO.${this.stream}.${this.consumer}`,
        undefined,
        {
          timeout: this.#ackTimeoutMs,
        },
      );
    } catch (error) {
      throw new PullUnansweredError(this.stream, this.consumer, errorMessage(error));
    }
    let answer: { error?: { code?: number; description?: string } };
    try {
      answer = JSON.parse(new TextDecoder().decode(reply.data)) as typeof answer;
    } catch (error) {
      throw new PullUnansweredError(this.stream, this.consumer, errorMessage(error));
    }
    if (answer.error) {
      throw new ConsumerUnavailableError(
        this.stream,
        this.consumer,
        answer.error.code ?? 0,
        answer.error.description ?? "",
      );
    }
  }

  /** An abort that lands between a request's answer and our continuation: hand the messages back. */
  #unlessAborted(messages: PulledMessage[], signal: AbortSignal | undefined): PulledMessage[] {
    if (!signal?.aborted) return messages;
    for (const message of messages) this.#tell(message, "-NAK");
    return [];
  }

  /**
   * One pull request: `no_wait` when `waitMs` is undefined (ends at once when
   * nothing is there), otherwise waiting up to `waitMs`. Once abandoned (abort,
   * or the server not answering in time) its inbox stays subscribed until the
   * server ends the request, so that a late delivery is nak'ed, i.e.
   * redelivered at once rather than after the ack wait.
   */
  #request(
    batch: number,
    waitMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<PulledMessage[] | typeof UNANSWERED> {
    return new Promise<PulledMessage[] | typeof UNANSWERED>((resolve, reject) => {
      const received: PulledMessage[] = [];
      let delivered = 0;
      let state: "open" | "abandoned" | "done" = "open";
      let patience: NodeJS.Timeout | undefined;
      let linger: NodeJS.Timeout | undefined;
      let stopWatching = () => {};

      const stopWaiting = () => {
        clearTimeout(patience);
        signal?.removeEventListener("abort", onAbort);
        stopWatching();
      };
      // The server is done with the request (or we stop listening for good).
      const end = () => {
        if (state === "done") return;
        state = "done";
        stopWaiting();
        clearTimeout(linger);
        sub.unsubscribe();
      };
      const abandon = (keepReceived: boolean) => {
        if (state !== "open") return;
        state = "abandoned";
        stopWaiting();
        if (keepReceived) {
          resolve(delivered === 0 ? UNANSWERED : received);
        } else {
          for (const message of received) this.#tell(message, "-NAK");
          resolve([]);
        }
        linger = setTimeout(end, (waitMs ?? 0) + LINGER_GRACE_MS);
        linger.unref();
      };
      const onAbort = () => abandon(false);

      const onMessage = (msg: Msg) => {
        const code = msg.headers?.code ?? 0;
        if (!msg.reply && code > 0) {
          if (code === 100) return; // idle heartbeat / flow control: not requested, harmless
          const wasOpen = state === "open";
          end();
          if (!wasOpen) return;
          const description = msg.headers?.description ?? "";
          const gone = code === 503 || (code === 409 && /consumer deleted/i.test(description));
          if (gone) reject(new ConsumerUnavailableError(this.stream, this.consumer, code, description));
          else resolve(received);
          return;
        }
        const pulled = msg.reply ? this.#wrap(msg, msg.reply) : undefined;
        if (!pulled) return;
        delivered += 1;
        if (state === "open") received.push(pulled);
        else this.#tell(pulled, "-NAK");
        if (delivered >= batch) {
          const wasOpen = state === "open";
          end();
          if (wasOpen) resolve(received);
        }
      };

      const inbox = createInbox();
      let sub: ReturnType<NatsConnection["subscribe"]>;
      try {
        sub = this.#nc.subscribe(inbox, {
          callback: (error, msg) => {
            if (error) {
              const wasOpen = state === "open";
              end();
              if (wasOpen) reject(error);
              return;
            }
            onMessage(msg);
          },
        });
      } catch (error) {
        reject(error);
        return;
      }
      // The connection closed under us: nothing more will come.
      void sub.closed.then(() => {
        const wasOpen = state === "open";
        end();
        if (wasOpen)
          reject(new Error(`NATS connection closed while pulling from ${this.stream}/${this.consumer}`));
      });

      const body = waitMs === undefined ? { batch, no_wait: true } : { batch, expires: nanos(waitMs) };
      try {
        this.#nc.publish(this.#nextSubject, JSON.stringify(body), { reply: inbox });
      } catch (error) {
        end();
        reject(error);
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      patience = setTimeout(() => abandon(true), (waitMs ?? 0) + this.#graceMs);
      stopWatching = onReconnect(this.#nc, () => abandon(true));
    });
  }

  #wrap(msg: Msg, ackSubject: string): PulledMessage | undefined {
    const info = parseAckSubject(ackSubject);
    if (!info) return undefined;
    const confirm = async (body: string, what: string) => {
      try {
        await replyMuxOf(this.#nc).request(ackSubject, body, { timeoutMs: this.#ackTimeoutMs });
      } catch (error) {
        throw new Error(
          `cannot ${what} message ${info.streamSequence} of ${this.stream}/${this.consumer}: ${errorMessage(error)}`,
          { cause: error },
        );
      }
    };
    return {
      subject: msg.subject,
      data: msg.data,
      headers: msg.headers,
      streamSequence: info.streamSequence,
      deliveryCount: info.deliveryCount,
      pending: info.pending,
      // Not confirmed: a lost ack (only on a dropped connection, when a confirmation could not arrive
      // either) means a redelivery, which the sidecar recognises as ended and acks without running it;
      // confirming every ack cost a round trip and a reply per task.
      ack: async () => {
        try {
          this.#nc.publish(ackSubject, "+ACK");
        } catch (error) {
          throw new Error(
            `cannot ack message ${info.streamSequence} of ${this.stream}/${this.consumer}: ${errorMessage(error)}`,
            { cause: error },
          );
        }
      },
      ackConfirmed: () => confirm("+ACK", "ack"),
      nak: (delayMs = 0) =>
        confirm(delayMs > 0 ? `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}` : "-NAK", "nak"),
      working: () => confirm("+WPI", "extend"),
      term: () => confirm("+TERM", "terminate"),
      ackSubject,
    };
  }

  /** Fire and forget (a late delivery handed back): the ack wait covers a loss. */
  #tell(message: PulledMessage, body: string): void {
    try {
      this.#nc.publish(message.ackSubject, body);
    } catch {
      // closed connection: the server redelivers after the ack wait
    }
  }
}

/**
 * Extends every message's lease every `everyMs` until the returned function
 * is called (e.g. while a batch is being recorded).
 */
export function keepWorking(messages: readonly PulledMessage[], everyMs: number): () => void {
  const timer = setInterval(() => {
    for (const message of messages) message.working().catch(() => {});
  }, everyMs);
  return () => clearInterval(timer);
}
