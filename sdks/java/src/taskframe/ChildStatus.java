package taskframe;

import java.nio.charset.StandardCharsets;

/**
 * Where a child of the task stands ({@link TaskContext#children}, {@link TaskContext#awaitChildren}).
 *
 * @param key the key it was spawned with
 * @param taskId its task id
 * @param name its full name in the run, {@code <parent name>/<key>}
 * @param state its state, by the protocol's enum name, e.g. {@code TASK_STATE_SUCCEEDED}
 * @param attempt its current or last attempt (0 before the first)
 * @param settled the child and every task it spawned have ended: nothing about it changes any more
 * @param subtreeFailed a task the child spawned (at any depth) did not succeed
 * @param output its result, once it succeeded (empty otherwise; not a copy: do not modify it)
 * @param outputContentType the result's content type (may be empty)
 * @param detail why it ended as it did, e.g. the error of a failed child (may be empty)
 */
public record ChildStatus(
    String key,
    String taskId,
    String name,
    String state,
    int attempt,
    boolean settled,
    boolean subtreeFailed,
    byte[] output,
    String outputContentType,
    String detail) {
  public static final String SUCCEEDED = "TASK_STATE_SUCCEEDED";

  /** It succeeded, and so did everything it spawned. */
  public boolean succeeded() {
    return SUCCEEDED.equals(state) && !subtreeFailed;
  }

  /** The output as UTF-8 text. */
  public String text() {
    return new String(output, StandardCharsets.UTF_8);
  }

  /** The output parsed as JSON (see {@link Json#parse}). */
  public Object json() {
    return Json.parse(output);
  }

  @Override
  public String toString() {
    return "ChildStatus[" + name + " " + state + (subtreeFailed ? " (subtree failed)" : "") + (settled ? ", settled" : "")
        + ", attempt " + attempt + ", " + output.length + " bytes of output" + (detail.isEmpty() ? "" : ", " + detail) + "]";
  }
}
