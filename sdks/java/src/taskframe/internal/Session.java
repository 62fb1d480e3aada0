package taskframe.internal;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.channels.ClosedByInterruptException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import taskframe.Child;
import taskframe.ChildStatus;
import taskframe.Handler;
import taskframe.Json;
import taskframe.NonRetryableException;
import taskframe.Output;
import taskframe.RetryAfterException;
import taskframe.RunnerException;
import taskframe.SpawnedChild;
import taskframe.TaskError;

/**
 * One registration of a worker with the sidecar: Register, the Assignments stream read on the
 * caller's thread, handlers on a fixed pool of threads, reports through a {@link Reporter}, and the
 * end (drained, or lost).
 */
public final class Session {
  /** What a worker is configured with. */
  public record Config(
      Endpoint endpoint,
      Map<String, Handler> handlers,
      int concurrency,
      String name,
      Map<String, String> labels,
      long callTimeoutMs,
      long finishGraceMs) {}

  private final Config config;
  private final ScheduledThreadPoolExecutor timers;
  private final RunnerClient client;
  private final ExecutorService handlers;
  private final Map<String, Task> running = new ConcurrentHashMap<>();
  private final Object idle = new Object();
  private volatile String workerId = "";
  private volatile Reporter reporter;
  private volatile RunnerClient.Stream stream;
  private volatile boolean streamEnded;
  private boolean registered;
  private boolean stopRequested;
  private volatile boolean streamClosedByStop;

  public Session(Config config) {
    this.config = config;
    this.timers = new ScheduledThreadPoolExecutor(1, daemonThreads("taskframe-timer"));
    timers.setRemoveOnCancelPolicy(true);
    this.client = new RunnerClient(config.endpoint(), timers, config.callTimeoutMs());
    this.handlers =
        new ThreadPoolExecutor(
            config.concurrency(),
            config.concurrency(),
            0,
            TimeUnit.MILLISECONDS,
            new LinkedBlockingQueue<>(),
            daemonThreads("taskframe-handler"));
  }

  public String workerId() {
    return workerId;
  }

  RunnerClient client() {
    return client;
  }

  boolean streamEnded() {
    return streamEnded;
  }

  /** Tasks received and not completed yet. */
  public int running() {
    return running.size();
  }

