package taskframe;

import java.time.Duration;

/** Throw from a handler to fail this attempt and have the next one wait at least {@code delay}. */
public class RetryAfterException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final Duration delay;

  public RetryAfterException(Duration delay) {
    this(delay, "retry after " + delay.toMillis() + " ms");
  }

  public RetryAfterException(Duration delay, String message) {
    super(message);
    if (delay == null || delay.isNegative()) throw new IllegalArgumentException("expected a delay >= 0, got " + delay);
    this.delay = delay;
  }

  public Duration delay() {
    return delay;
  }
}
