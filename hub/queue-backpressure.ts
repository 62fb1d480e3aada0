import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logger.js";

export interface QueueBackpressureOptions {
  /** The first retry of the outbox after a failed publish. @default 1_000 */
  minRetryMs?: number;
  /** Retries back off, doubling, up to this. @default 10_000 */
  maxRetryMs?: number;
}

/**
 * Whether the work queue stores what this hub publishes. Once a publish
 * fails (JetStream's store is full, or JetStream does not answer), new runs
 * are refused (`refusal`: the API answers Unavailable, HTTP 503) rather than
 * piled into the outbox, and the outbox is retried (backing off from 1 s
 * to 10 s) until a publish succeeds. Work already recorded (retries,
 * spawned children, fired schedules) is never refused: it waits in the
 * outbox.
 */
export class QueueBackpressure {
  #trouble: { since: Date; reason: string } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retryMs: number;
  #stopped = false;
  readonly #minRetryMs: number;
  readonly #maxRetryMs: number;

  constructor(
    /** Publishes the outbox again; returns how many rows it tried. */
    private readonly retryOutbox: () => Promise<number>,
    private readonly logger: Logger,
    options: QueueBackpressureOptions = {},
  ) {
    this.#minRetryMs = options.minRetryMs ?? 1_000;
    this.#maxRetryMs = options.maxRetryMs ?? 10_000;
    this.#retryMs = this.#minRetryMs;
  }

  /** Why new runs are refused now, or undefined when the queue stores work. */
  get refusal(): string | undefined {
    const trouble = this.#trouble;
    if (!trouble) return undefined;
    return `the work queue has not stored work since ${trouble.since.toISOString()} (${trouble.reason}); nothing was recorded, retry later`;
  }

  publishFailed(error: unknown): void {
    const reason = errorMessage(error);
    if (this.#trouble) {
      this.#trouble.reason = reason;
      return;
    }
    this.#trouble = { since: new Date(), reason };
    this.logger.error(
      { reason },
      "the work queue does not store work: new runs are refused until the outbox publishes again",
    );
    this.#scheduleRetry();
  }

  published(): void {
    const trouble = this.#trouble;
    if (!trouble) return;
    this.#trouble = undefined;
    clearTimeout(this.#timer);
    this.#retryMs = this.#minRetryMs;
    this.logger.warn(
      { refusedForMs: Date.now() - trouble.since.getTime() },
      "the work queue stores work again: accepting new runs",
    );
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #scheduleRetry(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#retry(), this.#retryMs);
    this.#timer.unref();
  }

  async #retry(): Promise<void> {
    try {
      // an empty outbox proves nothing either way: the next publication decides
      if ((await this.retryOutbox()) === 0) this.published();
    } catch {
      // publishFailed has already recorded why
    }
    if (!this.#trouble) return;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#maxRetryMs);
    this.#scheduleRetry();
  }
}
