package taskframe;

/**
 * A retryable handler failure reported with an error type of your choosing (other exceptions are
 * reported with their class's simple name).
 *
 * <pre>{@code throw new TaskError("QuotaExceeded", "the API said no");}</pre>
 */
public class TaskError extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final String type;

  public TaskError(String type, String message) {
    this(type, message, null);
  }

  public TaskError(String type, String message, Throwable cause) {
    super(message, cause);
    this.type = type == null || type.isEmpty() ? "Error" : type;
  }

  /** The error type reported to Taskframe. */
  public String type() {
    return type;
  }
}
