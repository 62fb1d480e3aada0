package taskframe.test;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import taskframe.Json;
import taskframe.internal.Envelope;

/**
 * A sidecar's Runner service as the SDK sees it, for tests: HTTP/1.1 on a unix socket or TCP,
 * Connect JSON unary calls (answered with Content-Length or chunked bodies, alternately) and the
 * Assignments stream (chunked envelopes, which a test can split across chunks or pack together).
 */
final class FakeSidecar implements AutoCloseable {
  static final String WORKER_ID = "w-1";
  private static final byte[] TERMINATOR = new byte[0];
  private static final byte[] ABORT = new byte[0];

  final String address;
  private final ServerSocketChannel server;
  final List<String> events = Collections.synchronizedList(new ArrayList<>());
  final List<Map<?, ?>> registers = Collections.synchronizedList(new ArrayList<>());
  final Map<String, Map<?, ?>> completions = new ConcurrentHashMap<>();
  final List<Map<?, ?>> logs = Collections.synchronizedList(new ArrayList<>());
  final List<Map<?, ?>> progress = Collections.synchronizedList(new ArrayList<>());
  final List<Map<?, ?>> spawns = Collections.synchronizedList(new ArrayList<>());
  final List<Map<?, ?>> childrenCalls = Collections.synchronizedList(new ArrayList<>());
  final AtomicInteger completeCalls = new AtomicInteger();
  final AtomicInteger heartbeatCalls = new AtomicInteger();
  final AtomicInteger drainCalls = new AtomicInteger();
  final AtomicInteger connections = new AtomicInteger();
  final Set<String> assigned = ConcurrentHashMap.newKeySet();
  /** Reported once each in the next Heartbeat's lostTaskIds. */
  final Set<String> lose = ConcurrentHashMap.newKeySet();
  /** Close a connection (without saying so) after this many unary responses on it; 0: never. */
  volatile int closeAfterResponses;
  /** The answer to Spawn: {status, JSON body}. */
  volatile Function<Map<?, ?>, Object[]> spawnReply = request -> new Object[] {501, "{\"code\":\"unimplemented\",\"message\":\"no hub\"}"};
  /** The answer to Children: {status, JSON body}. */
  volatile Function<Map<?, ?>, Object[]> childrenReply = request -> new Object[] {501, "{\"code\":\"unimplemented\",\"message\":\"no hub\"}"};
  private final LinkedBlockingQueue<byte[]> outbox = new LinkedBlockingQueue<>();
  private volatile boolean drained;
  private volatile boolean ended;

