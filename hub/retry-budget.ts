/**
 * The retry budget (`task hub --retry-budget N`): at most `perSecond`
 * retries are released per second, in bursts of at most one second's worth.
 * A token bucket on the monotonic clock; the leading hub holds it, and only
 * it releases retries while a budget is set, so the budget is global.
 */
export class RetryBudget {
  #tokens: number;
  #refilledAt = performance.now();

  constructor(readonly perSecond: number) {
    if (!(perSecond > 0)) throw new RangeError(`a retry budget must be above 0 per second, got ${perSecond}`);
    this.#tokens = perSecond;
  }

  /** Retries that may be released now. */
  available(): number {
    this.#refill();
    return Math.floor(this.#tokens);
  }

  spend(released: number): void {
    this.#tokens -= released;
  }

  /** How long until the next retry may be released. */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) / this.perSecond) * 1_000;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(
      this.perSecond,
      this.#tokens + ((now - this.#refilledAt) / 1_000) * this.perSecond,
    );
    this.#refilledAt = now;
  }
}
