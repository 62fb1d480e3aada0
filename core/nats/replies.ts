import {
  createInbox,
  type Msg,
  type NatsConnection,
  headers as natsHeaders,
  type Subscription,
} from "@nats-io/transport-node";

interface Pending {
  resolve: (msg: Msg) => void;
  reject: (error: Error) => void;
  subject: string;
  deadline: number;
}

/** How often expired requests are failed: the timeout's resolution. */
const SWEEP_MS = 100;

/**
 * Requests on the hot path (JetStream publishes awaiting their PubAck,
 * confirmed acks), all answered on one inbox subscription. nats.js's own
 * `request()` builds two Error objects (with stack traces) per call, which
 * was most of the hub's and sidecar's CPU at a few thousand tasks/s; here a
 * request costs a map entry, and one timer fails every expired request.
 */
export class ReplyMux {
  readonly #prefix = `${createInbox()}.`;
  readonly #pending = new Map<string, Pending>();
  readonly #subscription: Subscription;
  readonly #sweeper: NodeJS.Timeout;
  #next = 0;

  constructor(private readonly nc: NatsConnection) {
    this.#subscription = nc.subscribe(`${this.#prefix}*`, {
      callback: (error, msg) => {
        if (error) return;
        const id = msg.subject.slice(this.#prefix.length);
        const pending = this.#pending.get(id);
        if (!pending) return; // answered after its deadline
        this.#pending.delete(id);
        // 503: nobody listens on the subject (no stream, or no consumer for an ack)
        if (msg.headers?.code === 503) pending.reject(new Error(`no responders on ${pending.subject}`));
        else pending.resolve(msg);
      },
    });
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  /** Publishes `data` with a reply subject of this mux; resolves with the answer. */
  request(
    subject: string,
    data: Uint8Array | string,
    options: { timeoutMs: number; msgId?: string },
  ): Promise<Msg> {
    const id = (this.#next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, subject, deadline: Date.now() + options.timeoutMs });
      try {
        const headers = options.msgId === undefined ? undefined : natsHeaders();
        if (headers && options.msgId !== undefined) headers.set("Nats-Msg-Id", options.msgId);
        this.nc.publish(subject, data, { reply: `${this.#prefix}${id}`, ...(headers ? { headers } : {}) });
      } catch (error) {
        this.#pending.delete(id);
        reject(error as Error);
      }
    });
  }

  /** Fails every request still waiting. */
  close(): void {
    clearInterval(this.#sweeper);
    this.#subscription.unsubscribe();
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(new Error(`no answer from ${pending.subject}: the connection is closing`));
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(id);
      pending.reject(new Error(`no answer from ${pending.subject} in time`));
    }
  }
}

/** A JetStream PubAck, or the error the server answered with. */
export function parsePubAck(msg: Msg): { stream: string; seq: number; duplicate: boolean } {
  let answer: {
    stream?: string;
    seq?: number;
    duplicate?: boolean;
    error?: { code?: number; description?: string };
  };
  try {
    answer = JSON.parse(new TextDecoder().decode(msg.data));
  } catch {
    throw new Error(
      `JetStream answered a publish with something that is not a PubAck: ${msg.data.length} bytes`,
    );
  }
  if (answer.error) {
    throw new Error(
      `JetStream refused the publish: ${answer.error.description ?? "error"} (${answer.error.code ?? "?"})`,
    );
  }
  return { stream: answer.stream ?? "", seq: answer.seq ?? 0, duplicate: answer.duplicate === true };
}

const muxes = new WeakMap<NatsConnection, ReplyMux>();

/** The connection's one ReplyMux, made on first use and closed with the connection. */
export function replyMuxOf(nc: NatsConnection): ReplyMux {
  let mux = muxes.get(nc);
  if (!mux) {
    const created = new ReplyMux(nc);
    muxes.set(nc, created);
    void nc.closed().then(() => created.close());
    mux = created;
  }
  return mux;
}
