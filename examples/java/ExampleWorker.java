// A Taskframe worker in Java: it serves four handlers for the sidecar (TASKFRAME_SOCKET) until it
// is stopped (SIGTERM drains it). pipeline.yaml starts it through `workers:`, with the JDK's
// single-file source launcher:
//   java -cp ../../sdks/java/build/taskframe.jar ExampleWorker.java

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Map;
import taskframe.NonRetryableException;
import taskframe.TaskContext;
import taskframe.TaskHandler;
import taskframe.Worker;

public class ExampleWorker {
  public static void main(String[] args) {
    Worker worker = new Worker(Worker.options().concurrency(8).name("example-java"));
    worker.register(new TextHandlers());
    worker.handle("flaky", ctx -> {
      long failures = (Long) input(ctx).get("failures");
      if (ctx.attempt() <= failures) throw new IllegalStateException("attempt " + ctx.attempt() + " fails on purpose");
      ctx.log("succeeded on attempt " + ctx.attempt());
      return Map.of("attempt", ctx.attempt());
    });
    worker.run(); // returns once drained: SIGTERM, or the sidecar ends the stream
  }

  /** Handlers as annotated methods. */
  public static class TextHandlers {
    @TaskHandler("count-words")
    public Object countWords(TaskContext ctx) {
      String text = (String) input(ctx).get("text");
      int words = text.isBlank() ? 0 : text.trim().split("\\s+").length;
      ctx.log("counted " + words + " words");
      ctx.heartbeat(1.0, "all counted");
      return Map.of("words", words);
    }

    @TaskHandler("shout")
    public Object shout(TaskContext ctx) {
      return ((String) input(ctx).get("text")).toUpperCase() + "!";
    }

    @TaskHandler("sha256")
    public byte[] sha256(TaskContext ctx) throws Exception {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(ctx.input());
      ctx.log("sha256 of " + ctx.input().length + " bytes of " + ctx.contentType());
      return digest;
    }
  }

  static Map<?, ?> input(TaskContext ctx) {
    if (!(ctx.json() instanceof Map<?, ?> map)) throw new NonRetryableException("expected a JSON object as input");
    return map;
  }
}
