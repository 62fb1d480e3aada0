import { rmSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ServerTls } from "./hub-tls.js";

type NodeHandlerFn = ReturnType<typeof connectNodeAdapter>;

/** The client preface of HTTP/2 with prior knowledge (h2c) starts with these bytes. */
const H2_PREFACE = "PRI ";

export type ListenTarget = { host: string; port: number; tls?: ServerTls } | { socketPath: string };

export interface ConnectListener {
  /** `host:port`, or the socket's path. */
  readonly address: string;
  /** Stops accepting; connections still open after `timeoutMs` are cut. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * Serves a Connect handler over HTTP/1.1 and cleartext HTTP/2 (h2c) on one
 * TCP port or unix socket. Node's http2 server does not take HTTP/1.1
 * without TLS, so each connection is routed by its first bytes. With `tls`,
 * it serves HTTPS instead: HTTP/2 or HTTP/1.1 as ALPN agrees.
 */
export async function listenConnect(handler: NodeHandlerFn, target: ListenTarget): Promise<ConnectListener> {
  if ("tls" in target && target.tls) return listenTls(handler, target.host, target.port, target.tls);
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      (chunk.subarray(0, H2_PREFACE.length).toString("latin1") === H2_PREFACE ? h2 : h1).emit(
        "connection",
        socket,
      );
      process.nextTick(() => socket.resume());
    });
  });
  if ("socketPath" in target) rmSync(target.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const listening = () => {
      server.off("error", reject);
      resolve();
    };
    if ("socketPath" in target) server.listen(target.socketPath, listening);
    else server.listen(target.port, target.host, listening);
  });
  const bound = server.address();
  const address =
    typeof bound === "string" ? bound : `${(bound as AddressInfo).address}:${(bound as AddressInfo).port}`;
  return {
    address,
    async close(timeoutMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      h1.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, timeoutMs);
      await closed;
      clearTimeout(timer);
      if ("socketPath" in target) rmSync(target.socketPath, { force: true });
    },
  };
}

async function listenTls(
  handler: NodeHandlerFn,
  host: string,
  port: number,
  tls: ServerTls,
): Promise<ConnectListener> {
  const server = http2.createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      allowHTTP1: true,
      ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    },
    handler,
  );
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.address}:${bound.port}`,
    async close(timeoutMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
