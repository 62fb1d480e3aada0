import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { createHubService } from "./api/hub-service.js";
import type { Hub } from "./hub.js";

export interface HubServer {
  /** `host:port` actually bound (the port may have been 0). */
  readonly address: string;
  /** Stops accepting, ends open streams (watchers get UNAVAILABLE), waits up to `timeoutMs` for the rest. */
  close(timeoutMs: number): Promise<void>;
}

/** The client preface of HTTP/2 with prior knowledge (h2c) starts with these bytes. */
const H2_PREFACE = "PRI ";

/**
 * The hub's API on one port, HTTP/1.1 and cleartext HTTP/2 (h2c) alike, plus
 * `/healthz` (the process answers; says whether this hub leads) and `/readyz`
 * (store and NATS reachable: 200, else 503 naming what is not). Node's http2 server does not accept
 * HTTP/1.1 without TLS, so each connection is routed by its first bytes.
 */
export async function startHubServer(
  hub: Hub,
  listen: string,
  checkReady: () => Promise<string[]>,
): Promise<HubServer> {
  const shutdown = new AbortController();
  const service = createHubService(hub);
  const handler = connectNodeAdapter({
    routes: (router) => router.service(HubService, service),
    shutdownSignal: shutdown.signal,
    fallback: (request, response) => {
      const reply = (status: number, body: string) => {
        response.writeHead(status, { "content-type": "text/plain" });
        response.end(body);
      };
      const path = request.url?.split("?")[0];
      if (path === "/healthz") reply(200, `ok\nleader: ${hub.isLeader ? "yes" : "no"}\n`);
      else if (path !== "/readyz") reply(404, "not found\n");
      else {
        checkReady().then(
          (problems) =>
            reply(problems.length ? 503 : 200, problems.length ? `${problems.join("\n")}\n` : "ready\n"),
          (error: unknown) => reply(503, `${String(error)}\n`),
        );
      }
    },
  });
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
  const separator = listen.lastIndexOf(":");
  const host = listen.slice(0, separator) || "0.0.0.0";
  const port = Number(listen.slice(separator + 1));
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
      shutdown.abort(new ConnectError("the hub is shutting down", Code.Unavailable));
      h1.closeIdleConnections();
      const timer = setTimeout(() => {
        // whatever still holds a connection after the grace period is cut
        for (const socket of sockets) socket.destroy();
      }, timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
