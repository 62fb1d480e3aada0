package taskframe.conformance;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import taskframe.Child;
import taskframe.ChildStatus;
import taskframe.NonRetryableException;
import taskframe.Output;
import taskframe.RetryAfterException;
import taskframe.TaskContext;
import taskframe.TaskError;
import taskframe.Worker;

/**
 * The conformance adapter of the Java SDK (docs/conformance-adapter.md): a worker serving
 * {@code conformance.echo} and {@code conformance.script}, written with the SDK's public API only.
 *
 * <pre>
 *   task conformance -- sdks/java/conformance-adapter.sh
 * </pre>
 */
public final class ConformanceAdapter {
  private ConformanceAdapter() {}

  public static void main(String[] args) {
    int concurrency = 4;
    String configured = System.getenv("TASKFRAME_CONFORMANCE_CONCURRENCY");
    if (configured != null && !configured.isBlank()) concurrency = Integer.parseInt(configured.trim());
    String name = System.getenv("TASKFRAME_WORKER_NAME");
    Worker worker =
        new Worker(
            Worker.options()
                .concurrency(concurrency)
                .name(name == null || name.isBlank() ? "java-conformance" : name));
    worker.handle("conformance.echo", ctx -> Output.of(ctx.input(), ctx.contentType()));
    worker.handle("conformance.script", ConformanceAdapter::script);
    worker.run();
  }

  static Object script(TaskContext ctx) throws Exception {
    Map<?, ?> input = object(ctx.json(), "the input");
    List<?> attempts = list(input.get("attempts"), "attempts");
    if (attempts.isEmpty()) return null;
    int index = Math.max(1, Math.min(ctx.attempt(), attempts.size())) - 1;
    Map<?, ?> behaviour = object(attempts.get(index), "attempts[" + index + "]");
    Object steps = behaviour.get("steps");
    List<ChildStatus> awaited = List.of();
    for (Object item : steps == null ? List.of() : list(steps, "steps")) {
      Map<?, ?> step = object(item, "a step");
      if (step.containsKey("log")) {
        String text = String.valueOf(step.get("log"));
        if ("stderr".equals(step.get("stream"))) ctx.logStderr(text);
        else ctx.log(text);
      } else if (step.containsKey("heartbeat")) {
        Object message = step.get("message");
        ctx.heartbeat(number(step.get("heartbeat"), "heartbeat"), message == null ? null : String.valueOf(message));
      } else if (step.containsKey("sleep_ms")) {
        long ms = (long) number(step.get("sleep_ms"), "sleep_ms");
        if (ctx.awaitCancelled(Duration.ofMillis(ms))) throw new TaskError("Cancelled", ctx.cancelReason());
      } else if (step.containsKey("wait_cancel")) {
        ctx.awaitCancelled();
        throw new TaskError("Cancelled", ctx.cancelReason());
      } else if (step.containsKey("spawn")) {
        List<Child> children = new ArrayList<>();
        for (Object spec : list(step.get("spawn"), "spawn")) children.add(child(object(spec, "a child")));
        ctx.spawn(children);
      } else if (step.containsKey("await_children")) {
        Object options = step.get("await_children");
        boolean failOnError = !(options instanceof Map) || !Boolean.FALSE.equals(((Map<?, ?>) options).get("fail_on_error"));
        awaited = ctx.awaitChildren(List.of(), failOnError);
      } else if (step.containsKey("return_children")) {
        List<Object> children = new ArrayList<>();
        for (ChildStatus c : awaited) {
          Map<String, Object> entry = new LinkedHashMap<>();
          entry.put("key", c.key());
          entry.put("output", c.text());
          children.add(entry);
        }
        return Output.json(children);
      } else if (step.containsKey("crash")) {
        Runtime.getRuntime().halt(1);
      } else if (step.containsKey("return")) {
        Object value = step.get("return");
        // the SDK's "other values" encoding (JSON); a string or null would be text or nothing otherwise
        return value instanceof Map || value instanceof List || value instanceof Number || value instanceof Boolean
            ? value
            : Output.json(value);
      } else if (step.containsKey("return_text")) {
        return String.valueOf(step.get("return_text"));
      } else if (step.containsKey("fail")) {
        throw failure(object(step.get("fail"), "fail"));
      } else {
        throw new NonRetryableException("unknown step " + step.keySet());
      }
    }
    return null;
  }

  private static RuntimeException failure(Map<?, ?> fail) {
    Object kind = fail.get("kind");
    Object raw = fail.get("message");
    String message = raw == null ? "" : String.valueOf(raw);
    if ("retryable".equals(kind)) {
      Object type = fail.get("type");
      return new TaskError(type == null ? "Error" : String.valueOf(type), message);
    }
    if ("non_retryable".equals(kind)) return new NonRetryableException(message);
    if ("retry_after".equals(kind)) {
      long ms = (long) number(fail.get("retry_after_ms"), "retry_after_ms");
      return new RetryAfterException(Duration.ofMillis(ms), message);
    }
    return new NonRetryableException("unknown fail kind '" + kind + "'");
  }

  private static Child child(Map<?, ?> spec) {
    Child child = Child.handler(String.valueOf(spec.get("key")), String.valueOf(spec.get("handler")));
    if (spec.containsKey("input")) child.inputJson(spec.get("input"));
    Object needs = spec.get("needs");
    if (needs != null) for (Object key : list(needs, "needs")) child.needs(String.valueOf(key));
    Object retries = spec.get("retries");
    if (retries != null) child.retries((int) number(retries, "retries"));
    return child;
  }

  private static Map<?, ?> object(Object value, String what) {
    if (value instanceof Map) return (Map<?, ?>) value;
    throw new NonRetryableException("expected an object for " + what + ", got " + value);
  }

  private static List<?> list(Object value, String what) {
    if (value instanceof List) return (List<?>) value;
    throw new NonRetryableException("expected a list for " + what + ", got " + value);
  }

  private static double number(Object value, String what) {
    if (value instanceof Number) return ((Number) value).doubleValue();
    throw new NonRetryableException("expected a number for " + what + ", got " + value);
  }
}
