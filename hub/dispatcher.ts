import { failpoint } from "../core/failpoints.js";
import type { Logger } from "../core/logger.js";
import type { WorkQueue } from "../core/work-queue.js";
import type { QueueBackpressure } from "./queue-backpressure.js";
import type { HubStore } from "./store/hub-store.js";
import type { ReadyWork } from "./store/queries/ready-work.js";

/**
 * Publishes ready work and then clears its outbox rows. If the process dies
 * between the commit and the publish, the rows stay and `republishStale`
 * publishes them again; the queue's dedupe key makes a double publish harmless.
 * Whether the queue took the work goes to `backpressure`.
 */
export class Dispatcher {
  constructor(
    private readonly store: HubStore,
    private readonly queue: WorkQueue,
    private readonly logger: Logger,
    private readonly backpressure?: QueueBackpressure,
  ) {}

  async publish(ready: readonly ReadyWork[]): Promise<void> {
    if (ready.length === 0) return;
    try {
      await this.queue.publish(ready.map((r) => r.item));
    } catch (error) {
      this.backpressure?.publishFailed(error);
      throw error;
    }
    this.backpressure?.published();
    failpoint("hub.publish.after_puback");
    const ids = ready.flatMap((r) => (r.outboxId === undefined ? [] : [r.outboxId]));
    await this.store.deletePublished(ids).catch((error: unknown) => {
      // harmless: the sweep will publish them again and the queue drops the duplicates
      this.logger.warn({ err: error, count: ids.length }, "could not clear published outbox rows");
    });
  }

  /** Publishes outbox rows that have waited longer than `olderThanMs`. Returns how many. */
  async republishStale(olderThanMs: number): Promise<number> {
    const stale = await this.store.unpublishedWork(olderThanMs);
    await this.publish(stale);
    return stale.length;
  }
}
