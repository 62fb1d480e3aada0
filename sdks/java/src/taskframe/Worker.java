package taskframe;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import taskframe.internal.Endpoint;
import taskframe.internal.Session;
import taskframe.internal.Signals;

/**
 * A long-lived worker: registers its handlers with the sidecar on this host (the unix socket in
 * {@code TASKFRAME_SOCKET}, or {@code TASKFRAME_RUNNER_URL}), receives assignments over one stream,
 * runs them on a fixed pool of {@code concurrency} threads, and reports results, logs and heartbeats
 * in batches.
 *
 * <pre>{@code
 * Worker worker = new Worker(Worker.options().concurrency(8).name("images"));
 * worker.register(new ImageHandlers());              // its @TaskHandler methods
 * worker.handle("shout", ctx -> ctx.text().toUpperCase());
 * worker.run();                                       // until SIGTERM (drained) or the sidecar stops
 * }</pre>
 *
 * <p>On SIGTERM or SIGINT (or {@link #stop()}), the worker drains: it takes no new work, finishes
 * and reports the tasks in hand, then {@link #run()} returns and the program can exit with status 0.
 */
public final class Worker {
  /** Settings of a worker; every one has a default. */
  public static final class Options {
    private int concurrency = 16;
    private String name;
    private final Map<String, String> labels = new LinkedHashMap<>();
    private String socket;
    private String url;
    private boolean handleSignals = true;
    private Duration drainTimeout = Duration.ofSeconds(30);
    private Duration callTimeout = Duration.ofSeconds(60);
    private Duration stopGrace = Duration.ofSeconds(2);

    private Options() {}

    /** Tasks run at once (the handler thread pool's size). Default 16. */
    public Options concurrency(int concurrency) {
      if (concurrency < 1) throw new IllegalArgumentException("concurrency must be at least 1, got " + concurrency);
      this.concurrency = concurrency;
      return this;
    }

    /** For humans: shown in the sidecar's logs and the audit trail. Default {@code java-<pid>}. */
    public Options name(String name) {
      this.name = name;
      return this;
    }

    public Options label(String key, String value) {
      labels.put(key, value);
      return this;
    }

    public Options labels(Map<String, String> labels) {
      this.labels.putAll(labels);
      return this;
    }

    /** The sidecar's unix socket. Default: env {@code TASKFRAME_SOCKET}. */
    public Options socket(String path) {
      this.socket = path;
      return this;
    }

    /** Or its TCP address, e.g. {@code http://127.0.0.1:7071}. Default: env {@code TASKFRAME_RUNNER_URL}. */
    public Options url(String url) {
      this.url = url;
      return this;
    }

    /** Whether SIGTERM/SIGINT drain the worker (default true). */
    public Options handleSignals(boolean handleSignals) {
      this.handleSignals = handleSignals;
      return this;
    }

    /** How long a JVM shutdown waits for the worker to drain (default 30 s). */
    public Options drainTimeout(Duration timeout) {
      this.drainTimeout = timeout;
      return this;
    }

    /** Longest wait for the sidecar's answer to one call (default 60 s). */
    public Options callTimeout(Duration timeout) {
      this.callTimeout = timeout;
      return this;
    }

    /** When the stream ends with tasks still running: how long to wait for their cancelled handlers (default 2 s). */
    public Options stopGrace(Duration grace) {
      this.stopGrace = grace;
      return this;
    }
  }

  public static Options options() {
    return new Options();
  }

  private final Options options;
  private final Map<String, Handler> handlers = new LinkedHashMap<>();
  private final AtomicBoolean started = new AtomicBoolean();
  private final CountDownLatch finished = new CountDownLatch(1);
  private volatile Session session;
  private volatile boolean stopRequested;

  public Worker() {
    this(options());
  }

  public Worker(Options options) {
    this.options = options;
  }

  /** Serves tasks whose handler is {@code name} with this function. */
  public synchronized Worker handle(String name, Handler handler) {
    if (name == null || name.isEmpty()) throw new IllegalArgumentException("a handler needs a name");
    if (handler == null) throw new IllegalArgumentException("handler '" + name + "' is null");
    if (started.get()) throw new IllegalStateException("cannot add handler '" + name + "': the worker is running");
    if (handlers.putIfAbsent(name, handler) != null) {
      throw new IllegalArgumentException("handler '" + name + "' is registered twice");
    }
    return this;
  }

