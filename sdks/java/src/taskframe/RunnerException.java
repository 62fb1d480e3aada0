package taskframe;

/**
 * A call to the sidecar failed: {@link #code()} is the Connect error code ({@code "not_found"},
 * {@code "unimplemented"}, ...) or {@code "unavailable"} when the sidecar could not be reached.
 */
public class RunnerException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final String code;

  public RunnerException(String code, String message) {
    this(code, message, null);
  }

  public RunnerException(String code, String message, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
  }

  public String code() {
    return code;
  }
}
