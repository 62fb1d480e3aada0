package taskframe;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A small JSON reader and writer (RFC 8259).
 *
 * <p>{@link #parse} gives {@code Map<String, Object>} (insertion-ordered), {@code List<Object>},
 * {@code String}, {@code Long} (or {@code BigInteger} beyond 64 bits), {@code Double} (or
 * {@code BigDecimal} beyond its range) for numbers with a fraction or exponent, {@code Boolean} and
 * {@code null}.
 *
 * <p>{@link #write} takes those plus any {@code Map}, {@code Iterable}, array, {@code Number},
 * {@code CharSequence}, {@code Character}, {@code Enum} (its name), {@code Optional}, and
 * {@code byte[]} (as a base64 string, as in the protobuf JSON mapping).
 */
public final class Json {
  private static final int MAX_DEPTH = 1000;

  private Json() {}

  /** Malformed JSON, or a value that JSON cannot represent. */
  public static final class JsonException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public JsonException(String message) {
      super(message);
    }
  }

  public static Object parse(String text) {
    return new Parser(text).document();
  }

  public static Object parse(byte[] utf8) {
    return parse(new String(utf8, StandardCharsets.UTF_8));
  }

  public static String write(Object value) {
    StringBuilder out = new StringBuilder();
    write(value, out);
    return out.toString();
  }

  public static void write(Object value, StringBuilder out) {
    write(value, out, 0);
  }

  /** {@code value} as a JSON string literal, quotes included. */
  public static void writeString(CharSequence value, StringBuilder out) {
    out.append('"');
    int length = value.length();
    int start = 0;
    for (int i = 0; i < length; i++) {
      char c = value.charAt(i);
      if (c >= 0x20 && c != '"' && c != '\\' && !Character.isSurrogate(c)) continue;
      if (Character.isHighSurrogate(c) && i + 1 < length && Character.isLowSurrogate(value.charAt(i + 1))) {
        i++; // a valid pair: written as is (UTF-8 on the wire)
        continue;
      }
      out.append(value, start, i);
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        default: // other control characters, and lone surrogates (not encodable as UTF-8)
          out.append("\\u");
          String hex = Integer.toHexString(c);
          for (int pad = hex.length(); pad < 4; pad++) out.append('0');
          out.append(hex);
      }
      start = i + 1;
    }
    out.append(value, start, length);
    out.append('"');
  }

  private static void write(Object value, StringBuilder out, int depth) {
    if (depth > MAX_DEPTH) throw new JsonException("the value is nested too deeply (a cycle?)");
    if (value == null) {
      out.append("null");
    } else if (value instanceof CharSequence) {
      writeString((CharSequence) value, out);
    } else if (value instanceof Boolean) {
      out.append(((Boolean) value).booleanValue());
    } else if (value instanceof Number) {
      writeNumber((Number) value, out);
    } else if (value instanceof Map) {
      out.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
        if (!first) out.append(',');
        first = false;
        Object key = entry.getKey();
        if (key == null) throw new JsonException("a JSON object cannot have a null key");
        writeString(key instanceof CharSequence ? (CharSequence) key : String.valueOf(key), out);
        out.append(':');
        write(entry.getValue(), out, depth + 1);
      }
      out.append('}');
    } else if (value instanceof Iterable) {
      out.append('[');
      boolean first = true;
      for (Object item : (Iterable<?>) value) {
        if (!first) out.append(',');
        first = false;
        write(item, out, depth + 1);
      }
      out.append(']');
    } else if (value instanceof byte[]) {
      out.append('"').append(Base64.getEncoder().encodeToString((byte[]) value)).append('"');
    } else if (value.getClass().isArray()) {
      out.append('[');
      int length = java.lang.reflect.Array.getLength(value);
      for (int i = 0; i < length; i++) {
        if (i > 0) out.append(',');
        write(java.lang.reflect.Array.get(value, i), out, depth + 1);
      }
      out.append(']');
    } else if (value instanceof Character) {
      writeString(value.toString(), out);
    } else if (value instanceof Enum) {
      writeString(((Enum<?>) value).name(), out);
    } else if (value instanceof Optional) {
      write(((Optional<?>) value).orElse(null), out, depth + 1);
    } else {
      throw new JsonException("cannot write a " + value.getClass().getName() + " as JSON");
    }
  }

  private static void writeNumber(Number number, StringBuilder out) {
    if (number instanceof Integer
        || number instanceof Long
        || number instanceof Short
        || number instanceof Byte
        || number instanceof BigInteger
        || number instanceof java.util.concurrent.atomic.AtomicInteger
        || number instanceof java.util.concurrent.atomic.AtomicLong) {
      out.append(number.toString());
      return;
    }
    if (number instanceof BigDecimal) {
      out.append(number.toString());
      return;
    }
    double d = number.doubleValue();
    if (Double.isNaN(d) || Double.isInfinite(d)) throw new JsonException("JSON has no " + d);
    if (d == Math.rint(d) && Math.abs(d) < 1e15) {
      out.append((long) d); // 3.0 as 3, as JavaScript writes it
    } else if (number instanceof Float) {
      out.append(Float.toString(number.floatValue()));
    } else {
      out.append(Double.toString(d));
    }
  }

  private static final class Parser {
    private final String s;
    private final int n;
    private int i;

    Parser(String s) {
      this.s = s;
      this.n = s.length();
    }

    Object document() {
      skipWhitespace();
      Object value = value(0);
      skipWhitespace();
      if (i != n) throw error("unexpected " + describe() + " after the value");
      return value;
    }

    private Object value(int depth) {
      if (depth > MAX_DEPTH) throw error("nesting too deep");
      if (i >= n) throw error("unexpected end of input");
      char c = s.charAt(i);
      switch (c) {
        case '{':
          return object(depth);
        case '[':
          return array(depth);
        case '"':
          return string();
        case 't':
          literal("true");
          return Boolean.TRUE;
        case 'f':
          literal("false");
          return Boolean.FALSE;
        case 'n':
          literal("null");
          return null;
        default:
          if (c == '-' || (c >= '0' && c <= '9')) return number();
          throw error("unexpected " + describe());
      }
    }

    private Map<String, Object> object(int depth) {
      i++; // {
      Map<String, Object> map = new LinkedHashMap<>();
      skipWhitespace();
      if (peek() == '}') {
        i++;
        return map;
      }
      while (true) {
        if (peek() != '"') throw error("expected a string key, got " + describe());
        String key = string();
        skipWhitespace();
        expect(':');
        skipWhitespace();
        map.put(key, value(depth + 1));
        skipWhitespace();
        char c = peek();
        i++;
        if (c == '}') return map;
        if (c != ',') {
          i--;
          throw error("expected ',' or '}', got " + describe());
        }
        skipWhitespace();
      }
    }

    private List<Object> array(int depth) {
      i++; // [
      List<Object> list = new ArrayList<>();
      skipWhitespace();
      if (peek() == ']') {
        i++;
        return list;
      }
      while (true) {
        list.add(value(depth + 1));
        skipWhitespace();
        char c = peek();
        i++;
        if (c == ']') return list;
        if (c != ',') {
          i--;
          throw error("expected ',' or ']', got " + describe());
        }
        skipWhitespace();
      }
    }

    private String string() {
      i++; // opening quote
      int start = i;
      while (i < n) { // fast path: no escapes
        char c = s.charAt(i);
        if (c == '"') return s.substring(start, i++);
        if (c == '\\') break;
        if (c < 0x20) throw error("unescaped control character in a string");
        i++;
      }
      StringBuilder out = new StringBuilder(Math.max(16, (i - start) * 2));
      out.append(s, start, i);
      while (i < n) {
        char c = s.charAt(i++);
        if (c == '"') return out.toString();
        if (c < 0x20) {
          i--;
          throw error("unescaped control character in a string");
        }
        if (c != '\\') {
          out.append(c);
          continue;
        }
        if (i >= n) break;
        char e = s.charAt(i++);
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out.append(e);
            break;
          case 'b':
            out.append('\b');
            break;
          case 'f':
            out.append('\f');
            break;
          case 'n':
            out.append('\n');
            break;
          case 'r':
            out.append('\r');
            break;
          case 't':
            out.append('\t');
            break;
          case 'u':
            if (i + 4 > n) throw error("truncated \\u escape");
            int code = 0;
            for (int k = 0; k < 4; k++) {
              int digit = Character.digit(s.charAt(i + k), 16);
              if (digit < 0) throw error("invalid \\u escape");
              code = code * 16 + digit;
            }
            i += 4;
            out.append((char) code); // surrogate pairs combine in UTF-16
            break;
          default:
            i--;
            throw error("invalid escape '\\" + e + "'");
        }
      }
      throw error("unterminated string");
    }

    private Object number() {
      int start = i;
      boolean integral = true;
      if (peek() == '-') i++;
      if (peek() == '0') {
        i++;
      } else if (peek() >= '1' && peek() <= '9') {
        digits();
      } else {
        throw error("invalid number");
      }
      if (peek() == '.') {
        integral = false;
        i++;
        if (!(peek() >= '0' && peek() <= '9')) throw error("expected a digit after '.'");
        digits();
      }
      if (peek() == 'e' || peek() == 'E') {
        integral = false;
        i++;
        if (peek() == '+' || peek() == '-') i++;
        if (!(peek() >= '0' && peek() <= '9')) throw error("expected a digit in the exponent");
        digits();
      }
      String text = s.substring(start, i);
      if (integral) {
        if (text.length() <= 18) return Long.parseLong(text);
        try {
          return Long.parseLong(text);
        } catch (NumberFormatException tooBig) {
          return new BigInteger(text);
        }
      }
      double d = Double.parseDouble(text);
      if (Double.isInfinite(d)) return new BigDecimal(text);
      return d;
    }

    private void digits() {
      while (i < n && s.charAt(i) >= '0' && s.charAt(i) <= '9') i++;
    }

    private void literal(String word) {
      if (!s.startsWith(word, i)) throw error("unexpected " + describe());
      i += word.length();
    }

    private void expect(char c) {
      if (peek() != c) throw error("expected '" + c + "', got " + describe());
      i++;
    }

    private char peek() {
      return i < n ? s.charAt(i) : '\0';
    }

    private void skipWhitespace() {
      while (i < n) {
        char c = s.charAt(i);
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
        i++;
      }
    }

    private String describe() {
      if (i >= n) return "end of input";
      char c = s.charAt(i);
      return c < 0x20 ? String.format("character U+%04X", (int) c) : "'" + c + "'";
    }

    private JsonException error(String message) {
      return new JsonException("invalid JSON at offset " + i + ": " + message);
    }
  }
}
