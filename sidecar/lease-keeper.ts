import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Lease } from "../core/work-queue.js";

/**
 * Keeps the leases of running tasks alive: one timer extends all of them
 * every `intervalMs` (at most a third of the queue's ack wait, so that one
 * lost heartbeat does not cost the lease).
 */
export class LeaseKeeper {
  #leases = new Set<Lease>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  track(lease: Lease): void {
    this.#leases.add(lease);
  }

  untrack(lease: Lease): void {
    this.#leases.delete(lease);
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
    for (const lease of this.#leases) {
      lease.extend().catch((error: unknown) => {
        this.logger.warn({ taskId: lease.item.taskId }, `extending a lease failed: ${errorMessage(error)}`);
      });
    }
  }
}
