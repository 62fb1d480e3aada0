package taskframe.internal;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;

/** A Connect streaming envelope: 1 flags byte, a 4-byte big-endian length, then the message. */
public final class Envelope {
  public static final int FLAG_COMPRESSED = 0x01;
  public static final int FLAG_END_STREAM = 0x02;
  /** Refuse absurd lengths instead of allocating them. */
  public static final int MAX_LENGTH = 512 * 1024 * 1024;

  public final int flags;
  public final byte[] data;

  public Envelope(int flags, byte[] data) {
    this.flags = flags;
    this.data = data;
  }

  public boolean endOfStream() {
    return (flags & FLAG_END_STREAM) != 0;
  }

  public static byte[] encode(int flags, byte[] data) {
    byte[] out = new byte[5 + data.length];
    out[0] = (byte) flags;
    out[1] = (byte) (data.length >>> 24);
    out[2] = (byte) (data.length >>> 16);
    out[3] = (byte) (data.length >>> 8);
    out[4] = (byte) data.length;
    System.arraycopy(data, 0, out, 5, data.length);
    return out;
  }

  /** The next envelope, or null if the input ends cleanly before one starts. */
  public static Envelope read(InputStream in) throws IOException {
    int flags = in.read();
    if (flags < 0) return null;
    byte[] header = readFully(in, 4);
    long length =
        ((header[0] & 0xffL) << 24) | ((header[1] & 0xff) << 16) | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
    if (length > MAX_LENGTH) throw new IOException("an envelope of " + length + " bytes is too big");
    return new Envelope(flags, readFully(in, (int) length));
  }

  private static byte[] readFully(InputStream in, int length) throws IOException {
    byte[] out = new byte[length];
    int off = 0;
    while (off < length) {
      int n = in.read(out, off, length - off);
      if (n < 0) throw new EOFException("the stream ended inside an envelope");
      off += n;
    }
    return out;
  }
}
