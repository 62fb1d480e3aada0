import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage } from "../errors.js";
import type { ControlBus } from "../event-bus.js";
import { type CancelNotice, CancelNoticeSchema } from "../gen/taskframe/v1/messages_pb.js";
import { decodedMessages } from "./decoded-messages.js";
import { NatsNames } from "./names.js";

const FLUSH_TIMEOUT_MS = 5_000;

/**
 * Cancel notices broadcast on core NATS (`<ns>.control.cancel`) to every
 * sidecar. Not durable, by design: a sidecar that misses a notice is stopped
 * later by the store's fence, when its result does not count.
 */
export class NatsControlBus implements ControlBus {
  readonly #nc: NatsConnection;
  readonly #subject: string;
  readonly #closing = new AbortController();

  constructor(nc: NatsConnection, options: { namespace?: string } = {}) {
    this.#nc = nc;
    this.#subject = new NatsNames(options.namespace).cancelSubject;
  }

  /** Resolves once the server has the notice; rejects if it cannot be sent or confirmed in time. */
  async publishCancel(notice: CancelNotice): Promise<void> {
    this.#nc.publish(this.#subject, toBinary(CancelNoticeSchema, notice));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`NATS did not confirm a cancel notice within ${FLUSH_TIMEOUT_MS} ms`)),
        FLUSH_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.#nc.flush(), timeout]);
    } catch (error) {
      throw new Error(`publishing a cancel notice: ${errorMessage(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every notice published from now on, until `signal` aborts or the bus closes. */
  cancels(signal: AbortSignal): AsyncIterable<CancelNotice> {
    return decodedMessages(this.#nc, this.#subject, (data) => fromBinary(CancelNoticeSchema, data), [
      signal,
      this.#closing.signal,
    ]);
  }

  /** Ends every cancels(); the connection is the caller's. */
  async close(): Promise<void> {
    this.#closing.abort();
  }
}
