package taskframe.internal;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import taskframe.Json;
import taskframe.RunnerException;

/**
 * Connect (JSON codec) calls to the sidecar's RunnerService over HTTP/1.1: unary calls on pooled
 * keep-alive connections (a stale one is replaced), and server streams on a connection of their own.
 */
public final class RunnerClient implements Closeable {
  /** The sidecar (Node) closes keep-alive connections idle for 5 s: do not reuse one nearly that old. */
  private static final long MAX_IDLE_NANOS = TimeUnit.SECONDS.toNanos(4);
  private static final int MAX_IDLE_CONNECTIONS = 8;

  private final Endpoint endpoint;
  private final ScheduledExecutorService timers;
  private final long callTimeoutMs;
  private final ArrayDeque<HttpConnection> idle = new ArrayDeque<>();
  private final Set<HttpConnection> connections = ConcurrentHashMap.newKeySet();
  private volatile boolean closed;

  public RunnerClient(Endpoint endpoint, ScheduledExecutorService timers, long callTimeoutMs) {
    this.endpoint = endpoint;
    this.timers = timers;
    this.callTimeoutMs = callTimeoutMs;
  }

  public Endpoint endpoint() {
    return endpoint;
  }

  /**
   * A unary call: the request message as JSON in, the response message out.
   *
   * @throws RunnerException when the sidecar answers with an error (its Connect code and message)
   * @throws IOException when it cannot be reached
   */
  @SuppressWarnings("unchecked")
  public Map<String, Object> call(String method, String requestJson) throws IOException {
    byte[] body = requestJson.getBytes(StandardCharsets.UTF_8);
    for (int attempt = 0; ; attempt++) {
      if (closed) throw new IOException("the client is closed");
      HttpConnection connection = takeIdle();
      boolean reused = connection != null;
      if (connection == null) connection = connect();
      AtomicBoolean timedOut = new AtomicBoolean();
      HttpConnection watched = connection;
      ScheduledFuture<?> watchdog =
          timers.schedule(
              () -> {
                timedOut.set(true);
                watched.close();
              },
              callTimeoutMs,
              TimeUnit.MILLISECONDS);
      try {
        connection.post(endpoint.path(method), "application/json", body);
        HttpConnection.Response response = connection.readResponse();
        byte[] payload = response.readAll();
        watchdog.cancel(false);
        if (response.keepAlive() && !timedOut.get()) release(connection);
        else discard(connection);
        if (response.status() != 200) throw errorOf(method, response.status(), payload);
        if (payload.length == 0) return Map.of();
        Object parsed = Json.parse(payload);
        if (!(parsed instanceof Map)) throw new IOException(method + ": the response is not a JSON object");
        return (Map<String, Object>) parsed;
      } catch (IOException e) {
        watchdog.cancel(false);
        discard(connection);
        if (timedOut.get()) {
          throw new RunnerException("deadline_exceeded", method + " got no answer within " + callTimeoutMs + " ms", e);
        }
        // a keep-alive connection the sidecar closed meanwhile: the request was not read, send it again
        boolean stale = reused && !connection.responseStarted() && attempt == 0;
        if (stale && !closed && !Thread.currentThread().isInterrupted()) continue;
        throw e;
      }
    }
  }

  /** Opens a server stream with one request message; read its envelopes with {@link Stream#next()}. */
  public Stream openStream(String method, String requestJson) throws IOException {
    HttpConnection connection = connect();
    try {
      connection.post(
          endpoint.path(method),
          "application/connect+json",
          Envelope.encode(0, requestJson.getBytes(StandardCharsets.UTF_8)));
      HttpConnection.Response response = connection.readResponse();
      if (response.status() != 200) throw errorOf(method, response.status(), response.readAll());
      String contentType = response.header("content-type");
      if (contentType == null || !contentType.startsWith("application/connect+json")) {
        throw new IOException(method + ": expected a application/connect+json response, got " + contentType);
      }
      return new Stream(connection, response.body());
    } catch (IOException | RuntimeException e) {
      discard(connection);
      throw e;
    }
  }

  /** Closes every connection (a thread blocked on one gets an exception). */
  @Override
  public void close() {
    closed = true;
    synchronized (idle) {
      idle.clear();
    }
    for (HttpConnection connection : connections) connection.close();
    connections.clear();
  }

  private HttpConnection connect() throws IOException {
    HttpConnection connection = HttpConnection.open(endpoint);
    connections.add(connection);
    if (closed) {
      discard(connection);
      throw new IOException("the client is closed");
    }
    return connection;
  }

  private HttpConnection takeIdle() {
    synchronized (idle) {
      while (!idle.isEmpty()) {
        HttpConnection connection = idle.pollLast();
        if (connection.isOpen() && connection.idleNanos() < MAX_IDLE_NANOS) return connection;
        discard(connection);
      }
      return null;
    }
  }

  private void release(HttpConnection connection) {
    connection.markIdle();
    synchronized (idle) {
      if (!closed && idle.size() < MAX_IDLE_CONNECTIONS && connection.isOpen()) {
        idle.addLast(connection);
        return;
      }
    }
    discard(connection);
  }

  private void discard(HttpConnection connection) {
    connection.close();
    connections.remove(connection);
  }

  /** A Connect error response ({"code": ..., "message": ...}) as an exception. */
  static RunnerException errorOf(String method, int status, byte[] payload) {
    try {
      Object parsed = Json.parse(payload);
      if (parsed instanceof Map) {
        RunnerException error = errorOf(method, (Map<?, ?>) parsed);
        if (error != null) return error;
      }
    } catch (RuntimeException notJson) {
      // fall through
    }
    String text = new String(payload, StandardCharsets.UTF_8).trim();
    return new RunnerException(
        codeOfStatus(status), method + " failed with HTTP " + status + (text.isEmpty() ? "" : ": " + text));
  }

  /** {"code": ..., "message": ...} as an exception, or null if it has no code. */
  public static RunnerException errorOf(String method, Map<?, ?> error) {
    Object code = error.get("code");
    if (!(code instanceof String)) return null;
    Object message = error.get("message");
    return new RunnerException((String) code, method + ": " + (message == null ? "(no message)" : message));
  }

  private static String codeOfStatus(int status) {
    switch (status) {
      case 400:
        return "invalid_argument";
      case 401:
        return "unauthenticated";
      case 403:
        return "permission_denied";
      case 404:
        return "unimplemented"; // no such route
      case 408:
        return "deadline_exceeded";
      case 409:
        return "aborted";
      case 429:
      case 502:
      case 503:
      case 504:
        return "unavailable";
      case 501:
        return "unimplemented";
      default:
        return "unknown";
    }
  }

  /** A server stream being read. */
  public final class Stream implements Closeable {
    private final HttpConnection connection;
    private final InputStream body;

    Stream(HttpConnection connection, InputStream body) {
      this.connection = connection;
      this.body = body;
    }

    /** The next envelope (blocks until it has arrived), or null if the body ended. */
    public Envelope next() throws IOException {
      return Envelope.read(body);
    }

    @Override
    public void close() {
      discard(connection);
    }
  }
}
