package taskframe.test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import taskframe.Child;
import taskframe.ChildFailedException;
import taskframe.ChildStatus;
import taskframe.Json;
import taskframe.NonRetryableException;
import taskframe.Output;
import taskframe.RetryAfterException;
import taskframe.RunnerException;
import taskframe.SpawnedChild;
import taskframe.TaskContext;
import taskframe.TaskError;
import taskframe.TaskHandler;
import taskframe.Worker;
import taskframe.internal.ChunkedInputStream;
import taskframe.internal.Endpoint;
import taskframe.internal.Envelope;
import taskframe.internal.Failure;
import taskframe.internal.RunnerClient;

/** The Java SDK's tests, with no test framework: {@code bash sdks/java/test.sh}. Exit status 1 on a failure. */
public final class TestMain {
  private static int passed;
  private static final List<String> failures = new ArrayList<>();
  private static Path tmp;

  interface Body {
    void run() throws Exception;
  }

  public static void main(String[] args) throws Exception {
    tmp = Files.createTempDirectory("tf-java-");
    String only = args.length > 0 ? args[0] : "";
    List<Object[]> tests =
        List.of(
            new Object[] {"json: values round-trip", (Body) TestMain::jsonRoundTrip},
            new Object[] {"json: strings, unicode and escapes", (Body) TestMain::jsonStrings},
            new Object[] {"json: numbers", (Body) TestMain::jsonNumbers},
            new Object[] {"json: malformed input is refused", (Body) TestMain::jsonMalformed},
            new Object[] {"envelopes: encode and read back", (Body) TestMain::envelopes},
            new Object[] {"chunked: decoding, extensions, trailers, errors", (Body) TestMain::chunked},
            new Object[] {"chunked: envelopes split across chunks", (Body) TestMain::chunkedEnvelopes},
            new Object[] {"errors: mapping to HandlerError", (Body) TestMain::errorMapping},
            new Object[] {"results: encoding by type", (Body) TestMain::resultEncoding},
            new Object[] {"spawn: ChildSpec JSON", (Body) TestMain::childSpecs},
            new Object[] {"endpoint: URLs", (Body) TestMain::endpoints},
            new Object[] {"registration: @TaskHandler methods and handle()", (Body) TestMain::registration},
            new Object[] {"client: keep-alive, stale connections, Connect errors", (Body) TestMain::client},
            new Object[] {"worker: end to end over a unix socket", (Body) TestMain::endToEnd},
            new Object[] {"children: ChildFailedException", (Body) TestMain::childFailed},
            new Object[] {"children: children() and awaitChildren() against a fake sidecar", (Body) TestMain::awaitChildren},
            new Object[] {"worker: over TCP (TASKFRAME_RUNNER_URL style)", (Body) TestMain::overTcp},
            new Object[] {"worker: a stream that ends with an error or breaks", (Body) TestMain::streamFailures},
            new Object[] {"worker: SIGTERM drains and exits 0", (Body) TestMain::sigterm});
    for (Object[] test : tests) {
      String name = (String) test[0];
      if (!name.contains(only)) continue;
      long start = System.nanoTime();
      try {
        ((Body) test[1]).run();
        passed++;
        System.out.printf("ok    %s (%d ms)%n", name, (System.nanoTime() - start) / 1_000_000);
      } catch (Throwable e) {
        failures.add(name);
        System.out.printf("FAIL  %s: %s%n", name, e);
        e.printStackTrace(System.out);
      }
    }
    try (java.util.stream.Stream<Path> files = Files.walk(tmp)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
    }
    System.out.printf("%n%d passed, %d failed%n", passed, failures.size());
    if (!failures.isEmpty()) {
      System.out.println("failed: " + failures);
      System.exit(1);
    }
    System.exit(0);
  }

  // ---- assertions

  static void check(boolean condition, String message) {
    if (!condition) throw new AssertionError(message);
  }

  static void eq(Object expected, Object actual, String what) {
    boolean same =
        expected instanceof byte[] && actual instanceof byte[]
            ? Arrays.equals((byte[]) expected, (byte[]) actual)
            : java.util.Objects.equals(expected, actual);
    if (!same) throw new AssertionError(what + ": expected <" + show(expected) + "> but got <" + show(actual) + ">");
  }

  private static String show(Object value) {
    return value instanceof byte[] ? Arrays.toString((byte[]) value) : String.valueOf(value);
  }

  static <T extends Throwable> T throwsA(Class<T> type, Body body) {
    try {
      body.run();
    } catch (Throwable e) {
      if (type.isInstance(e)) return type.cast(e);
      throw new AssertionError("expected " + type.getSimpleName() + ", got " + e, e);
    }
    throw new AssertionError("expected " + type.getSimpleName() + ", nothing was thrown");
  }

  static void await(BooleanSupplier condition, long timeoutMs, String what) throws InterruptedException {
    long end = System.currentTimeMillis() + timeoutMs;
    while (!condition.getAsBoolean()) {
      if (System.currentTimeMillis() > end) throw new AssertionError("timed out waiting for " + what);
      Thread.sleep(10);
    }
  }

