package taskframe.internal;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.UndeclaredThrowableException;
import taskframe.NonRetryableException;
import taskframe.RetryAfterException;
import taskframe.TaskError;

/**
 * How a handler's exception is reported (every SDK maps the same way): NonRetryableException ->
 * nonRetryable; RetryAfterException -> retryAfterMs; TaskError -> its type; anything else is
 * retryable with type = the class's simple name and message = getMessage().
 */
public record Failure(String type, String message, boolean nonRetryable, long retryAfterMs) {
  public static Failure of(Throwable thrown) {
    Throwable error = unwrap(thrown);
    String type = error instanceof TaskError ? ((TaskError) error).type() : typeName(error.getClass());
    String message = error.getMessage() == null ? "" : error.getMessage();
    long retryAfterMs = error instanceof RetryAfterException ? ((RetryAfterException) error).delay().toMillis() : 0;
    return new Failure(type, message, error instanceof NonRetryableException, Math.max(0, retryAfterMs));
  }

  /** The exception a reflective call or a proxy wrapped. */
  public static Throwable unwrap(Throwable thrown) {
    Throwable error = thrown;
    for (int depth = 0; depth < 10; depth++) {
      Throwable cause = error.getCause();
      if (cause == null) break;
      if (error instanceof InvocationTargetException || error instanceof UndeclaredThrowableException) error = cause;
      else break;
    }
    return error;
  }

  private static String typeName(Class<?> type) {
    for (Class<?> c = type; c != null; c = c.getSuperclass()) {
      String simple = c.getSimpleName();
      if (!simple.isEmpty()) return simple; // an anonymous class: its superclass's name
    }
    return "Error";
  }

  /** The HandlerError message, as protobuf JSON. */
  public void writeJson(StringBuilder out) {
    out.append("{\"type\":");
    taskframe.Json.writeString(type, out);
    if (!message.isEmpty()) {
      out.append(",\"message\":");
      taskframe.Json.writeString(message, out);
    }
    if (nonRetryable) out.append(",\"nonRetryable\":true");
    if (retryAfterMs > 0) out.append(",\"retryAfterMs\":\"").append(retryAfterMs).append('"');
    out.append('}');
  }
}