  /**
   * Serves the {@link TaskHandler} methods of this object (each takes a {@link TaskContext}; static
   * ones too).
   */
  public Worker register(Object target) {
    List<Method> methods = new ArrayList<>();
    Set<String> seen = new HashSet<>();
    for (Class<?> type = target.getClass(); type != null && type != Object.class; type = type.getSuperclass()) {
      for (Method method : type.getDeclaredMethods()) {
        if (method.getAnnotation(TaskHandler.class) == null) continue;
        if (seen.add(method.getName() + Arrays.toString(method.getParameterTypes()))) methods.add(method);
      }
    }
    if (methods.isEmpty()) {
      throw new IllegalArgumentException(target.getClass().getName() + " has no @TaskHandler methods");
    }
    for (Method method : methods) {
      String name = method.getAnnotation(TaskHandler.class).value();
      Class<?>[] parameters = method.getParameterTypes();
      if (parameters.length != 1 || parameters[0] != TaskContext.class) {
        throw new IllegalArgumentException(
            "@TaskHandler(\"" + name + "\") " + method + ": expected one TaskContext parameter");
      }
      try {
        method.setAccessible(true);
      } catch (RuntimeException inaccessible) {
        // a public method of a public class works without it
      }
      Object receiver = Modifier.isStatic(method.getModifiers()) ? null : target;
      handle(name, ctx -> method.invoke(receiver, ctx)); // InvocationTargetException is unwrapped when reported
    }
    return this;
  }

  /** Names of the handlers this worker serves. */
  public synchronized Set<String> handlers() {
    return Collections.unmodifiableSet(new LinkedHashMap<>(handlers).keySet());
  }

  /** The id the sidecar gave this worker at registration ("" before). */
  public String workerId() {
    Session current = session;
    return current == null ? "" : current.workerId();
  }

  /**
   * Registers, then serves assignments until the worker is drained ({@link #stop()}, SIGTERM) or the
   * sidecar ends the stream; returns once the tasks in hand are reported.
   *
   * @throws RunnerException if the sidecar cannot be reached, or the stream breaks (the sidecar then
   *     gives this worker's tasks to be retried)
   */
  public void run() {
    Map<String, Handler> served;
    synchronized (this) {
      if (handlers.isEmpty()) {
        throw new IllegalStateException("a worker needs at least one handler: call handle() or register() first");
      }
      if (!started.compareAndSet(false, true)) throw new IllegalStateException("run() can be called only once");
      served = new LinkedHashMap<>(handlers);
    }
    Session current =
        new Session(
            new Session.Config(
                endpoint(),
                served,
                options.concurrency,
                options.name != null ? options.name : "java-" + ProcessHandle.current().pid(),
                new LinkedHashMap<>(options.labels),
                options.callTimeout.toMillis(),
                options.stopGrace.toMillis()));
    session = current;
    Runnable restoreSignals = null;
    Thread hook = null;
    try {
      if (options.handleSignals) {
        restoreSignals = Signals.install(this::stop);
        boolean viaHookOnly = restoreSignals == null;
        hook = new Thread(() -> onShutdown(viaHookOnly), "taskframe-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
      }
      if (stopRequested) current.stop();
      current.run();
    } finally {
      finished.countDown();
      if (restoreSignals != null) restoreSignals.run();
      if (hook != null) {
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
          // the hook is running or has run
        }
      }
    }
  }

  /** Drains: no new work; {@link #run()} returns once the tasks in hand are reported. Does not wait. */
  public void stop() {
    stopRequested = true;
    Session current = session;
    if (current != null) current.stop();
  }

  /** Waits until {@link #run()} has returned (or thrown). */
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    return finished.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  /**
   * The JVM is shutting down while the worker runs (System.exit, or a signal when signals cannot be
   * handled directly): drain and wait for it; in the latter case, exit 0 once drained.
   */
  private void onShutdown(boolean viaHookOnly) {
    if (finished.getCount() == 0) return;
    stop();
    boolean drained;
    try {
      drained = awaitTermination(options.drainTimeout);
    } catch (InterruptedException e) {
      return;
    }
    if (viaHookOnly && drained) Runtime.getRuntime().halt(0);
  }

  private Endpoint endpoint() {
    if (options.socket != null) return Endpoint.unix(options.socket);
    if (options.url != null) return Endpoint.url(options.url);
    String socket = System.getenv("TASKFRAME_SOCKET");
    if (socket != null && !socket.isEmpty()) return Endpoint.unix(socket);
    String url = System.getenv("TASKFRAME_RUNNER_URL");
    if (url != null && !url.isEmpty()) return Endpoint.url(url);
    throw new IllegalStateException(
        "no sidecar to connect to: set TASKFRAME_SOCKET (or TASKFRAME_RUNNER_URL), or Worker.options().socket(path)");
  }
}
