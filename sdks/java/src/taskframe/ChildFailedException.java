package taskframe;

import java.util.List;

/**
 * Thrown by {@link TaskContext#awaitChildren} when a child did not succeed (its state is not
 * {@code TASK_STATE_SUCCEEDED}, or a task it spawned did not succeed). Non-retryable: retrying the
 * parent would find the same children. Its message names each failed child, e.g.
 * {@code a child did not succeed: parent/a TASK_STATE_FAILED (child breaks)}.
 */
public class ChildFailedException extends NonRetryableException {
  private static final long serialVersionUID = 1L;
  private final transient List<ChildStatus> failed;

  public ChildFailedException(List<ChildStatus> failed) {
    super(message(failed));
    this.failed = List.copyOf(failed);
  }

  /** The children that did not succeed, in spawn order. */
  public List<ChildStatus> failed() {
    return failed;
  }

  private static String message(List<ChildStatus> failed) {
    StringBuilder out = new StringBuilder(failed.size() == 1 ? "a child" : failed.size() + " children");
    out.append(" did not succeed: ");
    for (int i = 0; i < failed.size(); i++) {
      ChildStatus c = failed.get(i);
      if (i > 0) out.append("; ");
      out.append(c.name()).append(' ').append(c.state());
      if (c.subtreeFailed() && ChildStatus.SUCCEEDED.equals(c.state())) out.append(", but a task it spawned did not");
      if (!c.detail().isEmpty()) out.append(" (").append(c.detail()).append(')');
    }
    return out.toString();
  }
}
