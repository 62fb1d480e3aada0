/** Throw from a handler to fail the task for good: no further attempts. */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

/** Throw from a handler to fail this attempt and have the next one wait at least `delayMs`. */
export class RetryAfterError extends Error {
  override name = "RetryAfterError";
  constructor(
    readonly delayMs: number,
    message = `retry after ${delayMs} ms`,
  ) {
    super(message);
  }
}

/** Thrown by `ctx.awaitChildren` when a child (or a task it spawned) did not succeed: retrying the parent would not change that. */
export class ChildFailedError extends NonRetryableError {
  override name = "ChildFailedError";
  constructor(readonly failed: readonly { name: string; state: string; detail: string }[]) {
    super(
      `${failed.length === 1 ? "a child" : `${failed.length} children`} did not succeed: ` +
        failed.map((f) => `${f.name} ${f.state}${f.detail ? ` (${f.detail})` : ""}`).join("; "),
    );
  }
}

/**
 * How a thrown value is reported (every SDK maps the same way, the
 * conformance suite checks it): NonRetryableError -> non_retryable;
 * RetryAfterError -> retry_after_ms; anything else is retryable, with
 * type = the error's name and message = its message.
 */
export function describeError(error: unknown): {
  type: string;
  message: string;
  nonRetryable: boolean;
  retryAfterMs: number;
} {
  if (error instanceof Error) {
    return {
      type: error.name || error.constructor.name || "Error",
      message: error.message,
      nonRetryable: error instanceof NonRetryableError,
      retryAfterMs: error instanceof RetryAfterError ? Math.max(0, Math.round(error.delayMs)) : 0,
    };
  }
  return { type: typeof error, message: String(error), nonRetryable: false, retryAfterMs: 0 };
}
