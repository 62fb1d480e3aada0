import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { AsyncQueue } from "../async-queue.js";
import {
  type HostDrainRequest,
  HostDrainRequestSchema,
  type HostHeartbeat,
  HostHeartbeatSchema,
} from "../gen/taskframe/v1/messages_pb.js";
import type { HostChannel } from "../host-channel.js";
import { linkedSignal } from "./linked-signal.js";
import { NatsNames } from "./names.js";

/** Hubs that record heartbeats share this queue group: each heartbeat reaches one of them. */
const RECORDERS_QUEUE_GROUP = "hub-host-recorders";

/**
 * The hosts seam on core NATS: heartbeats on `<ns>.hosts.heartbeat` (a queue
 * group of hubs), drain requests on `<ns>.hosts.drain` (every sidecar).
 */
export class NatsHostChannel implements HostChannel {
  readonly #nc: NatsConnection;
  readonly #names: NatsNames;
  readonly #closing = new AbortController();

  constructor(nc: NatsConnection, options: { namespace?: string } = {}) {
    this.#nc = nc;
    this.#names = new NatsNames(options.namespace);
  }

  async publishHeartbeat(beat: HostHeartbeat): Promise<void> {
    this.#nc.publish(this.#names.heartbeatSubject, toBinary(HostHeartbeatSchema, beat));
  }

  heartbeats(signal: AbortSignal): AsyncIterable<HostHeartbeat> {
    return this.#subscribe(
      this.#names.heartbeatSubject,
      signal,
      (data) => fromBinary(HostHeartbeatSchema, data),
      {
        queue: RECORDERS_QUEUE_GROUP,
      },
    );
  }

  async publishDrain(request: HostDrainRequest): Promise<void> {
    this.#nc.publish(this.#names.drainSubject, toBinary(HostDrainRequestSchema, request));
    await this.#nc.flush();
  }

  drains(signal: AbortSignal): AsyncIterable<HostDrainRequest> {
    return this.#subscribe(this.#names.drainSubject, signal, (data) =>
      fromBinary(HostDrainRequestSchema, data),
    );
  }

  /** Ends every subscription; the connection is the caller's. */
  async close(): Promise<void> {
    this.#closing.abort();
  }

  async *#subscribe<T>(
    subject: string,
    signal: AbortSignal,
    decode: (data: Uint8Array) => T,
    options: { queue?: string } = {},
  ): AsyncIterable<T> {
    const linked = linkedSignal(signal, this.#closing.signal);
    const queue = new AsyncQueue<T>();
    let sub: Subscription | undefined;
    try {
      sub = this.#nc.subscribe(subject, {
        ...options,
        callback: (error, msg) => {
          if (error) return;
          try {
            queue.push(decode(msg.data));
          } catch {
            // not ours: ignore it
          }
        },
      });
      while (!linked.signal.aborted) {
        const items = await queue.take(Number.POSITIVE_INFINITY, { signal: linked.signal });
        if (items === undefined) return;
        yield* items;
      }
    } finally {
      sub?.unsubscribe();
      queue.close();
      linked.dispose();
    }
  }
}
