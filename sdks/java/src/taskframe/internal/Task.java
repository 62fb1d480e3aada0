package taskframe.internal;

import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import taskframe.Child;
import taskframe.ChildFailedException;
import taskframe.ChildStatus;
import taskframe.Json;
import taskframe.SpawnedChild;
import taskframe.TaskContext;
import taskframe.TaskError;

/** An assignment in this worker, from its arrival to its completion; the handler's TaskContext. */
final class Task implements TaskContext {
  final Assignment assignment;
  private final Session session;
  private final CountDownLatch cancelled = new CountDownLatch(1);
  private volatile String cancelReason;
  private volatile boolean done;
  /** The thread running the handler, while it runs (guarded by this). */
  private Thread thread;
  volatile ScheduledFuture<?> deadlineTimer;

  Task(Assignment assignment, Session session) {
    this.assignment = assignment;
    this.session = session;
  }

  /** Marks the handler as running on this thread; false if the task was cancelled before it started. */
  synchronized boolean start(Thread current) {
    if (cancelReason != null) return false;
    thread = current;
    return true;
  }

  /** The handler returned: nothing about it is sent any more, and cancelling it interrupts nobody. */
  synchronized void finish() {
    done = true;
    thread = null;
  }

  boolean done() {
    return done;
  }

  /** Sets the flag, wakes awaitCancelled, interrupts the handler's thread; false if already cancelled or done. */
  boolean cancel(String reason) {
    synchronized (this) {
      if (done || cancelReason != null) return false;
      cancelReason = reason == null || reason.isEmpty() ? "cancelled" : reason;
      cancelled.countDown();
      if (thread != null) thread.interrupt();
    }
    return true;
  }

  @Override
  public String taskId() {
    return assignment.taskId;
  }

  @Override
  public String runId() {
    return assignment.runId;
  }

  @Override
  public String taskName() {
    return assignment.taskName;
  }

  @Override
  public String handler() {
    return assignment.handler;
  }

  @Override
  public int attempt() {
    return assignment.attempt;
  }

  @Override
  public byte[] input() {
    return assignment.input();
  }

  @Override
  public String contentType() {
    return assignment.contentType;
  }

  @Override
  public String text() {
    return new String(assignment.input(), StandardCharsets.UTF_8);
  }

  @Override
  public Object json() {
    return Json.parse(text());
  }

  @Override
  public String traceparent() {
    return assignment.traceparent;
  }

  @Override
  public Optional<Instant> deadline() {
    long at = assignment.deadlineUnixMs;
    return at > 0 ? Optional.of(Instant.ofEpochMilli(at)) : Optional.empty();
  }

  @Override
  public void log(String line) {
    if (!done) session.log(this, false, line);
  }

  @Override
  public void logStderr(String line) {
    if (!done) session.log(this, true, line);
  }

  @Override
  public void heartbeat(double progress, String message) {
    if (!done) session.progress(this, progress, message);
  }

  @Override
  public List<SpawnedChild> spawn(List<Child> children) {
    if (done) throw new IllegalStateException("task " + assignment.taskName + " has completed: it cannot spawn");
    return session.spawn(this, children);
  }

  @Override
  public List<ChildStatus> children(List<String> keys) {
    if (done) throw new IllegalStateException("task " + assignment.taskName + " has completed: it cannot ask for its children");
    try {
      return session.children(this, keys);
    } catch (InterruptedIOException e) {
      throw new TaskError("Cancelled", cancelReason());
    }
  }

  @Override
  public List<ChildStatus> awaitChildren(List<String> keys, boolean failOnError) throws InterruptedException {
    if (done) throw new IllegalStateException("task " + assignment.taskName + " has completed: it cannot await its children");
    List<String> wanted = List.copyOf(keys);
    for (long waitMs = 20; ; waitMs = Math.min(1_000, waitMs * 2)) {
      if (isCancelled()) throw cancelled();
      List<ChildStatus> children;
      try {
        children = session.children(this, wanted);
      } catch (InterruptedIOException e) {
        throw cancelled();
      }
      if (children.stream().allMatch(ChildStatus::settled)) {
        if (failOnError) {
          List<ChildStatus> failed = children.stream().filter(c -> !c.succeeded()).toList();
          if (!failed.isEmpty()) throw new ChildFailedException(failed);
        }
        return children;
      }
      if (awaitCancelled(Duration.ofMillis(waitMs))) throw cancelled();
    }
  }

  /** What a wait throws once the task is cancelled (the worker reports it as Cancelled, with the reason). */
  private InterruptedException cancelled() {
    Thread.interrupted(); // thrown instead
    return new InterruptedException("task cancelled: " + cancelReason());
  }

  @Override
  public boolean isCancelled() {
    return cancelReason != null;
  }

  @Override
  public String cancelReason() {
    return cancelReason;
  }

  @Override
  public boolean awaitCancelled(Duration timeout) throws InterruptedException {
    try {
      return cancelled.await(Math.max(0, timeout.toNanos()), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      if (!isCancelled()) throw e;
      Thread.currentThread().interrupt(); // keep the interrupt for what the handler does next
      return true;
    }
  }

  @Override
  public void awaitCancelled() throws InterruptedException {
    try {
      cancelled.await();
    } catch (InterruptedException e) {
      if (!isCancelled()) throw e;
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "task " + assignment.taskName + " (" + assignment.taskId + ", attempt " + assignment.attempt + ")";
  }
}