  static Map<String, Object> map(Object... pairs) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) m.put((String) pairs[i], pairs[i + 1]);
    return m;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  // ---- JSON

  static void jsonRoundTrip() {
    String text =
        "{\"a\":1,\"b\":[true,false,null,\"x\",{\"c\":[]},{}],\"d\":{\"e\":{\"f\":[1,[2,[3]]]}},\"g\":-2.5,\"h\":\"\"}";
    Object parsed = Json.parse(text);
    eq(text, Json.write(parsed), "write(parse(x))");
    Map<?, ?> m = (Map<?, ?>) parsed;
    eq(1L, m.get("a"), "an integer is a Long");
    eq(List.of("a", "b", "d", "g", "h"), new ArrayList<>(m.keySet()), "keys keep their order");
    eq(-2.5, m.get("g"), "a fraction is a Double");
    Object spaced = Json.parse(" \n\t{ \"k\" : [ 1 , 2 ] }\r\n ");
    eq(Map.of("k", List.of(1L, 2L)), spaced, "whitespace is allowed between tokens");
    eq("[1,2,3]", Json.write(new int[] {1, 2, 3}), "int[]");
    eq("[\"a\",null]", Json.write(new String[] {"a", null}), "String[]");
    eq("\"AQI=\"", Json.write(new byte[] {1, 2}), "byte[] as base64");
    eq("{\"k\":\"SECONDS\"}", Json.write(Map.of("k", TimeUnit.SECONDS)), "enums by name");
    throwsA(Json.JsonException.class, () -> Json.write(new Object()));
    throwsA(Json.JsonException.class, () -> Json.write(Double.NaN));
    StringBuilder deep = new StringBuilder();
    for (int i = 0; i < 500; i++) deep.append('[');
    for (int i = 0; i < 500; i++) deep.append(']');
    eq(deep.toString(), Json.write(Json.parse(deep.toString())), "500 levels of nesting");
  }

  static void jsonStrings() {
    eq("é😀", Json.parse("\"\\u00e9\\ud83d\\ude00\""), "\\u escapes, a surrogate pair included");
    eq("é😀", Json.parse("\"\\u00E9\\uD83D\\uDE00\""), "upper-case hex digits");
    eq("é😀", Json.parse(utf8("\"é😀\"")), "raw UTF-8");
    eq("\"/\\\b\f\n\r\t", Json.parse("\"\\\"\\/\\\\\\b\\f\\n\\r\\t\""), "every short escape");
    eq("\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f é😀\"", Json.write("\"\\\b\f\n\r\t\u0001\u001f é😀"), "written escapes");
    eq("\"\\ud800x\"", Json.write("\ud800x"), "a lone surrogate is escaped (it has no UTF-8)");
    String all;
    {
      StringBuilder b = new StringBuilder();
      for (char c = 0; c < 0x800; c++) if (!Character.isSurrogate(c)) b.append(c);
      b.append("😀𝄞中文");
      all = b.toString();
    }
    byte[] wire = utf8(Json.write(Map.of("s", all)));
    eq(all, ((Map<?, ?>) Json.parse(wire)).get("s"), "round trip through UTF-8 bytes");
    String escaped = "\"a\\u0000b\"";
    eq("a\u0000b", Json.parse(escaped), "NUL");
    eq(escaped, Json.write("a\u0000b"), "NUL written");
  }

  static void jsonNumbers() {
    eq(0L, Json.parse("0"), "0");
    eq(-12L, Json.parse("-12"), "-12");
    eq(9223372036854775807L, Json.parse("9223372036854775807"), "Long.MAX_VALUE");
    eq(new BigInteger("12345678901234567890123"), Json.parse("12345678901234567890123"), "beyond 64 bits");
    eq(1000.0, Json.parse("1e3"), "exponent");
    eq(0.25, Json.parse("2.5E-1"), "negative exponent");
    eq(-0.5, Json.parse("-0.5"), "-0.5");
    check(Json.parse("1e400") instanceof java.math.BigDecimal, "1e400 is kept as a BigDecimal");
    eq("3", Json.write(3.0), "an integral double as JavaScript writes it");
    eq("0.1", Json.write(0.1), "0.1");
    eq("1.0E20", Json.write(1e20), "a big double");
    eq("-7", Json.write(-7L), "a long");
    eq("12345678901234567890123", Json.write(new BigInteger("12345678901234567890123")), "a BigInteger");
    eq("[0.5,2]", Json.write(List.of(0.5f, 2f)), "floats");
  }

  static void jsonMalformed() {
    for (String bad :
        List.of(
            "", "{", "[1,]", "{\"a\":1,}", "{a:1}", "01", "1.", ".5", "-", "1e", "\"abc", "\"\\x\"", "\"\\u12\"",
            "\"\\u12g4\"", "tru", "nul", "[1 2]", "{\"a\" 1}", "1 2", "\"a\u0001b\"", "[\"\\\"]")) {
      throwsA(Json.JsonException.class, () -> Json.parse(bad));
    }
  }

  // ---- envelopes and chunked bodies

  static void envelopes() throws IOException {
    byte[] data = new byte[300];
    Arrays.fill(data, (byte) 'x');
    byte[] encoded = Envelope.encode(0, data);
    eq(305, encoded.length, "5 bytes of header");
    eq(new byte[] {0, 0, 0, 1, 44}, Arrays.copyOf(encoded, 5), "flags, then the length big-endian");
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    stream.writeBytes(encoded);
    stream.writeBytes(Envelope.encode(Envelope.FLAG_END_STREAM, utf8("{}")));
    InputStream in = new ByteArrayInputStream(stream.toByteArray());
    Envelope first = Envelope.read(in);
    eq(0, first.flags, "first flags");
    eq(data, first.data, "first data");
    Envelope second = Envelope.read(in);
    check(second.endOfStream(), "the second one ends the stream");
    eq("{}", new String(second.data, StandardCharsets.UTF_8), "end-of-stream JSON");
    eq(null, Envelope.read(in), "nothing more");
    byte[] big = new byte[70_000];
    big[69_999] = 7;
    eq(big, Envelope.read(new ByteArrayInputStream(Envelope.encode(0, big))).data, "a length over 16 bits");
    throwsA(EOFException.class, () -> Envelope.read(new ByteArrayInputStream(Arrays.copyOf(encoded, 100))));
    throwsA(EOFException.class, () -> Envelope.read(new ByteArrayInputStream(new byte[] {0, 0, 0})));
  }

  static void chunked() throws IOException {
    String body = "4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    ByteArrayInputStream raw = new ByteArrayInputStream(body.getBytes(StandardCharsets.ISO_8859_1));
    ChunkedInputStream in = new ChunkedInputStream(raw);
    eq("Wikipedia in\r\n\r\nchunks.", new String(in.readAllBytes(), StandardCharsets.ISO_8859_1), "decoded");
    check(in.ended(), "the last chunk was read");
    eq("NEXT", new String(raw.readAllBytes(), StandardCharsets.ISO_8859_1), "what follows the body is left alone");
    ChunkedInputStream lf = new ChunkedInputStream(new ByteArrayInputStream(utf8("a\nabcdefghij\n0\n\n")));
    eq("abcdefghij", new String(lf.readAllBytes(), StandardCharsets.UTF_8), "bare LF line ends, hex size");
    throwsA(IOException.class, () -> new ChunkedInputStream(new ByteArrayInputStream(utf8("zz\r\n"))).readAllBytes());
    throwsA(IOException.class, () -> new ChunkedInputStream(new ByteArrayInputStream(utf8("3\r\nabcX\r\n"))).readAllBytes());
    throwsA(EOFException.class, () -> new ChunkedInputStream(new ByteArrayInputStream(utf8("9\r\nabc"))).readAllBytes());
  }

  static void chunkedEnvelopes() throws IOException {
    byte[] one = Envelope.encode(0, utf8("{\"assignments\":[{\"taskId\":\"é\"}]}"));
    byte[] two = Envelope.encode(0, utf8("{\"cancels\":[]}"));
    byte[] end = Envelope.encode(Envelope.FLAG_END_STREAM, utf8("{\"error\":{\"code\":\"internal\",\"message\":\"m\"}}"));
    ByteArrayOutputStream wire = new ByteArrayOutputStream();
    // the first envelope over three chunks; the second and the end in one chunk
    int[][] pieces = {{0, 2}, {2, 9}, {9, one.length}};
    for (int[] p : pieces) writeChunk(wire, Arrays.copyOfRange(one, p[0], p[1]));
    byte[] together = new byte[two.length + end.length];
    System.arraycopy(two, 0, together, 0, two.length);
    System.arraycopy(end, 0, together, two.length, end.length);
    writeChunk(wire, together);
    wire.writeBytes(utf8("0\r\n\r\n"));
    InputStream in = new ChunkedInputStream(new ByteArrayInputStream(wire.toByteArray()));
    eq(Map.of("assignments", List.of(Map.of("taskId", "é"))), Json.parse(Envelope.read(in).data), "first");
    eq(Map.of("cancels", List.of()), Json.parse(Envelope.read(in).data), "second");
    Envelope last = Envelope.read(in);
    check(last.endOfStream(), "end of stream");
    RunnerException error = RunnerClient.errorOf("Assignments", (Map<?, ?>) ((Map<?, ?>) Json.parse(last.data)).get("error"));
    eq("internal", error.code(), "the end's error code");
    eq(null, Envelope.read(in), "the body is over");
  }

  private static void writeChunk(ByteArrayOutputStream wire, byte[] chunk) {
    wire.writeBytes(utf8(Integer.toHexString(chunk.length) + "\r\n"));
    wire.writeBytes(chunk);
    wire.writeBytes(utf8("\r\n"));
  }

  // ---- errors and results

  static class QuotaExceeded extends RuntimeException {
    private static final long serialVersionUID = 1L;

    QuotaExceeded(String message) {
      super(message);
    }
  }

  static void errorMapping() {
    eq(new Failure("IllegalStateException", "bad", false, 0), Failure.of(new IllegalStateException("bad")), "plain");
    eq(new Failure("QuotaExceeded", "q", false, 0), Failure.of(new QuotaExceeded("q")), "a custom class");
    eq(new Failure("NullPointerException", "", false, 0), Failure.of(new NullPointerException()), "no message");
    eq(
        new Failure("NonRetryableException", "never", true, 0),
        Failure.of(new NonRetryableException("never")),
        "non-retryable");
    eq(
        new Failure("RetryAfterException", "retry after 1500 ms", false, 1500),
        Failure.of(new RetryAfterException(Duration.ofMillis(1500))),
        "retry after");
    eq(
        new Failure("RetryAfterException", "busy", false, 2000),
        Failure.of(new RetryAfterException(Duration.ofSeconds(2), "busy")),
        "retry after seconds");
    eq(new Failure("ValueError", "v", false, 0), Failure.of(new TaskError("ValueError", "v")), "TaskError's type");
    eq(
        new Failure("ValueError", "v", false, 0),
        Failure.of(new InvocationTargetException(new TaskError("ValueError", "v"))),
        "InvocationTargetException is unwrapped");
    eq(
        new Failure("NonRetryableException", "x", true, 0),
        Failure.of(new java.lang.reflect.UndeclaredThrowableException(new InvocationTargetException(new NonRetryableException("x")))),
        "nested wrappers");
    eq("IOException", Failure.of(new java.io.IOException("disk") {}).type(), "an anonymous class: its superclass");
    eq(true, Failure.of(new NonRetryableException("sub") {}).nonRetryable(), "a subclass of NonRetryableException");
    StringBuilder json = new StringBuilder();
    new Failure("T", "m \"q\"", true, 300).writeJson(json);
    eq(map("type", "T", "message", "m \"q\"", "nonRetryable", true, "retryAfterMs", "300"), Json.parse(json.toString()), "HandlerError JSON");
    json.setLength(0);
    new Failure("T", "", false, 0).writeJson(json);
    eq("{\"type\":\"T\"}", json.toString(), "defaults are omitted");
  }

  static void resultEncoding() {
    Output bytes = Output.from(new byte[] {0, (byte) 255});
    eq(new byte[] {0, (byte) 255}, bytes.data(), "bytes as is");
    eq("application/octet-stream", bytes.contentType(), "bytes type");
    Output text = Output.from("héllo");
    eq(utf8("héllo"), text.data(), "text as UTF-8");
    eq("text/plain; charset=utf-8", text.contentType(), "text type");
    Output none = Output.from(null);
    eq(0, none.data().length, "null: empty");
    eq("", none.contentType(), "null: no type");
    Output json = Output.from(map("n", 1, "l", List.of(true, "é")));
    eq("{\"n\":1,\"l\":[true,\"é\"]}", new String(json.data(), StandardCharsets.UTF_8), "a map as JSON");
    eq("application/json", json.contentType(), "JSON type");
    eq("42", new String(Output.from(42).data(), StandardCharsets.UTF_8), "a number as JSON");
    eq("false", new String(Output.from(false).data(), StandardCharsets.UTF_8), "a boolean as JSON");
    eq("[1,2]", new String(Output.from(List.of(1, 2)).data(), StandardCharsets.UTF_8), "a list as JSON");
    eq("\"s\"", new String(Output.json("s").data(), StandardCharsets.UTF_8), "Output.json of a string");
    eq("image/png", Output.from(Output.of(new byte[] {1}, "image/png")).contentType(), "an Output as is");
    eq(new byte[] {3, 4}, Output.from(java.nio.ByteBuffer.wrap(new byte[] {9, 3, 4}, 1, 2)).data(), "a ByteBuffer's remaining bytes");
    throwsA(Json.JsonException.class, () -> Output.from(new Object()));
  }

  static void childSpecs() {
    String specs =
        Child.specJson(
            List.of(
                Child.handler("a", "resize").input(map("w", 64)).needs("b").retries(2).timeout(Duration.ofSeconds(3)),
                Child.handler("t", "shout").input("hi"),
                Child.handler("j", "x").inputJson("a string as JSON"),
                Child.exec("b", "/bin/echo", "one", "two")));
    Object parsed = Json.parse(specs);
    eq(
        List.of(
            map(
                "key", "a",
                "spec",
                    map(
                        "name", "a",
                        "handler", map("handler", "resize", "input", Base64.getEncoder().encodeToString(utf8("{\"w\":64}")), "contentType", "application/json"),
                        "retry", map("retries", 2L),
                        "timeoutMs", "3000",
                        "needs", List.of("b"))),
            map(
                "key", "t",
                "spec",
                    map(
                        "name", "t",
                        "handler", map("handler", "shout", "input", Base64.getEncoder().encodeToString(utf8("hi")), "contentType", "text/plain; charset=utf-8"))),
            map(
                "key", "j",
                "spec",
                    map(
                        "name", "j",
                        "handler", map("handler", "x", "input", Base64.getEncoder().encodeToString(utf8("\"a string as JSON\"")), "contentType", "application/json"))),
            map("key", "b", "spec", map("name", "b", "exec", map("command", "/bin/echo", "args", List.of("one", "two"))))),
        parsed,
        "ChildSpec JSON");
    throwsA(IllegalArgumentException.class, () -> Child.handler("", "x"));
  }

  static void endpoints() {
    Endpoint tcp = Endpoint.url("http://127.0.0.1:7071");
    eq("127.0.0.1:7071", tcp.host(), "host header");
    eq("/taskframe.v1.RunnerService/Register", tcp.path("Register"), "path");
    eq("/base/taskframe.v1.RunnerService/Log", Endpoint.url("http://localhost:80/base/").path("Log"), "a base path");
    throwsA(IllegalArgumentException.class, () -> Endpoint.url("https://example.com"));
    eq("/taskframe.v1.RunnerService/Drain", Endpoint.unix("/tmp/x.sock").path("Drain"), "unix path");
  }

  // ---- registration

  public static class Annotated {
    @TaskHandler("a.bytes")
    public byte[] bytes(TaskContext ctx) {
      return ctx.input();
    }

    @TaskHandler("a.object")
    Object object(TaskContext ctx) {
      return Map.of("attempt", ctx.attempt());
    }

    @TaskHandler("a.static")
    public static String statik(TaskContext ctx) {
      return "static";
    }

    @TaskHandler("a.fails")
    public Object fails(TaskContext ctx) throws java.io.IOException {
      throw new java.io.IOException("disk full");
    }

    public Object notAHandler(TaskContext ctx) {
      return null;
    }
  }

  public static class BadSignature {
    @TaskHandler("bad")
    public Object bad(String notAContext) {
      return null;
    }
  }

  static void registration() {
    Worker worker = new Worker(Worker.options().concurrency(2));
    worker.register(new Annotated());
    worker.handle("f", ctx -> "fn");
    eq(List.of("a.bytes", "a.object", "a.static", "a.fails", "f").stream().sorted().toList(), worker.handlers().stream().sorted().toList(), "handlers");
    throwsA(IllegalArgumentException.class, () -> worker.handle("f", ctx -> null));
    throwsA(IllegalArgumentException.class, () -> new Worker().register(new BadSignature()));
    throwsA(IllegalArgumentException.class, () -> new Worker().register(new Object()));
    throwsA(IllegalStateException.class, () -> new Worker().run());
    throwsA(IllegalArgumentException.class, () -> Worker.options().concurrency(0));
  }

  // ---- the HTTP client against the fake sidecar

  static void client() throws Exception {
    Path socket = tmp.resolve("client.sock");
    ScheduledThreadPoolExecutor timers = new ScheduledThreadPoolExecutor(1);
    try (FakeSidecar fake = FakeSidecar.unix(socket)) {
      RunnerClient client = new RunnerClient(Endpoint.unix(socket.toString()), timers, 5_000);
      for (int i = 0; i < 6; i++) {
        Map<String, Object> response = client.call("Register", "{\"handlers\":[\"x\"]}");
        eq(FakeSidecar.WORKER_ID, response.get("workerId"), "workerId (Content-Length and chunked answers)");
      }
      eq(1, fake.connections.get(), "one keep-alive connection for sequential calls");
      fake.closeAfterResponses = 2; // the server drops connections without notice: a reused one fails before answering
      for (int i = 0; i < 7; i++) client.call("Register", "{}");
      check(fake.connections.get() >= 4, "reconnected after stale connections (" + fake.connections.get() + ")");
      RunnerException notFound = throwsA(RunnerException.class, () -> client.call("Drain", "{\"workerId\":\"nope\"}"));
      eq("not_found", notFound.code(), "a Connect error's code");
      check(notFound.getMessage().contains("unknown worker 'nope'"), "and its message: " + notFound.getMessage());
      eq("unimplemented", throwsA(RunnerException.class, () -> client.call("Nope", "{\"workerId\":\"w-1\"}")).code(), "404");
      client.close();
    } finally {
      timers.shutdownNow();
    }
    throwsA(IOException.class, () -> new RunnerClient(Endpoint.unix(tmp.resolve("none.sock").toString()), new ScheduledThreadPoolExecutor(1), 1000).call("Register", "{}"));
  }

  // ---- the worker end to end

  public static class Handlers {
    @TaskHandler("upper")
    public String upper(TaskContext ctx) {
      return ctx.text().toUpperCase();
    }

    @TaskHandler("json")
    public Object json(TaskContext ctx) {
      Map<?, ?> in = (Map<?, ?>) ctx.json();
      return map("n", in.get("n"), "list", List.of(1, "é😀"), "run", ctx.runId(), "name", ctx.taskName());
    }
  }

  static void endToEnd() throws Exception {
    Path socket = tmp.resolve("e2e.sock");
    try (FakeSidecar fake = FakeSidecar.unix(socket)) {
      fake.spawnReply =
          request ->
              fake.spawns.size() == 1
                  ? new Object[] {200, "{\"children\":[{\"key\":\"a\",\"taskId\":\"c-1\",\"name\":\"p/a\"},{\"key\":\"b\",\"taskId\":\"c-2\",\"name\":\"p/b\",\"existing\":true}]}"}
                  : new Object[] {501, "{\"code\":\"unimplemented\",\"message\":\"this sidecar has no hub to spawn children on\"}"};
      Worker worker = new Worker(Worker.options().socket(socket.toString()).concurrency(4).name("e2e").label("team", "x").handleSignals(false));
      worker.register(new Handlers());
      worker.handle("echo", ctx -> Output.of(ctx.input(), ctx.contentType()));
      worker.handle("bytes", ctx -> new byte[] {0, 1, 2, (byte) 255});
      worker.handle("nothing", ctx -> null);
      worker.handle("boom", ctx -> {
        throw new IllegalStateException("bad state");
      });
      worker.handle("never", ctx -> {
        throw new NonRetryableException("never again");
      });
      worker.handle("later", ctx -> {
        throw new RetryAfterException(Duration.ofMillis(1500));
      });
      worker.handle("custom", ctx -> {
        throw new TaskError("QuotaExceeded", "slow down");
      });
      worker.handle("logs", ctx -> {
        ctx.log("line 1");
        ctx.logStderr("line 2 ✓");
        ctx.heartbeat(0.5, "half");
        return "logged";
      });
      worker.handle("wait", ctx -> {
        ctx.awaitCancelled();
        throw new TaskError("Cancelled", ctx.cancelReason());
      });
      worker.handle("sleepy", ctx -> {
        Thread.sleep(60_000);
        return "woke";
      });
      worker.handle("spawn", ctx -> {
        List<SpawnedChild> children =
            ctx.spawn(List.of(Child.handler("a", "echo").inputJson(map("x", 1)).needs("b"), Child.exec("b", "/bin/true")));
        try {
          ctx.spawn(List.of(Child.handler("c", "echo")));
          return "second spawn succeeded";
        } catch (RunnerException e) {
          return map("children", children.stream().map(c -> List.of(c.key(), c.taskId(), c.name(), c.existing())).toList(), "then", e.code());
        }
      });
      worker.handle("info", ctx -> map(
          "deadline", ctx.deadline().map(java.time.Instant::toEpochMilli).orElse(0L),
          "waited", ctx.awaitCancelled(Duration.ofMillis(10)),
          "cancelled", ctx.isCancelled(),
          "reason", ctx.cancelReason(),
          "handler", ctx.handler(),
          "type", ctx.contentType(),
          "text", ctx.text()));
      AtomicReference<Throwable> runError = new AtomicReference<>();
      Thread runner = new Thread(() -> {
        try {
          worker.run();
        } catch (Throwable e) {
          runError.set(e);
        }
      });
      runner.start();
      await(() -> fake.registers.size() == 1, 10_000, "Register");
      Map<?, ?> registered = fake.registers.get(0);
      eq("java", registered.get("language"), "language");
      eq(4L, registered.get("maxConcurrency"), "maxConcurrency");
      eq("e2e", registered.get("name"), "name");
      eq(Map.of("team", "x"), registered.get("labels"), "labels");
      check(((List<?>) registered.get("handlers")).containsAll(List.of("upper", "json", "echo", "spawn")), "handlers: " + registered.get("handlers"));

      byte[] binary = new byte[256];
      for (int i = 0; i < 256; i++) binary[i] = (byte) i;
      Map<String, Object> deadline = FakeSidecar.assignment("t-deadline", "wait", new byte[0], "");
      deadline.put("deadlineUnixMs", String.valueOf(System.currentTimeMillis() + 300));
      long infoDeadline = System.currentTimeMillis() + 60_000;
      Map<String, Object> info = FakeSidecar.assignment("t-info", "info", utf8("ünï"), "text/x-special");
      info.put("deadlineUnixMs", infoDeadline); // as a JSON number this time
      fake.sendSplit(
          FakeSidecar.assignments(
              List.of(
                  info,
                  FakeSidecar.assignment("t-echo", "echo", binary, "application/x-bin"),
                  FakeSidecar.assignment("t-upper", "upper", utf8("héllo wörld"), "text/plain; charset=utf-8"),
                  FakeSidecar.assignment("t-json", "json", utf8("{\"n\":7}"), "application/json"),
                  FakeSidecar.assignment("t-bytes", "bytes", new byte[0], ""),
                  FakeSidecar.assignment("t-nothing", "nothing", new byte[0], ""),
                  FakeSidecar.assignment("t-boom", "boom", new byte[0], ""),
                  FakeSidecar.assignment("t-never", "never", new byte[0], ""),
                  FakeSidecar.assignment("t-later", "later", new byte[0], ""),
                  FakeSidecar.assignment("t-custom", "custom", new byte[0], ""),
                  FakeSidecar.assignment("t-logs", "logs", new byte[0], ""),
                  FakeSidecar.assignment("t-spawn", "spawn", new byte[0], ""),
                  FakeSidecar.assignment("t-unknown", "nope", new byte[0], ""),
                  deadline)));
      List<Map<String, Object>> many = new ArrayList<>();
      for (int i = 0; i < 300; i++) many.add(FakeSidecar.assignment("m-" + i, "echo", utf8("payload " + i), "text/plain"));
      fake.sendTogether(
          List.of(
              FakeSidecar.assignments(
                  List.of(
                      FakeSidecar.assignment("t-wait", "wait", new byte[0], ""),
                      FakeSidecar.assignment("t-sleepy", "sleepy", new byte[0], ""),
                      FakeSidecar.assignment("t-lost", "wait", new byte[0], ""))),
              FakeSidecar.assignments(many)));
      await(() -> fake.completions.size() >= 314, 20_000, "the first completions (" + fake.completions.size() + ")");

      Map<String, Map<?, ?>> done = fake.completions;
      Map<?, ?> echo = done.get("t-echo");
      eq(binary, Base64.getDecoder().decode((String) echo.get("output")), "echo: the bytes");
      eq("application/x-bin", echo.get("outputContentType"), "echo: the content type");
      eq(1L, echo.get("attempt"), "the identity: attempt");
      eq("4294967297", echo.get("leaseEpoch"), "the identity: lease epoch as a string, as received");
      eq("HÉLLO WÖRLD", text(done.get("t-upper")), "a String result");
      eq("text/plain; charset=utf-8", done.get("t-upper").get("outputContentType"), "its type");
      eq(
          map("n", 7L, "list", List.of(1L, "é😀"), "run", "run-1", "name", "name-t-json"),
          Json.parse(text(done.get("t-json"))),
          "a Map result as JSON");
      eq("application/json", done.get("t-json").get("outputContentType"), "JSON type");
      eq(new byte[] {0, 1, 2, (byte) 255}, Base64.getDecoder().decode((String) done.get("t-bytes").get("output")), "byte[]");
      eq("application/octet-stream", done.get("t-bytes").get("outputContentType"), "byte[] type");
      eq("", done.get("t-nothing").get("output"), "null: empty output");
      eq(null, done.get("t-nothing").get("outputContentType"), "null: no content type");
      eq(map("type", "IllegalStateException", "message", "bad state"), done.get("t-boom").get("error"), "a plain exception");
      eq(map("type", "NonRetryableException", "message", "never again", "nonRetryable", true), done.get("t-never").get("error"), "non-retryable");
      eq(map("type", "RetryAfterException", "message", "retry after 1500 ms", "retryAfterMs", "1500"), done.get("t-later").get("error"), "retry after");
      eq(map("type", "QuotaExceeded", "message", "slow down"), done.get("t-custom").get("error"), "TaskError");
      eq("UnknownHandler", ((Map<?, ?>) done.get("t-unknown").get("error")).get("type"), "an unknown handler");
      eq(map("type", "Cancelled", "message", "deadline exceeded"), done.get("t-deadline").get("error"), "the deadline cancels the handler");
      eq("logged", text(done.get("t-logs")), "the logging handler's result");
      eq(
          map("deadline", infoDeadline, "waited", false, "cancelled", false, "reason", null, "handler", "info", "type", "text/x-special", "text", "ünï"),
          Json.parse(text(done.get("t-info"))),
          "the context's accessors");
      for (int i = 0; i < 300; i++) eq("payload " + i, text(done.get("m-" + i)), "many: m-" + i);
      check(fake.completeCalls.get() < 100, "completions are batched: " + fake.completeCalls.get() + " Complete calls for 314");

      // logs before completions, with stream and text
      int line1 = fake.events.indexOf("log:t-logs:line 1");
      int line2 = fake.events.indexOf("log:t-logs:line 2 ✓");
      int completed = fake.events.indexOf("complete:t-logs");
      check(line1 >= 0 && line2 > line1 && completed > line2, "log lines arrive before the completion: " + line1 + ", " + line2 + ", " + completed);
      Map<?, ?> stderr = fake.logs.stream().filter(l -> "line 2 ✓".equals(l.get("text"))).findFirst().orElseThrow();
      eq("LOG_STREAM_STDERR", stderr.get("stream"), "logStderr's stream");
      eq("4294967297", stderr.get("leaseEpoch"), "a log line's identity");
      check(Long.parseLong((String) stderr.get("atUnixMs")) > 1_600_000_000_000L, "atUnixMs");
      eq(
          "LOG_STREAM_STDOUT",
          fake.logs.stream().filter(l -> "line 1".equals(l.get("text"))).findFirst().orElseThrow().get("stream"),
          "log's stream");
      check(fake.progress.stream().anyMatch(p -> "t-logs".equals(p.get("taskId")) && Double.valueOf(0.5).equals(p.get("progress")) && "half".equals(p.get("message"))), "heartbeat(0.5, half) was sent");

      // spawn: the request, then the refusal
      Map<?, ?> spawnRequest = fake.spawns.get(0);
      eq("t-spawn", spawnRequest.get("taskId"), "Spawn names the parent");
      eq("4294967297", spawnRequest.get("leaseEpoch"), "with its lease epoch");
      eq(2, ((List<?>) spawnRequest.get("children")).size(), "two children");
      eq(
          map("children", List.of(List.of("a", "c-1", "p/a", false), List.of("b", "c-2", "p/b", true)), "then", "unimplemented"),
          Json.parse(text(done.get("t-spawn"))),
          "spawned children, then an unimplemented Spawn raises RunnerException");

      // periodic heartbeats for the running ones; one of them is lost
      fake.lose.add("t-lost");
      await(() -> done.containsKey("t-lost"), 5_000, "the lost task's completion");
      eq(map("type", "Cancelled", "message", "the task's lease was lost"), done.get("t-lost").get("error"), "lostTaskIds cancel the handler");
      check(fake.progress.stream().anyMatch(p -> "t-wait".equals(p.get("taskId")) && Double.valueOf(-1.0).equals(((Number) p.get("progress")).doubleValue())), "periodic heartbeats carry the running tasks");

      // cancels: a waiting handler, and an interrupted sleep
      fake.send(FakeSidecar.cancel("t-wait", "run cancelled"));
      fake.send(FakeSidecar.cancel("t-sleepy", "run cancelled"));
      await(() -> done.containsKey("t-wait") && done.containsKey("t-sleepy"), 5_000, "the cancelled tasks' completions");
      eq(map("type", "Cancelled", "message", "run cancelled"), done.get("t-wait").get("error"), "awaitCancelled wakes with the reason");
      eq(map("type", "Cancelled", "message", "run cancelled"), done.get("t-sleepy").get("error"), "an interrupted sleep is reported as Cancelled");

      // drain: the stream ends once everything is reported, and run() returns
      fake.send(FakeSidecar.assignments(List.of(FakeSidecar.assignment("t-last", "upper", utf8("last"), ""))));
      worker.stop();
      runner.join(10_000);
      check(!runner.isAlive(), "run() returned after the drain");
      eq(null, runError.get(), "run() ended without an error");
      eq(1, fake.drainCalls.get(), "one Drain");
      eq("LAST", text(done.get("t-last")), "a task in hand at the drain is finished and reported");
      eq(FakeSidecar.WORKER_ID, worker.workerId(), "workerId");
    }
  }

  private static String text(Map<?, ?> completion) {
    check(completion != null, "a completion");
    check(completion.get("error") == null, "no error: " + completion.get("error"));
    return new String(Base64.getDecoder().decode((String) completion.get("output")), StandardCharsets.UTF_8);
  }

  // ---- children

  static ChildStatus status(String key, String state, boolean subtreeFailed, String detail) {
    return new ChildStatus(key, "c-" + key, "parent/" + key, state, 1, true, subtreeFailed, new byte[0], "", detail);
  }

  static void childFailed() {
    ChildFailedException one = new ChildFailedException(List.of(status("a", "TASK_STATE_FAILED", false, "child breaks")));
    eq("a child did not succeed: parent/a TASK_STATE_FAILED (child breaks)", one.getMessage(), "one failed child");
    check(one instanceof NonRetryableException, "a NonRetryableException");
    eq(new Failure("ChildFailedException", one.getMessage(), true, 0), Failure.of(one), "reported as ChildFailedException, non-retryable");
    ChildFailedException two =
        new ChildFailedException(
            List.of(status("a", "TASK_STATE_SKIPPED", false, ""), status("b", "TASK_STATE_SUCCEEDED", true, "")));
    eq(
        "2 children did not succeed: parent/a TASK_STATE_SKIPPED; parent/b TASK_STATE_SUCCEEDED, but a task it spawned did not",
        two.getMessage(),
        "two failed children, one of them by its subtree");
    eq(List.of("a", "b"), two.failed().stream().map(ChildStatus::key).toList(), "failed()");
    check(!status("b", "TASK_STATE_SUCCEEDED", true, "").succeeded(), "a failed subtree is not a success");
    check(status("b", "TASK_STATE_SUCCEEDED", false, "").succeeded(), "succeeded()");
  }

  /** A ChildStatus message as the sidecar writes it (proto3 JSON: defaults omitted). */
  static Map<String, Object> childJson(String key, Object state, boolean settled, Object... more) {
    Map<String, Object> child = map("key", key, "taskId", "c-" + key, "name", "parent/" + key, "state", state, "attempt", 1);
    if (settled) child.put("settled", true);
    for (int i = 0; i < more.length; i += 2) child.put((String) more[i], more[i + 1]);
    return child;
  }

  static void awaitChildren() throws Exception {
    Path socket = tmp.resolve("children.sock");
    try (FakeSidecar fake = FakeSidecar.unix(socket)) {
      Map<String, Integer> calls = new ConcurrentHashMap<>();
      String x = Base64.getEncoder().encodeToString(utf8("\"x\""));
      String y = Base64.getEncoder().encodeToString(utf8("y"));
      fake.childrenReply =
          request -> {
            String taskId = (String) request.get("taskId");
            int call = calls.merge(taskId, 1, Integer::sum);
            List<Map<String, Object>> children;
            switch (taskId) {
              case "t-ok":
                children =
                    call <= 2
                        ? List.of(childJson("a", "TASK_STATE_RUNNING", false), childJson("b", "TASK_STATE_SUCCEEDED", false))
                        : List.of(
                            childJson("a", "TASK_STATE_SUCCEEDED", true, "output", x, "outputContentType", "application/json"),
                            childJson("b", "TASK_STATE_SUCCEEDED", true, "output", y, "outputContentType", "text/plain"));
                break;
              case "t-fail":
              case "t-lenient":
                children =
                    List.of(
                        childJson("a", "TASK_STATE_FAILED", true, "detail", "child breaks"),
                        childJson("b", "TASK_STATE_SUCCEEDED", true, "output", y));
                break;
              case "t-subtree":
                children = List.of(childJson("a", "TASK_STATE_SUCCEEDED", true, "subtreeFailed", true, "output", y));
                break;
              case "t-keys":
                // a never settles; b has; a grandchild of c failed
                children =
                    List.of(
                        childJson("a", "TASK_STATE_RUNNING", false),
                        childJson("b", "TASK_STATE_SUCCEEDED", true, "output", y),
                        childJson("c", 4, true, "subtreeFailed", true));
                break;
              case "t-cancel":
                children = List.of(childJson("a", "TASK_STATE_RUNNING", false));
                break;
              default:
                return new Object[] {501, "{\"code\":\"unimplemented\",\"message\":\"no hub\"}"};
            }
            List<?> keys = request.get("keys") instanceof List ? (List<?>) request.get("keys") : List.of();
            List<Map<String, Object>> chosen = children.stream().filter(c -> keys.isEmpty() || keys.contains(c.get("key"))).toList();
            return new Object[] {200, Json.write(map("children", chosen))};
          };
      Worker worker = new Worker(Worker.options().socket(socket.toString()).concurrency(8).handleSignals(false));
      worker.handle("await", ctx -> {
        List<Object> result = new ArrayList<>();
        for (ChildStatus c : ctx.awaitChildren()) {
          result.add(List.of(c.key(), c.taskId(), c.name(), c.state(), c.attempt(), c.settled(), c.text(), c.outputContentType()));
        }
        return result;
      });
      worker.handle("lenient", ctx -> ctx.awaitChildren(List.of(), false).stream().map(c -> List.of(c.key(), c.state(), c.succeeded(), c.detail())).toList());
      worker.handle("keys", ctx -> {
        List<ChildStatus> all = ctx.children();
        List<ChildStatus> some = ctx.children(List.of("c", "a"));
        List<ChildStatus> awaited = ctx.awaitChildren(List.of("b"), true);
        ChildFailedException failed = null;
        try {
          ctx.awaitChildren(List.of("c"), true);
        } catch (ChildFailedException e) {
          failed = e;
        }
        return map(
            "all", all.stream().map(ChildStatus::key).toList(),
            "some", some.stream().map(ChildStatus::key).toList(),
            "awaited", awaited.stream().map(c -> c.key() + "=" + c.text()).toList(),
            "c", failed == null ? "no exception" : failed.getMessage());
      });
      worker.handle("unimplemented", ctx -> {
        try {
          ctx.awaitChildren();
          return "awaited";
        } catch (RunnerException e) {
          return e.code();
        }
      });
      Thread runner = new Thread(worker::run);
      runner.start();
      await(() -> fake.registers.size() == 1, 10_000, "Register");
      long start = System.nanoTime();
      fake.send(
          FakeSidecar.assignments(
              List.of(
                  FakeSidecar.assignment("t-ok", "await", new byte[0], ""),
                  FakeSidecar.assignment("t-fail", "await", new byte[0], ""),
                  FakeSidecar.assignment("t-subtree", "await", new byte[0], ""),
                  FakeSidecar.assignment("t-lenient", "lenient", new byte[0], ""),
                  FakeSidecar.assignment("t-keys", "keys", new byte[0], ""),
                  FakeSidecar.assignment("t-cancel", "await", new byte[0], ""),
                  FakeSidecar.assignment("t-none", "unimplemented", new byte[0], ""))));
      Map<String, Map<?, ?>> done = fake.completions;
      await(() -> done.containsKey("t-ok"), 10_000, "the awaiting task");
      long elapsedMs = (System.nanoTime() - start) / 1_000_000;

      // success: polled until settled (20 ms, then 40 ms), the outputs decoded
      eq(
          List.of(
              List.of("a", "c-a", "parent/a", "TASK_STATE_SUCCEEDED", 1L, true, "\"x\"", "application/json"),
              List.of("b", "c-b", "parent/b", "TASK_STATE_SUCCEEDED", 1L, true, "y", "text/plain")),
          Json.parse(text(done.get("t-ok"))),
          "awaitChildren returns every child, settled, in spawn order");
      eq(3, calls.get("t-ok"), "Children was polled until every child settled");
      check(elapsedMs >= 60, "it waited 20 ms, then 40 ms, between polls (" + elapsedMs + " ms)");
      Map<?, ?> first = fake.childrenCalls.stream().filter(r -> "t-ok".equals(r.get("taskId"))).findFirst().orElseThrow();
      eq(map("workerId", FakeSidecar.WORKER_ID, "taskId", "t-ok", "attempt", 1L, "leaseEpoch", "4294967297"), first, "the request: the task's identity, no keys");

      // failure: non-retryable, naming the child
      await(() -> done.containsKey("t-fail") && done.containsKey("t-subtree"), 5_000, "the failed awaits");
      eq(
          map("type", "ChildFailedException", "message", "a child did not succeed: parent/a TASK_STATE_FAILED (child breaks)", "nonRetryable", true),
          done.get("t-fail").get("error"),
          "a failed child fails the parent for good, naming it");
      eq(
          map("type", "ChildFailedException", "message", "a child did not succeed: parent/a TASK_STATE_SUCCEEDED, but a task it spawned did not", "nonRetryable", true),
          done.get("t-subtree").get("error"),
          "a failed grandchild too");
      eq(
          List.of(List.of("a", "TASK_STATE_FAILED", false, "child breaks"), List.of("b", "TASK_STATE_SUCCEEDED", true, "")),
          Json.parse(text(done.get("t-lenient"))),
          "failOnError false returns them all");

      // keys: only those are asked for, and awaited
      await(() -> done.containsKey("t-keys"), 5_000, "the keys task");
      eq(
          map(
              "all", List.of("a", "b", "c"),
              "some", List.of("a", "c"),
              "awaited", List.of("b=y"),
              "c", "a child did not succeed: parent/c TASK_STATE_SUCCEEDED, but a task it spawned did not"),
          Json.parse(text(done.get("t-keys"))),
          "children(keys) and awaitChildren(keys) see those children only (a numeric state is named)");
      List<?> keyRequests = fake.childrenCalls.stream().filter(r -> "t-keys".equals(r.get("taskId"))).map(r -> r.get("keys")).toList();
      eq(Arrays.asList(null, List.of("c", "a"), List.of("b"), List.of("c")), keyRequests, "the keys sent");

      // no hub: unimplemented
      await(() -> done.containsKey("t-none"), 5_000, "the unimplemented task");
      eq("unimplemented", text(done.get("t-none")), "Children unimplemented raises RunnerException");

      // cancelled while awaiting
      check(!done.containsKey("t-cancel"), "a child that never settles keeps its parent waiting");
      fake.send(FakeSidecar.cancel("t-cancel", "run cancelled"));
      await(() -> done.containsKey("t-cancel"), 5_000, "the cancelled await");
      eq(map("type", "Cancelled", "message", "run cancelled"), done.get("t-cancel").get("error"), "a cancel ends the await as Cancelled");
      int polls = calls.get("t-cancel");
      Thread.sleep(100);
      eq(polls, calls.get("t-cancel"), "no polling after the cancel");

      worker.stop();
      runner.join(10_000);
      check(!runner.isAlive(), "run() returned");
    }
  }

  static void overTcp() throws Exception {
    try (FakeSidecar fake = FakeSidecar.tcp()) {
      Worker worker = new Worker(Worker.options().url(fake.address).handleSignals(false));
      worker.handle("echo", ctx -> ctx.text() + "!");
      Thread runner = new Thread(worker::run);
      runner.start();
      await(() -> fake.registers.size() == 1, 10_000, "Register");
      byte[] large = new byte[5 * 1024 * 1024];
      Arrays.fill(large, (byte) 'z');
      fake.send(FakeSidecar.assignments(List.of(FakeSidecar.assignment("t-1", "echo", large, ""))));
      await(() -> fake.completions.containsKey("t-1"), 10_000, "the completion");
      eq(large.length + 1, text(fake.completions.get("t-1")).length(), "a 5 MB input and output");
      worker.stop();
      runner.join(10_000);
      check(!runner.isAlive(), "run() returned");
    }
  }

  static void streamFailures() throws Exception {
    Path socket = tmp.resolve("fail.sock");
    try (FakeSidecar fake = FakeSidecar.unix(socket)) {
      Worker worker = new Worker(Worker.options().socket(socket.toString()).handleSignals(false));
      worker.handle("x", ctx -> null);
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread runner = new Thread(() -> {
        try {
          worker.run();
        } catch (Throwable e) {
          error.set(e);
        }
      });
      runner.start();
      await(() -> fake.registers.size() == 1, 10_000, "Register");
      fake.end("{\"error\":{\"code\":\"internal\",\"message\":\"the sidecar broke\"}}");
      runner.join(10_000);
      check(error.get() instanceof RunnerException, "run() throws: " + error.get());
      eq("internal", ((RunnerException) error.get()).code(), "with the end-of-stream error's code");
      check(error.get().getMessage().contains("the sidecar broke"), "and message");
    }
    try (FakeSidecar fake = FakeSidecar.unix(socket)) {
      Worker worker = new Worker(Worker.options().socket(socket.toString()).handleSignals(false));
      worker.handle("x", ctx -> null);
      AtomicReference<Throwable> error = new AtomicReference<>();
      Thread runner = new Thread(() -> {
        try {
          worker.run();
        } catch (Throwable e) {
          error.set(e);
        }
      });
      runner.start();
      await(() -> fake.registers.size() == 1, 10_000, "Register");
      fake.abort();
      runner.join(10_000);
      check(error.get() instanceof RunnerException, "run() throws when the connection breaks: " + error.get());
      eq("unavailable", ((RunnerException) error.get()).code(), "unavailable");
    }
    Worker nowhere = new Worker(Worker.options().socket(tmp.resolve("none.sock").toString()).handleSignals(false));
    nowhere.handle("x", ctx -> null);
    eq("unavailable", throwsA(RunnerException.class, nowhere::run).code(), "no sidecar at the socket");
  }

  static void sigterm() throws Exception {
    Path socket = tmp.resolve("signal.sock");
    try (FakeSidecar fake = FakeSidecar.unix(socket)) {
      String classpath = System.getProperty("java.class.path");
      ProcessBuilder builder =
          new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp", classpath, "taskframe.test.SignalWorker");
      builder.environment().put("TASKFRAME_SOCKET", socket.toString());
      builder.redirectErrorStream(true);
      Path output = tmp.resolve("signal-worker.log");
      builder.redirectOutput(output.toFile());
      Process process = builder.start();
      try {
        await(() -> fake.registers.size() == 1, 20_000, "the worker process to register");
        fake.send(FakeSidecar.assignments(List.of(FakeSidecar.assignment("t-slow", "slow", new byte[0], ""))));
        await(() -> fake.logs.size() == 1, 10_000, "the handler to start");
        process.destroy(); // SIGTERM
        check(process.waitFor(20, TimeUnit.SECONDS), "the worker exits");
        String log = Files.readString(output);
        eq(0, process.exitValue(), "exit status after SIGTERM (log: " + log + ")");
        eq("done", text(fake.completions.get("t-slow")), "the task in hand was finished");
        check(fake.events.indexOf("drain") >= 0 && fake.events.indexOf("drain") < fake.events.indexOf("complete:t-slow"), "Drain came first: " + fake.events);
        check(log.contains("run returned"), "run() returned normally: " + log);
      } finally {
        process.destroyForcibly();
      }
    }
  }
}
