import { AsyncQueue } from "./async-queue.js";
import type { HostDrainRequest, HostHeartbeat } from "./gen/taskframe/v1/messages_pb.js";

/*
 * The hosts seam: sidecars tell the hubs they are there and how busy they
 * are (heartbeats, each recorded by one hub), and a hub asks one host to
 * drain and stop (broadcast; the host named acts on it). Neither is durable:
 * a missed heartbeat is followed by the next one, and a drain is asked again
 * until the host has stopped.
 */
export interface HostChannel {
  publishHeartbeat(beat: HostHeartbeat): Promise<void>;
  /** Heartbeats for this hub to record; with several hubs, each heartbeat reaches one of them. */
  heartbeats(signal: AbortSignal): AsyncIterable<HostHeartbeat>;
  publishDrain(request: HostDrainRequest): Promise<void>;
  drains(signal: AbortSignal): AsyncIterable<HostDrainRequest>;
}

/** The hosts seam in one process: each heartbeat goes to one listener, each drain to all. */
export class MemoryHostChannel implements HostChannel {
  readonly #heartbeats = new AsyncQueue<HostHeartbeat>();
  readonly #drainListeners = new Set<AsyncQueue<HostDrainRequest>>();

  async publishHeartbeat(beat: HostHeartbeat): Promise<void> {
    this.#heartbeats.push(beat);
  }

  heartbeats(signal: AbortSignal): AsyncIterable<HostHeartbeat> {
    return drainQueue(this.#heartbeats, signal);
  }

  async publishDrain(request: HostDrainRequest): Promise<void> {
    for (const listener of this.#drainListeners) listener.push(request);
  }

  async *drains(signal: AbortSignal): AsyncIterable<HostDrainRequest> {
    const queue = new AsyncQueue<HostDrainRequest>();
    this.#drainListeners.add(queue);
    try {
      yield* drainQueue(queue, signal);
    } finally {
      this.#drainListeners.delete(queue);
    }
  }
}

async function* drainQueue<T>(queue: AsyncQueue<T>, signal: AbortSignal): AsyncIterable<T> {
  while (!signal.aborted) {
    const items = await queue.take(Number.POSITIVE_INFINITY, { signal });
    if (items === undefined) return;
    yield* items;
  }
}

/** The environment variable a provider sets for the sidecar it starts: the host's provider id. */
export const PROVIDER_HOST_ID_ENV = "TASKFRAME_PROVIDER_HOST_ID";

/** Whether a drain request names this host. */
export const drainNames = (request: HostDrainRequest, host: string, providerHostId: string): boolean =>
  (request.host !== "" && request.host === host) ||
  (request.providerHostId !== "" && request.providerHostId === providerHostId);
