import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Leadership } from "./leadership.js";
import type { HubStore } from "./store/hub-store.js";

export interface RetentionOptions {
  /** Runs finished longer ago than this are deleted, with their tasks, events and logs. */
  keepMs: number;
  /** How often the leading hub prunes. @default 10 minutes */
  everyMs?: number;
  /** Runs per transaction. @default 500 */
  batch?: number;
}

/**
 * The leading hub's pruning job (`task hub --retention 30d`): every so
 * often, deletes the runs that finished before the retention window, in
 * bounded batches, until none is left or the hub stops.
 */
export class Retention {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(
    private readonly deps: { store: HubStore; leadership: Leadership; logger: Logger },
    private readonly options: RetentionOptions,
  ) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.prune().finally(() => {
        this.#running = undefined;
      });
    }, this.options.everyMs ?? 600_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass (only on the leading hub); returns how many runs were deleted. */
  async prune(): Promise<number> {
    const { store, leadership, logger } = this.deps;
    if (!leadership.isLeader) return 0;
    const batch = this.options.batch ?? 500;
    let total = 0;
    try {
      for (;;) {
        const deleted = await store.pruneFinishedRuns(this.options.keepMs, batch);
        total += deleted;
        if (deleted < batch || this.#stopped) break;
      }
    } catch (error) {
      logger.warn(`pruning old runs failed: ${errorMessage(error)}`);
    }
    if (total > 0) logger.info({ runs: total }, "deleted runs past the retention window");
    return total;
  }
}
