package taskframe.internal;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;

/** Where the sidecar's Runner service is: a unix socket, or http://host:port[/prefix]. */
public final class Endpoint {
  private final UnixDomainSocketAddress unix;
  private final InetSocketAddress tcp;
  private final String host;
  private final String basePath;

  private Endpoint(UnixDomainSocketAddress unix, InetSocketAddress tcp, String host, String basePath) {
    this.unix = unix;
    this.tcp = tcp;
    this.host = host;
    this.basePath = basePath;
  }

  public static Endpoint unix(String path) {
    return new Endpoint(UnixDomainSocketAddress.of(path), null, "localhost", "");
  }

  public static Endpoint url(String url) {
    URI uri = URI.create(url);
    if (!"http".equalsIgnoreCase(uri.getScheme()) || uri.getHost() == null) {
      throw new IllegalArgumentException("expected an http://host:port URL for the sidecar, got '" + url + "'");
    }
    int port = uri.getPort() < 0 ? 80 : uri.getPort();
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    while (path.endsWith("/")) path = path.substring(0, path.length() - 1);
    String host = uri.getHost().contains(":") && !uri.getHost().startsWith("[") ? "[" + uri.getHost() + "]" : uri.getHost();
    return new Endpoint(null, InetSocketAddress.createUnresolved(uri.getHost(), port), host + ":" + port, path);
  }

  public SocketChannel connect() throws IOException {
    if (unix != null) {
      SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
      try {
        channel.connect(unix);
      } catch (IOException e) {
        channel.close();
        throw e;
      }
      return channel;
    }
    SocketChannel channel = SocketChannel.open(new InetSocketAddress(tcp.getHostString(), tcp.getPort()));
    channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
    return channel;
  }

  /** The Host header. */
  public String host() {
    return host;
  }

  public String path(String method) {
    return basePath + "/taskframe.v1.RunnerService/" + method;
  }

  @Override
  public String toString() {
    return unix != null ? unix.getPath().toString() : "http://" + host + basePath;
  }
}
