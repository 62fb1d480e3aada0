import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Lease } from "../core/work-queue.js";

interface Tracked {
  /** When the lease was last extended (or taken), on the monotonic clock. */
  renewedAt: number;
  onLost?: (silentMs: number) => void;
}

/**
 * Keeps the leases of running tasks alive: one timer extends all of them
 * every `intervalMs` (at most a third of the queue's ack wait, so that one
 * lost heartbeat does not cost the lease).
 *
 * A lease not extended for a whole ack wait (this process was paused, or
 * too busy) is presumed lost: the queue may have given the work to another
 * sidecar. It is not extended again (NATS would accept the late in-progress
 * ack and steal the new holder's lease, nats-server#4786) and `onLost` says
 * so, once.
 */
export class LeaseKeeper {
  #leases = new Map<Lease, Tracked>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly ackWaitMs = intervalMs * 3,
  ) {}

  /**
   * Keeps `lease` alive from now on. Call it as soon as the lease is received: the queue's ack
   * wait runs from the delivery, not from when the work starts. Tracking a tracked lease keeps its
   * clock and only sets `onLost`.
   */
  track(lease: Lease, onLost?: (silentMs: number) => void): void {
    const tracked = this.#leases.get(lease);
    if (!tracked) this.#leases.set(lease, { renewedAt: performance.now(), ...(onLost ? { onLost } : {}) });
    else if (onLost) tracked.onLost = onLost;
  }

  untrack(lease: Lease): void {
    this.#leases.delete(lease);
  }

  /** Whether the lease went a whole ack wait without being extended (checked now, not at the next tick). */
  lost(lease: Lease): boolean {
    const tracked = this.#leases.get(lease);
    return tracked !== undefined && performance.now() - tracked.renewedAt > this.ackWaitMs;
  }

  start(): void {
    this.#timer = setInterval(() => this.#extendAll(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #extendAll(): void {
    const now = performance.now();
    for (const [lease, tracked] of this.#leases) {
      const silentMs = now - tracked.renewedAt;
      if (silentMs > this.ackWaitMs) {
        if (tracked.onLost) {
          const onLost = tracked.onLost;
          delete tracked.onLost;
          onLost(silentMs);
        }
        continue;
      }
      tracked.renewedAt = now;
      lease.extend().catch((error: unknown) => {
        this.logger.warn({ taskId: lease.item.taskId }, `extending a lease failed: ${errorMessage(error)}`);
      });
    }
  }
}