  private FakeSidecar(ServerSocketChannel server, String address) {
    this.server = server;
    this.address = address;
    Thread acceptor = new Thread(this::accept, "fake-sidecar-accept");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  static FakeSidecar unix(Path socket) throws IOException {
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    server.bind(UnixDomainSocketAddress.of(socket));
    return new FakeSidecar(server, socket.toString());
  }

  static FakeSidecar tcp() throws IOException {
    ServerSocketChannel server = ServerSocketChannel.open();
    server.bind(new InetSocketAddress("127.0.0.1", 0));
    int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
    return new FakeSidecar(server, "http://127.0.0.1:" + port);
  }

  // ---- what a test sends on the stream

  static Map<String, Object> assignment(String taskId, String handler, byte[] input, String contentType) {
    Map<String, Object> a = new LinkedHashMap<>();
    a.put("taskId", taskId);
    a.put("runId", "run-1");
    a.put("taskName", "name-" + taskId);
    a.put("attempt", 1);
    a.put("leaseEpoch", "4294967297");
    a.put("handler", handler);
    if (input.length > 0) a.put("input", Base64.getEncoder().encodeToString(input));
    if (!contentType.isEmpty()) a.put("contentType", contentType);
    return a;
  }

  static Map<String, Object> assignments(List<Map<String, Object>> assignments) {
    return new LinkedHashMap<>(Map.of("assignments", assignments));
  }

  static Map<String, Object> cancel(String taskId, String reason) {
    Map<String, Object> c = new LinkedHashMap<>();
    c.put("taskId", taskId);
    c.put("attempt", 1);
    c.put("leaseEpoch", "4294967297");
    c.put("reason", reason);
    return new LinkedHashMap<>(Map.of("cancels", List.of(c)));
  }

  /** One message in one chunk. */
  void send(Map<String, Object> message) {
    track(message);
    outbox.add(envelope(0, message));
  }

  /** One message split over three chunks. */
  void sendSplit(Map<String, Object> message) {
    track(message);
    byte[] bytes = envelope(0, message);
    outbox.add(java.util.Arrays.copyOfRange(bytes, 0, 3));
    outbox.add(java.util.Arrays.copyOfRange(bytes, 3, 11));
    outbox.add(java.util.Arrays.copyOfRange(bytes, 11, bytes.length));
  }

  /** Several messages in one chunk. */
  void sendTogether(List<Map<String, Object>> messages) {
    ByteArrayOutputStream chunk = new ByteArrayOutputStream();
    for (Map<String, Object> message : messages) {
      track(message);
      chunk.writeBytes(envelope(0, message));
    }
    outbox.add(chunk.toByteArray());
  }

  /** Ends the stream with this end-of-stream JSON ("{}" when clean). */
  void end(String json) {
    outbox.add(Envelope.encode(Envelope.FLAG_END_STREAM, json.getBytes(StandardCharsets.UTF_8)));
    outbox.add(TERMINATOR);
  }

  /** Breaks the stream's connection. */
  void abort() {
    outbox.add(ABORT);
  }

  private void track(Map<String, Object> message) {
    Object list = message.get("assignments");
    if (list instanceof List) for (Object a : (List<?>) list) assigned.add((String) ((Map<?, ?>) a).get("taskId"));
  }

  private static byte[] envelope(int flags, Map<String, Object> message) {
    return Envelope.encode(flags, Json.write(message).getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public void close() throws IOException {
    server.close();
    if (!address.startsWith("http")) java.nio.file.Files.deleteIfExists(Path.of(address));
  }

  // ---- the server

  private void accept() {
    while (server.isOpen()) {
      try {
        SocketChannel channel = server.accept();
        connections.incrementAndGet();
        Thread connection = new Thread(() -> serve(channel), "fake-sidecar-conn");
        connection.setDaemon(true);
        connection.start();
      } catch (IOException closed) {
        return;
      }
    }
  }

  private void serve(SocketChannel channel) {
    try (channel) {
      InputStream in = new BufferedInputStream(Channels.newInputStream(channel));
      OutputStream out = Channels.newOutputStream(channel);
      for (int responses = 1; ; responses++) {
        String requestLine = line(in);
        if (requestLine == null) return;
        Map<String, String> headers = new LinkedHashMap<>();
        for (String header = line(in); header != null && !header.isEmpty(); header = line(in)) {
          int colon = header.indexOf(':');
          headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT), header.substring(colon + 1).trim());
        }
        byte[] body = in.readNBytes(Integer.parseInt(headers.getOrDefault("content-length", "0")));
        String path = requestLine.split(" ")[1];
        String method = path.substring(path.lastIndexOf('/') + 1);
        if (method.equals("Assignments")) {
          stream(out, headers, body);
          return;
        }
        if (!"application/json".equals(headers.get("content-type")) || !"1".equals(headers.get("connect-protocol-version"))) {
          respond(out, 415, "{\"code\":\"invalid_argument\",\"message\":\"bad headers " + headers + "\"}", false);
          continue;
        }
        Object[] reply = unary(method, (Map<?, ?>) Json.parse(body));
        respond(out, (Integer) reply[0], (String) reply[1], responses % 2 == 0);
        if (closeAfterResponses > 0 && responses >= closeAfterResponses) return; // silently
      }
    } catch (IOException gone) {
      // the client closed
    }
  }

  private Object[] unary(String method, Map<?, ?> request) {
    if (!method.equals("Register") && !WORKER_ID.equals(request.get("workerId"))) {
      return new Object[] {404, "{\"code\":\"not_found\",\"message\":\"unknown worker '" + request.get("workerId") + "'\"}"};
    }
    switch (method) {
      case "Register":
        registers.add(request);
        return new Object[] {200, "{\"workerId\":\"" + WORKER_ID + "\",\"heartbeatIntervalMs\":\"200\"}"};
      case "Complete": {
        completeCalls.incrementAndGet();
        List<Object> receipts = new ArrayList<>();
        for (Object item : (List<?>) request.get("completions")) {
          Map<?, ?> completion = (Map<?, ?>) item;
          String taskId = (String) completion.get("taskId");
          events.add("complete:" + taskId);
          completions.put(taskId, completion);
          receipts.add(Map.of("taskId", taskId, "accepted", true));
        }
        return new Object[] {200, Json.write(Map.of("receipts", receipts))};
      }
      case "Log":
        for (Object item : (List<?>) request.get("lines")) {
          Map<?, ?> line = (Map<?, ?>) item;
          logs.add(line);
          events.add("log:" + line.get("taskId") + ":" + line.get("text"));
        }
        return new Object[] {200, "{}"};
      case "Heartbeat": {
        heartbeatCalls.incrementAndGet();
        List<String> lost = new ArrayList<>();
        for (Object item : (List<?>) request.get("tasks")) {
          Map<?, ?> task = (Map<?, ?>) item;
          progress.add(task);
          String taskId = (String) task.get("taskId");
          if (lose.remove(taskId)) lost.add(taskId);
        }
        return new Object[] {200, lost.isEmpty() ? "{}" : Json.write(Map.of("lostTaskIds", lost))};
      }
      case "Spawn":
        spawns.add(request);
        return spawnReply.apply(request);
      case "Children":
        childrenCalls.add(request);
        return childrenReply.apply(request);
      case "Drain":
        drainCalls.incrementAndGet();
        events.add("drain");
        drained = true;
        return new Object[] {200, "{}"};
      default:
        return new Object[] {404, "{\"code\":\"unimplemented\",\"message\":\"no method " + method + "\"}"};
    }
  }

  private void stream(OutputStream out, Map<String, String> headers, byte[] body) throws IOException {
    if (!"application/connect+json".equals(headers.get("content-type"))) {
      respond(out, 415, "{\"code\":\"invalid_argument\",\"message\":\"not connect+json\"}", false);
      return;
    }
    Envelope request = Envelope.read(new java.io.ByteArrayInputStream(body));
    Map<?, ?> message = (Map<?, ?>) Json.parse(request.data);
    if (!WORKER_ID.equals(message.get("workerId"))) throw new IOException("unknown worker in Assignments");
    out.write(
        ("HTTP/1.1 200 OK\r\ncontent-type: application/connect+json\r\nConnection: keep-alive\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n")
            .getBytes(StandardCharsets.ISO_8859_1));
    out.flush();
    while (true) {
      byte[] chunk;
      try {
        chunk = outbox.poll(20, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        return;
      }
      if (chunk == null) {
        if (drained && !ended && completions.keySet().containsAll(assigned)) end("{}");
        continue;
      }
      if (chunk == ABORT) return;
      if (chunk == TERMINATOR) {
        ended = true;
        out.write("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        return;
      }
      out.write((Integer.toHexString(chunk.length) + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.write(chunk);
      out.write("\r\n".getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
    }
  }

  private static void respond(OutputStream out, int status, String json, boolean chunked) throws IOException {
    byte[] body = json.getBytes(StandardCharsets.UTF_8);
    StringBuilder head = new StringBuilder("HTTP/1.1 ").append(status).append(status == 200 ? " OK" : " Error");
    head.append("\r\ncontent-type: application/json\r\nKeep-Alive: timeout=5\r\n");
    if (chunked) {
      head.append("Transfer-Encoding: chunked\r\n\r\n");
      int half = body.length / 2;
      head.append(Integer.toHexString(half)).append(";ext=1\r\n");
      out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
      out.write(body, 0, half);
      out.write(("\r\n" + Integer.toHexString(body.length - half) + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
      out.write(body, half, body.length - half);
      out.write("\r\n0\r\nx-trailer: 1\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
    } else {
      head.append("content-length: ").append(body.length).append("\r\n\r\n");
      out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
      out.write(body);
    }
    out.flush();
  }

  private static String line(InputStream in) throws IOException {
    StringBuilder line = new StringBuilder();
    while (true) {
      int b = in.read();
      if (b < 0) {
        if (line.length() == 0) return null;
        throw new EOFException();
      }
      if (b == '\n') break;
      line.append((char) b);
    }
    int end = line.length();
    if (end > 0 && line.charAt(end - 1) == '\r') line.setLength(end - 1);
    return line.toString();
  }
}
