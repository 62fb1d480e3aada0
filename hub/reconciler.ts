import { errorMessage } from "../core/errors.js";
import type { EventSource } from "../core/event-bus.js";
import type { Logger } from "../core/logger.js";
import type { WorkQueue } from "../core/work-queue.js";
import type { Leadership } from "./leadership.js";
import type { HubStore } from "./store/hub-store.js";
import type { ReadyWork } from "./store/queries/ready-work.js";

export interface ReconcilerOptions {
  /** How often the leader looks. @default 10_000 */
  everyMs?: number;
  /** A dispatched task unchanged this long is checked against the queue. @default 60_000 */
  staleAfterMs?: number;
  /** Tasks checked per pass, oldest first. @default 500 */
  batch?: number;
}

/**
 * Postgres is the record, the queue only delivers: JetStream can lose
 * messages (lazy fsync, a lost disk). The leader periodically takes the
 * oldest dispatched tasks that have not moved in a while and, for those
 * whose work item the queue no longer holds, publishes them again. It acts
 * only when the recorder has caught up with every event, so that an item
 * acked by a sidecar whose outcome is still on its way is not taken for lost.
 */
export class Reconciler {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  readonly #everyMs: number;
  readonly #staleAfterMs: number;
  readonly #batch: number;

  constructor(
    private readonly deps: {
      store: HubStore;
      queue: WorkQueue;
      events: EventSource;
      leadership: Leadership;
      publish: (ready: ReadyWork[]) => Promise<void>;
      logger: Logger;
    },
    options: ReconcilerOptions = {},
  ) {
    this.#everyMs = options.everyMs ?? 10_000;
    this.#staleAfterMs = options.staleAfterMs ?? 60_000;
    this.#batch = options.batch ?? 500;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.reconcile()
        .then(() => undefined)
        .catch((error: unknown) => this.deps.logger.warn(`reconciling failed: ${errorMessage(error)}`))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#everyMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass; returns how many tasks were published again. */
  async reconcile(): Promise<number> {
    const { store, queue, events, leadership, publish, logger } = this.deps;
    if (!leadership.isLeader) return 0;
    if ((await events.backlog()) > 0) return 0;
    const stale = await store.staleDispatchedTasks(this.#staleAfterMs, this.#batch);
    if (stale.length === 0) return 0;
    const queued = await queue.queued(
      stale.map((t) =>
        t.handler ? { pool: t.pool, handler: t.handler, taskId: t.id } : { pool: t.pool, taskId: t.id },
      ),
    );
    const lost = stale.filter((t) => !queued.has(t.id));
    if (lost.length === 0) return 0;
    if ((await events.backlog()) > 0) return 0; // an outcome may have arrived while we looked
    const ready = await store.republishLost(lost);
    await publish(ready);
    logger.warn({ count: ready.length }, "published again tasks whose work items the queue had lost");
    return ready.length;
  }
}
