package taskframe.internal;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;

/**
 * The body of an HTTP/1.1 response in {@code Transfer-Encoding: chunked}, decoded as it arrives: a
 * read returns what the current chunk has and blocks only when it needs the next one.
 */
public final class ChunkedInputStream extends InputStream {
  private static final int MAX_LINE = 8192;
  private final InputStream in;
  private long remaining;
  private boolean started;
  private boolean ended;

  public ChunkedInputStream(InputStream in) {
    this.in = in;
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
    if (ended) return -1;
    if (remaining == 0) {
      if (started && !readLine(in).isEmpty()) throw new IOException("malformed chunked body: no CRLF after a chunk");
      started = true;
      remaining = chunkSize(readLine(in));
      if (remaining == 0) {
        while (!readLine(in).isEmpty()) {} // trailers
        ended = true;
        return -1;
      }
    }
    int n = in.read(buffer, off, (int) Math.min(len, remaining));
    if (n < 0) throw new EOFException("the connection closed inside a chunk");
    remaining -= n;
    return n;
  }

  @Override
  public int available() throws IOException {
    return ended ? 0 : (int) Math.min(remaining, in.available());
  }

  /** Whether the terminating chunk was read. */
  public boolean ended() {
    return ended;
  }

  private static long chunkSize(String line) throws IOException {
    int semicolon = line.indexOf(';');
    String hex = (semicolon >= 0 ? line.substring(0, semicolon) : line).trim();
    try {
      long size = Long.parseLong(hex, 16);
      if (size < 0 || hex.startsWith("+") || hex.startsWith("-")) throw new NumberFormatException();
      return size;
    } catch (NumberFormatException e) {
      throw new IOException("malformed chunked body: bad chunk size '" + line + "'");
    }
  }

  /** A line without its CRLF (or LF); ISO-8859-1. */
  static String readLine(InputStream in) throws IOException {
    StringBuilder line = new StringBuilder();
    while (true) {
      int b = in.read();
      if (b < 0) throw new EOFException("the connection closed in the middle of a line");
      if (b == '\n') break;
      if (line.length() >= MAX_LINE) throw new IOException("a line of more than " + MAX_LINE + " bytes");
      line.append((char) b);
    }
    int end = line.length();
    if (end > 0 && line.charAt(end - 1) == '\r') line.setLength(end - 1);
    return line.toString();
  }
}
