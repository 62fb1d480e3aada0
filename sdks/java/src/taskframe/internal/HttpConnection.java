package taskframe.internal;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One HTTP/1.1 client connection over a {@link SocketChannel} (unix socket or TCP): requests with a
 * Content-Length body; responses with Content-Length, chunked, or read-until-close bodies.
 */
public final class HttpConnection implements Closeable {
  private static final int MAX_HEADERS = 100;
  private final SocketChannel channel;
  private final Endpoint endpoint;
  private final InputStream in;
  private volatile boolean closed;
  private boolean responseStarted;
  private long idleSince = System.nanoTime();

  private HttpConnection(SocketChannel channel, Endpoint endpoint) {
    this.channel = channel;
    this.endpoint = endpoint;
    this.in = new BufferedInputStream(new ChannelInput(channel), 64 * 1024);
  }

  public static HttpConnection open(Endpoint endpoint) throws IOException {
    return new HttpConnection(endpoint.connect(), endpoint);
  }

  /** Sends a POST request with this body. */
  public void post(String path, String contentType, byte[] body) throws IOException {
    responseStarted = false;
    String head =
        "POST " + path + " HTTP/1.1\r\n"
            + "Host: " + endpoint.host() + "\r\n"
            + "User-Agent: taskframe-java/" + Version.SDK + "\r\n"
            + "Content-Type: " + contentType + "\r\n"
            + "Connect-Protocol-Version: 1\r\n"
            + "Content-Length: " + body.length + "\r\n"
            + "\r\n";
    ByteBuffer[] buffers = {ByteBuffer.wrap(head.getBytes(StandardCharsets.ISO_8859_1)), ByteBuffer.wrap(body)};
    while (buffers[0].hasRemaining() || buffers[1].hasRemaining()) channel.write(buffers);
  }

  /** Reads the status line and headers; the body is then read from {@link Response#body()}. */
  public Response readResponse() throws IOException {
    while (true) {
      int first = in.read();
      if (first < 0) throw new EOFException("the connection closed before a response");
      responseStarted = true;
      String statusLine = (char) first + ChunkedInputStream.readLine(in);
      String[] parts = statusLine.split(" ", 3);
      if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
        throw new IOException("not an HTTP/1.x response: '" + statusLine + "'");
      }
      int status;
      try {
        status = Integer.parseInt(parts[1]);
      } catch (NumberFormatException e) {
        throw new IOException("bad HTTP status line: '" + statusLine + "'");
      }
      Map<String, String> headers = new LinkedHashMap<>();
      for (int count = 0; ; count++) {
        if (count > MAX_HEADERS) throw new IOException("too many response headers");
        String line = ChunkedInputStream.readLine(in);
        if (line.isEmpty()) break;
        int colon = line.indexOf(':');
        if (colon <= 0) throw new IOException("malformed response header: '" + line + "'");
        String name = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
        String value = line.substring(colon + 1).trim();
        headers.merge(name, value, (a, b) -> a + ", " + b);
      }
      if (status >= 100 && status < 200) continue; // 100 Continue and friends
      boolean keepAlive = parts[0].equals("HTTP/1.1") && !headerHas(headers.get("connection"), "close");
      String transferEncoding = headers.get("transfer-encoding");
      String contentLength = headers.get("content-length");
      InputStream body;
      if (transferEncoding != null && headerHas(transferEncoding, "chunked")) {
        body = new ChunkedInputStream(in);
      } else if (contentLength != null) {
        long length;
        try {
          length = Long.parseLong(contentLength.trim());
        } catch (NumberFormatException e) {
          throw new IOException("bad Content-Length '" + contentLength + "'");
        }
        body = new LimitedInputStream(in, length);
      } else {
        body = in; // until the connection closes
        keepAlive = false;
      }
      return new Response(status, headers, body, keepAlive);
    }
  }

  /** Whether any byte of the latest response was read (else a request on a stale connection may be retried). */
  public boolean responseStarted() {
    return responseStarted;
  }

  public boolean isOpen() {
    return !closed && channel.isOpen();
  }

  public void markIdle() {
    idleSince = System.nanoTime();
  }

  public long idleNanos() {
    return System.nanoTime() - idleSince;
  }

  /** Closes the connection; a thread blocked on it gets an exception. */
  @Override
  public void close() {
    closed = true;
    try {
      channel.close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }

  private static boolean headerHas(String value, String token) {
    if (value == null) return false;
    for (String part : value.split(",")) if (part.trim().equalsIgnoreCase(token)) return true;
    return false;
  }

  /** A response whose body is being read from the connection. */
  public static final class Response {
    private final int status;
    private final Map<String, String> headers;
    private final InputStream body;
    private final boolean keepAlive;

    Response(int status, Map<String, String> headers, InputStream body, boolean keepAlive) {
      this.status = status;
      this.headers = headers;
      this.body = body;
      this.keepAlive = keepAlive;
    }

    public int status() {
      return status;
    }

    /** By lower-case name. */
    public String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    public InputStream body() {
      return body;
    }

    /** Whether the connection can carry another request once the body is read. */
    public boolean keepAlive() {
      return keepAlive;
    }

    public byte[] readAll() throws IOException {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[16 * 1024];
      int n;
      while ((n = body.read(buffer, 0, buffer.length)) >= 0) out.write(buffer, 0, n);
      return out.toByteArray();
    }
  }

  private static final class ChannelInput extends InputStream {
    private final SocketChannel channel;

    ChannelInput(SocketChannel channel) {
      this.channel = channel;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      int n = read(one, 0, 1);
      return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] buffer, int off, int len) throws IOException {
      if (len == 0) return 0;
      return channel.read(ByteBuffer.wrap(buffer, off, len));
    }
  }

  private static final class LimitedInputStream extends InputStream {
    private final InputStream in;
    private long remaining;

    LimitedInputStream(InputStream in, long length) {
      this.in = in;
      this.remaining = length;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      int n = read(one, 0, 1);
      return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] buffer, int off, int len) throws IOException {
      if (remaining == 0) return -1;
      if (len == 0) return 0;
      int n = in.read(buffer, off, (int) Math.min(len, remaining));
      if (n < 0) throw new EOFException("the connection closed inside a response body");
      remaining -= n;
      return n;
    }
  }
}
