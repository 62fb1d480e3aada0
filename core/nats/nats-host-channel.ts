import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type HostDrainRequest,
  HostDrainRequestSchema,
  type HostHeartbeat,
  HostHeartbeatSchema,
} from "../gen/taskframe/v1/messages_pb.js";
import type { HostChannel } from "../host-channel.js";
import { decodedMessages } from "./decoded-messages.js";
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
    return decodedMessages(
      this.#nc,
      this.#names.heartbeatSubject,
      (data) => fromBinary(HostHeartbeatSchema, data),
      [signal, this.#closing.signal],
      { queue: RECORDERS_QUEUE_GROUP },
    );
  }

  async publishDrain(request: HostDrainRequest): Promise<void> {
    this.#nc.publish(this.#names.drainSubject, toBinary(HostDrainRequestSchema, request));
    await this.#nc.flush();
  }

  drains(signal: AbortSignal): AsyncIterable<HostDrainRequest> {
    return decodedMessages(
      this.#nc,
      this.#names.drainSubject,
      (data) => fromBinary(HostDrainRequestSchema, data),
      [signal, this.#closing.signal],
    );
  }

  /** Ends every subscription; the connection is the caller's. */
  async close(): Promise<void> {
    this.#closing.abort();
  }
}