  /**
   * Registers, then serves assignments until the stream ends: returns when it ends cleanly (drained,
   * or the sidecar stopped), throws when it ends with an error or the connection breaks.
   */
  public void run() {
    try {
      register();
    } catch (IOException e) {
      shutdown();
      throw new RunnerException(
          "unavailable", "cannot reach the sidecar at " + config.endpoint() + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      shutdown();
      throw e;
    }
    RuntimeException failure = null;
    try {
      boolean drainNow;
      synchronized (this) {
        registered = true;
        drainNow = stopRequested;
      }
      if (drainNow) drain();
      stream = client.openStream("Assignments", "{\"workerId\":" + Json.write(workerId) + "}");
      if (streamClosedByStop) stream.close(); // a stop whose Drain failed while the stream was opening
      while (true) {
        Envelope envelope = stream.next();
        if (envelope == null) throw new IOException("the Assignments stream ended without an end-of-stream message");
        if ((envelope.flags & Envelope.FLAG_COMPRESSED) != 0) {
          throw new IOException("the sidecar sent a compressed message, which this SDK does not ask for");
        }
        Object message = Json.parse(envelope.data);
        if (envelope.endOfStream()) {
          Object error = message instanceof Map ? ((Map<?, ?>) message).get("error") : null;
          if (error instanceof Map) {
            failure = RunnerClient.errorOf("Assignments", (Map<?, ?>) error);
            if (failure == null) failure = new RunnerException("unknown", "Assignments ended with " + error);
          }
          break;
        }
        if (message instanceof Map) dispatch((Map<?, ?>) message);
      }
    } catch (IOException e) {
      if (!streamClosedByStop) {
        failure = new RunnerException("unavailable", "lost the Assignments stream: " + e.getMessage(), e);
      }
    } catch (RuntimeException e) {
      failure = e;
    } finally {
      streamEnded = true;
      finish();
    }
    if (failure != null) throw failure;
    note("the Assignments stream ended: worker " + workerId + " stopped");
  }

  /** Asks the sidecar for no more work: run() returns once the tasks in hand are reported. */
  public void stop() {
    synchronized (this) {
      if (stopRequested) return;
      stopRequested = true;
      if (!registered) return; // run() drains as soon as it has registered
    }
    drain();
  }

  private void register() throws IOException {
    StringBuilder request = new StringBuilder("{\"language\":\"java\",\"sdkVersion\":\"" + Version.SDK + "\"");
    request.append(",\"handlers\":").append(Json.write(new ArrayList<>(config.handlers().keySet())));
    request.append(",\"maxConcurrency\":").append(config.concurrency());
    if (!config.labels().isEmpty()) request.append(",\"labels\":").append(Json.write(config.labels()));
    request.append(",\"name\":").append(Json.write(config.name())).append('}');
    Map<String, Object> response = client.call("Register", request.toString());
    workerId = Assignment.string(response, "workerId");
    if (workerId.isEmpty()) throw new RunnerException("internal", "Register answered without a workerId");
    long heartbeatMs = Assignment.number(response, "heartbeatIntervalMs");
    reporter = new Reporter(this, heartbeatMs > 0 ? Math.max(100, heartbeatMs) : 5_000);
    reporter.start();
    note(
        "worker " + config.name() + " registered as " + workerId + " with " + config.endpoint() + ": handlers "
            + config.handlers().keySet() + ", concurrency " + config.concurrency());
  }

  private void drain() {
    try {
      client.call("Drain", "{\"workerId\":" + Json.write(workerId) + "}");
      note("draining: no new work; finishing " + running.size() + " task(s) in hand");
    } catch (IOException | RuntimeException e) {
      if (streamEnded) return; // the stream ended meanwhile (drained at once): the client is closed
      note("cannot drain (" + e + "): closing the Assignments stream");
      streamClosedByStop = true;
      RunnerClient.Stream open = stream;
      if (open != null) open.close();
    }
  }

  private void dispatch(Map<?, ?> message) {
    List<?> assignments = Assignment.list(message, "assignments");
    List<Task> fresh = new ArrayList<>(assignments.size());
    for (Object item : assignments) {
      if (!(item instanceof Map)) continue;
      Task task = new Task(Assignment.from((Map<?, ?>) item), this);
      Task previous = running.put(task.assignment.taskId, task);
      if (previous != null) previous.cancel("superseded by attempt " + task.assignment.attempt);
      fresh.add(task);
    }
    for (Object item : Assignment.list(message, "cancels")) {
      if (!(item instanceof Map)) continue;
      Map<?, ?> cancel = (Map<?, ?>) item;
      Task task = running.get(Assignment.string(cancel, "taskId"));
      if (task == null) continue;
      long attempt = Assignment.number(cancel, "attempt");
      long epoch = Assignment.number(cancel, "leaseEpoch");
      if (attempt != 0 && attempt != task.assignment.attempt) continue;
      if (epoch != 0 && !Long.toUnsignedString(epoch).equals(task.assignment.leaseEpoch)) continue;
      task.cancel(Assignment.string(cancel, "reason"));
    }
    for (Task task : fresh) {
      long deadline = task.assignment.deadlineUnixMs;
      if (deadline > 0) {
        task.deadlineTimer =
            timers.schedule(
                () -> task.cancel("deadline exceeded"),
                Math.max(0, deadline - System.currentTimeMillis()),
                TimeUnit.MILLISECONDS);
      }
      try {
        handlers.execute(() -> execute(task));
      } catch (RejectedExecutionException shuttingDown) {
        running.remove(task.assignment.taskId, task);
      }
    }
  }

  private void execute(Task task) {
    Assignment a = task.assignment;
    Output output = null;
    Failure failure = null;
    Throwable thrown = null;
    try {
      if (!task.start(Thread.currentThread())) throw new TaskError("Cancelled", task.cancelReason());
      Handler handler = config.handlers().get(a.handler);
      if (handler == null) {
        throw new TaskError(
            "UnknownHandler", "no handler '" + a.handler + "' in this worker (it serves " + config.handlers().keySet() + ")");
      }
      output = Output.from(handler.handle(task));
    } catch (Throwable e) {
      thrown = Failure.unwrap(e);
      failure = Failure.of(e);
      if (task.isCancelled() && interruption(thrown)) failure = new Failure("Cancelled", task.cancelReason(), false, 0);
    } finally {
      task.finish();
      Thread.interrupted(); // a cancel's interrupt must not leak into the pool thread's next task
      if (task.deadlineTimer != null) task.deadlineTimer.cancel(false);
    }
    if (thrown != null && failure != null && !failure.type().equals("Cancelled") && unexpected(thrown)) {
      System.err.println("taskframe: " + task + " failed:");
      thrown.printStackTrace();
    }
    StringBuilder completion = new StringBuilder(output == null ? 160 : 160 + output.data().length * 4 / 3);
    completion.append('{');
    a.writeIdentity(completion);
    if (failure != null) {
      completion.append(",\"error\":");
      failure.writeJson(completion);
    } else {
      completion.append(",\"output\":\"").append(java.util.Base64.getEncoder().encodeToString(output.data())).append('"');
      if (!output.contentType().isEmpty()) {
        completion.append(",\"outputContentType\":");
        Json.writeString(output.contentType(), completion);
      }
    }
    completion.append('}');
    reporter.completion(completion.toString());
    running.remove(a.taskId, task);
    synchronized (idle) {
      idle.notifyAll();
    }
  }

  private static boolean interruption(Throwable e) {
    return e instanceof InterruptedException
        || e instanceof InterruptedIOException
        || e instanceof ClosedByInterruptException;
  }

  /** Worth a stack trace in the worker's log: not one of the SDK's own ways to fail a task. */
  private static boolean unexpected(Throwable e) {
    return !(e instanceof TaskError || e instanceof NonRetryableException || e instanceof RetryAfterException);
  }

  void log(Task task, boolean stderr, String text) {
    StringBuilder line = new StringBuilder(96 + (text == null ? 4 : text.length()));
    line.append('{');
    task.assignment.writeIdentity(line);
    line.append(",\"stream\":\"").append(stderr ? "LOG_STREAM_STDERR" : "LOG_STREAM_STDOUT").append("\",\"text\":");
    Json.writeString(text == null ? "null" : text, line);
    line.append(",\"atUnixMs\":\"").append(System.currentTimeMillis()).append("\"}");
    reporter.line(line.toString());
  }

  void progress(Task task, double progress, String message) {
    reporter.progress(progressJson(task, progress, message));
  }

  private static String progressJson(Task task, double progress, String message) {
    StringBuilder out = new StringBuilder(128);
    out.append('{');
    task.assignment.writeIdentity(out);
    double value = Double.isNaN(progress) || progress < 0 ? -1 : Math.min(1, progress);
    out.append(",\"progress\":");
    Json.write(value, out);
    if (message != null && !message.isEmpty()) {
      out.append(",\"message\":");
      Json.writeString(message, out);
    }
    return out.append('}').toString();
  }

  /** TaskProgress of every task in hand, for the periodic heartbeat. */
  List<String> runningProgress() {
    List<String> tasks = new ArrayList<>(running.size());
    for (Task task : running.values()) if (!task.done()) tasks.add(progressJson(task, -1, null));
    return tasks;
  }

  /** A heartbeat answered that this task is no longer ours. */
  void lost(String taskId) {
    Task task = running.get(taskId);
    if (task != null) task.cancel("the task's lease was lost");
  }

  List<SpawnedChild> spawn(Task task, List<Child> children) {
    if (children.isEmpty()) return List.of();
    StringBuilder request = new StringBuilder("{\"workerId\":");
    Json.writeString(workerId, request);
    request.append(',');
    task.assignment.writeIdentity(request);
    request.append(",\"children\":").append(Child.specJson(children)).append('}');
    Map<String, Object> response;
    try {
      response = client.call("Spawn", request.toString());
    } catch (IOException e) {
      if (task.isCancelled()) throw new TaskError("Cancelled", task.cancelReason()); // interrupted by the cancel
      throw new RunnerException("unavailable", "Spawn: cannot reach the sidecar: " + e.getMessage(), e);
    } catch (RunnerException e) {
      if (e.code().equals("unimplemented")) {
        throw new RunnerException(
            "unimplemented",
            "spawning children is not available here (" + e.getMessage() + "): the sidecar needs a hub that supports Spawn",
            e);
      }
      throw e;
    }
    List<SpawnedChild> spawned = new ArrayList<>();
    for (Object item : Assignment.list(response, "children")) {
      if (!(item instanceof Map)) continue;
      Map<?, ?> child = (Map<?, ?>) item;
      spawned.add(
          new SpawnedChild(
              Assignment.string(child, "key"),
              Assignment.string(child, "taskId"),
              Assignment.string(child, "name"),
              Boolean.TRUE.equals(child.get("existing"))));
    }
    return spawned;
  }

  /**
   * The Children call: where the task's children stand (those with these keys; every child when empty).
   *
   * @throws InterruptedIOException when the call failed because the task was cancelled meanwhile
   */
  List<ChildStatus> children(Task task, List<String> keys) throws InterruptedIOException {
    StringBuilder request = new StringBuilder("{\"workerId\":");
    Json.writeString(workerId, request);
    request.append(',');
    task.assignment.writeIdentity(request);
    if (!keys.isEmpty()) request.append(",\"keys\":").append(Json.write(keys));
    request.append('}');
    Map<String, Object> response;
    try {
      response = client.call("Children", request.toString());
    } catch (IOException e) {
      if (task.isCancelled()) {
        InterruptedIOException cancelled = new InterruptedIOException("task cancelled: " + task.cancelReason());
        cancelled.initCause(e);
        throw cancelled;
      }
      throw new RunnerException("unavailable", "Children: cannot reach the sidecar: " + e.getMessage(), e);
    } catch (RunnerException e) {
      if (e.code().equals("unimplemented")) {
        throw new RunnerException(
            "unimplemented",
            "awaiting children is not available here (" + e.getMessage() + "): the sidecar needs a hub that supports Children",
            e);
      }
      throw e;
    }
    List<ChildStatus> children = new ArrayList<>();
    for (Object item : Assignment.list(response, "children")) {
      if (!(item instanceof Map)) continue;
      Map<?, ?> child = (Map<?, ?>) item;
      children.add(
          new ChildStatus(
              Assignment.string(child, "key"),
              Assignment.string(child, "taskId"),
              Assignment.string(child, "name"),
              taskState(child.get("state")),
              (int) Assignment.number(child, "attempt"),
              Boolean.TRUE.equals(child.get("settled")),
              Boolean.TRUE.equals(child.get("subtreeFailed")),
              Assignment.decodeBytes(Assignment.string(child, "output")),
              Assignment.string(child, "outputContentType"),
              Assignment.string(child, "detail")));
    }
    return children;
  }

  private static final String[] TASK_STATES = {
    "TASK_STATE_UNSPECIFIED", "TASK_STATE_CREATED", "TASK_STATE_PENDING", "TASK_STATE_RUNNING", "TASK_STATE_SUCCEEDED",
    "TASK_STATE_FAILED", "TASK_STATE_RETRYING", "TASK_STATE_CANCELLED", "TASK_STATE_TIMED_OUT", "TASK_STATE_SKIPPED",
    "TASK_STATE_CHECK_FAILED"
  };

  /** A TaskState field by name (as proto3 JSON writes it; a number is accepted too); absent is UNSPECIFIED. */
  static String taskState(Object value) {
    if (value instanceof String && !((String) value).isEmpty()) return (String) value;
    if (value instanceof Number) {
      long n = ((Number) value).longValue();
      return n >= 0 && n < TASK_STATES.length ? TASK_STATES[(int) n] : "TASK_STATE_" + n;
    }
    return TASK_STATES[0];
  }

  /** The stream is over: stop what still runs, report what can be, release everything. */
  private void finish() {
    for (Task task : running.values()) task.cancel("the worker's assignment stream ended");
    long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(config.finishGraceMs());
    synchronized (idle) {
      while (!running.isEmpty()) {
        long left = until - System.nanoTime();
        if (left <= 0) break;
        try {
          TimeUnit.NANOSECONDS.timedWait(idle, Math.min(left, TimeUnit.MILLISECONDS.toNanos(50)));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    }
    if (!running.isEmpty()) note(running.size() + " handler(s) did not stop in time; abandoning them");
    shutdown();
  }

  private void shutdown() {
    Reporter r = reporter;
    if (r != null) {
      try {
        r.close(5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    handlers.shutdownNow();
    client.close();
    timers.shutdownNow();
  }

  /** A line in the worker's own log (stderr). */
  void note(String message) {
    System.err.println("taskframe: " + message);
  }

  private static ThreadFactory daemonThreads(String prefix) {
    AtomicInteger count = new AtomicInteger();
    return runnable -> {
      Thread thread = new Thread(runnable, prefix + "-" + count.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    };
  }
}
