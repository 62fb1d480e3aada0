package taskframe;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/** A handler result with an explicit content type. */
public final class Output {
  public static final String OCTET_STREAM = "application/octet-stream";
  public static final String TEXT = "text/plain; charset=utf-8";
  public static final String JSON = "application/json";

  private final byte[] data;
  private final String contentType;

  private Output(byte[] data, String contentType) {
    this.data = Objects.requireNonNull(data, "data");
    this.contentType = contentType == null ? "" : contentType;
  }

  /** These bytes, with this content type (may be empty). */
  public static Output of(byte[] data, String contentType) {
    return new Output(data, contentType);
  }

  /** UTF-8 text ({@code text/plain; charset=utf-8}). */
  public static Output text(String text) {
    return new Output(text.getBytes(StandardCharsets.UTF_8), TEXT);
  }

  /** Any value as JSON ({@code application/json}), strings and null included. */
  public static Output json(Object value) {
    return new Output(Json.write(value).getBytes(StandardCharsets.UTF_8), JSON);
  }

  /** The encoding of a handler's return value: see {@link Handler}. */
  public static Output from(Object value) {
    if (value == null) return new Output(new byte[0], "");
    if (value instanceof Output) return (Output) value;
    if (value instanceof byte[]) return new Output((byte[]) value, OCTET_STREAM);
    if (value instanceof java.nio.ByteBuffer) {
      java.nio.ByteBuffer buffer = ((java.nio.ByteBuffer) value).duplicate();
      byte[] bytes = new byte[buffer.remaining()];
      buffer.get(bytes);
      return new Output(bytes, OCTET_STREAM);
    }
    if (value instanceof CharSequence || value instanceof Character) return text(value.toString());
    return json(value);
  }

  /** The bytes themselves (not a copy). */
  public byte[] data() {
    return data;
  }

  public String contentType() {
    return contentType;
  }

  @Override
  public String toString() {
    return "Output[" + data.length + " bytes, " + contentType + "]";
  }
}
