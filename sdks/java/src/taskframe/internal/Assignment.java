package taskframe.internal;

import java.util.Base64;
import java.util.List;
import java.util.Map;
import taskframe.Json;

/** One Assignment of the stream; its input is decoded from base64 on first use (on the handler's thread). */
public final class Assignment {
  public final String taskId;
  public final String runId;
  public final String taskName;
  public final int attempt;
  /** As received: reports echo it exactly. */
  public final String leaseEpoch;
  public final String handler;
  public final String contentType;
  public final long deadlineUnixMs;
  public final String traceparent;
  private final String inputBase64;
  private byte[] input;

  private Assignment(Map<?, ?> m) {
    taskId = string(m, "taskId");
    runId = string(m, "runId");
    taskName = string(m, "taskName");
    attempt = (int) number(m, "attempt");
    leaseEpoch = Long.toUnsignedString(number(m, "leaseEpoch"));
    handler = string(m, "handler");
    contentType = string(m, "contentType");
    deadlineUnixMs = number(m, "deadlineUnixMs");
    traceparent = string(m, "traceparent");
    inputBase64 = string(m, "input");
  }

  public static Assignment from(Map<?, ?> message) {
    return new Assignment(message);
  }

  public synchronized byte[] input() {
    if (input == null) input = decodeBytes(inputBase64);
    return input;
  }

  /** "taskId":…,"attempt":…,"leaseEpoch":"…" (the identity triple every report carries). */
  public void writeIdentity(StringBuilder out) {
    out.append("\"taskId\":");
    Json.writeString(taskId, out);
    out.append(",\"attempt\":").append(attempt).append(",\"leaseEpoch\":\"").append(leaseEpoch).append('"');
  }

  /** A protobuf JSON bytes field: standard or URL-safe base64, padded or not. */
  public static byte[] decodeBytes(String base64) {
    if (base64.isEmpty()) return new byte[0];
    if (base64.indexOf('-') >= 0 || base64.indexOf('_') >= 0) return Base64.getUrlDecoder().decode(base64);
    return Base64.getDecoder().decode(base64);
  }

  /** A string field; absent (the default) is "". */
  public static String string(Map<?, ?> m, String key) {
    Object value = m.get(key);
    return value instanceof String ? (String) value : "";
  }

  /** A 32- or 64-bit integer field, as a JSON number or string; absent is 0. */
  public static long number(Map<?, ?> m, String key) {
    Object value = m.get(key);
    if (value instanceof Number) return ((Number) value).longValue();
    if (value instanceof String && !((String) value).isEmpty()) {
      String text = (String) value;
      try {
        return Long.parseLong(text);
      } catch (NumberFormatException e) {
        try {
          return Long.parseUnsignedLong(text); // a uint64 beyond Long.MAX_VALUE
        } catch (NumberFormatException again) {
          throw new Json.JsonException("expected an integer in '" + key + "', got '" + text + "'");
        }
      }
    }
    return 0;
  }

  public static List<?> list(Map<?, ?> m, String key) {
    Object value = m.get(key);
    return value instanceof List ? (List<?>) value : List.of();
  }
}
