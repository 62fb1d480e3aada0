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
 * often, deletes the runs that finished before the retention window, and
 * the refused requests and schedule history (fired slots, condition
 * evaluations) recorded before it, in bounded batches, until none is left
 * or the hub stops.
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
    const { store, leadership } = this.deps;
    if (!leadership.isLeader) return 0;
    const { keepMs, batch = 500 } = this.options;
    const runs = await this.#inBatches("runs", batch, () => store.pruneFinishedRuns(keepMs, batch));
    // a refusal or a fired slot is one small row: ten times as many per statement
    const small = batch * 10;
    await this.#inBatches("refused requests", small, () => store.pruneAuthDenials(keepMs, small));
    await this.#inBatches("schedule history", small, () => store.pruneScheduleHistory(keepMs, small));
    return runs;
  }

  /** Calls `prune` until it deletes fewer than `batch`; returns how many went. */
  async #inBatches(what: string, batch: number, prune: () => Promise<number>): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const deleted = await prune();
        total += deleted;
        if (deleted < batch || this.#stopped) break;
      }
    } catch (error) {
      this.deps.logger.warn(`pruning old ${what} failed: ${errorMessage(error)}`);
    }
    if (total > 0) this.deps.logger.info({ [what]: total }, `deleted ${what} past the retention window`);
    return total;
  }
}
