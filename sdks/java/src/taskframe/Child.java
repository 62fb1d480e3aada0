package taskframe;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A child task for {@link TaskContext#spawn}: a handler with an input, or an executable; keyed
 * uniquely among the parent's children (spawning a key again returns the existing child).
 *
 * <pre>{@code
 * ctx.spawn(List.of(
 *     Child.handler("thumb", "resize").input(Map.of("width", 64)).retries(2),
 *     Child.exec("notify", "/usr/bin/notify-send", "done").needs("thumb")));
 * }</pre>
 */
public final class Child {
  private final String key;
  private final String handler;
  private final String command;
  private final List<String> args;
  private byte[] input = new byte[0];
  private String contentType = "";
  private final List<String> needs = new ArrayList<>();
  private int retries;
  private long timeoutMs;

  private Child(String key, String handler, String command, List<String> args) {
    if (key == null || key.isEmpty()) throw new IllegalArgumentException("a child needs a key");
    this.key = key;
    this.handler = handler;
    this.command = command;
    this.args = args;
  }

  /** A child served by the handler {@code handler}. */
  public static Child handler(String key, String handler) {
    return new Child(key, Objects.requireNonNull(handler, "handler"), null, List.of());
  }

  /** A child that runs an executable (an absolute path, or a name looked up on PATH). */
  public static Child exec(String key, String command, String... args) {
    return new Child(key, null, Objects.requireNonNull(command, "command"), List.copyOf(Arrays.asList(args)));
  }

  /** The input, encoded as a handler's result is: bytes, text, or JSON (see {@link Output#from}). */
  public Child input(Object value) {
    Output encoded = Output.from(value);
    this.input = encoded.data();
    this.contentType = encoded.contentType();
    return this;
  }

  /** The input as JSON ({@code application/json}), whatever its type (strings included). */
  public Child inputJson(Object value) {
    return input(Output.json(value));
  }

  public Child input(byte[] data, String contentType) {
    return input(Output.of(data, contentType));
  }

  /** Keys of sibling children that must succeed first. */
  public Child needs(String... keys) {
    needs.addAll(Arrays.asList(keys));
    return this;
  }

  public Child needs(List<String> keys) {
    needs.addAll(keys);
    return this;
  }

  /** Extra attempts after the first. */
  public Child retries(int retries) {
    if (retries < 0) throw new IllegalArgumentException("retries must be >= 0");
    this.retries = retries;
    return this;
  }

  /** Wall-clock limit of one attempt. */
  public Child timeout(Duration timeout) {
    this.timeoutMs = timeout.toMillis();
    return this;
  }

  public String key() {
    return key;
  }

  /** The ChildSpec message, as protobuf JSON. */
  void writeSpec(StringBuilder out) {
    out.append("{\"key\":");
    Json.writeString(key, out);
    out.append(",\"spec\":{\"name\":");
    Json.writeString(key, out);
    if (handler != null) {
      out.append(",\"handler\":{\"handler\":");
      Json.writeString(handler, out);
      if (input.length > 0) out.append(",\"input\":\"").append(java.util.Base64.getEncoder().encodeToString(input)).append('"');
      if (!contentType.isEmpty()) {
        out.append(",\"contentType\":");
        Json.writeString(contentType, out);
      }
      out.append('}');
    } else {
      out.append(",\"exec\":{\"command\":");
      Json.writeString(command, out);
      if (!args.isEmpty()) out.append(",\"args\":").append(Json.write(args));
      out.append('}');
    }
    if (retries > 0) out.append(",\"retry\":{\"retries\":").append(retries).append('}');
    if (timeoutMs > 0) out.append(",\"timeoutMs\":\"").append(timeoutMs).append('"');
    if (!needs.isEmpty()) out.append(",\"needs\":").append(Json.write(needs));
    out.append("}}");
  }

  /** For the SDK's internals: {@link #writeSpec} is package-private. */
  public static String specJson(List<Child> children) {
    StringBuilder out = new StringBuilder("[");
    for (int i = 0; i < children.size(); i++) {
      if (i > 0) out.append(',');
      children.get(i).writeSpec(out);
    }
    return out.append(']').toString();
  }
}
