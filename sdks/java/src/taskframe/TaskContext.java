package taskframe;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/** What a handler gets besides its input: the task's identity, its log, heartbeats, cancellation. */
public interface TaskContext {
  String taskId();

  String runId();

  /** The task's name in its run (what {@code task logs NAME} uses). */
  String taskName();

  /** The handler name the task asked for. */
  String handler();

  /** 1-based. */
  int attempt();

  /** The input bytes (not a copy: do not modify them). */
  byte[] input();

  /** The input's content type, e.g. {@code application/json} (may be empty). */
  String contentType();

  /** The input as UTF-8 text. */
  String text();

  /** The input parsed as JSON (see {@link Json#parse}). */
  Object json();

  /** W3C trace context of the task (may be empty). */
  String traceparent();

  /** When the attempt must end (the worker cancels the handler then), if it has a timeout. */
  Optional<Instant> deadline();

  /** A line in the task's log, on stdout ({@code task logs NAME}). */
  void log(String line);

  /** A line in the task's log, on stderr. */
  void logStderr(String line);

  /** Still working: {@code progress} is 0..1, or negative when unknown; {@code message} may be null. */
  void heartbeat(double progress, String message);

  /**
   * Adds children to this task's run (idempotent per key); blocks until the sidecar answers.
   *
   * @throws RunnerException when the sidecar refuses (e.g. {@code unimplemented}: no hub to spawn on)
   */
  List<SpawnedChild> spawn(List<Child> children);

  /**
   * Where the task's children stand, in spawn order: those with these keys, or every child when
   * {@code keys} is empty. One call to the sidecar; see {@link #awaitChildren} to wait for them.
   *
   * @throws RunnerException when the sidecar refuses (e.g. {@code unimplemented}: no hub)
   * @throws TaskError of type {@code Cancelled} if the task is cancelled during the call
   */
  List<ChildStatus> children(List<String> keys);

  /** Every child of the task, in spawn order. */
  default List<ChildStatus> children() {
    return children(List.of());
  }

  /**
   * Waits until every child of the task (and everything they spawned) has ended, polling the
   * sidecar (20 ms, doubling to 1 s), then returns them in spawn order.
   *
   * @throws ChildFailedException (non-retryable) if a child did not succeed, naming each one
   * @throws InterruptedException if the task is cancelled meanwhile (reported as {@code Cancelled}
   *     with the reason), or the thread is interrupted
   */
  default List<ChildStatus> awaitChildren() throws InterruptedException {
    return awaitChildren(List.of(), true);
  }

  /**
   * Waits until the children with these keys (every child when {@code keys} is empty) and
   * everything they spawned have ended, polling the sidecar (20 ms, doubling to 1 s), then returns
   * them in spawn order.
   *
   * @param failOnError throw {@link ChildFailedException} if one did not succeed (its state is not
   *     {@code TASK_STATE_SUCCEEDED}, or a task it spawned did not succeed); if false, return them
   *     all and let the caller look at {@link ChildStatus#succeeded()}
   * @throws ChildFailedException (non-retryable) if {@code failOnError} and a child did not succeed
   * @throws InterruptedException if the task is cancelled meanwhile (reported as {@code Cancelled}
   *     with the reason), or the thread is interrupted
   */
  List<ChildStatus> awaitChildren(List<String> keys, boolean failOnError) throws InterruptedException;

  /**
   * Whether the task was cancelled (run cancelled, deadline passed, lease lost, worker stopping).
   * Cancelling also interrupts the handler's thread.
   */
  boolean isCancelled();

  /** Why the task was cancelled, or null. */
  String cancelReason();

  /**
   * Waits until the task is cancelled or {@code timeout} passes: true if cancelled. Useful as a
   * cancellable sleep.
   *
   * @throws InterruptedException if the thread is interrupted for another reason than cancellation
   */
  boolean awaitCancelled(Duration timeout) throws InterruptedException;

  /** Waits until the task is cancelled. */
  void awaitCancelled() throws InterruptedException;
}
