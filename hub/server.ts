import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { listenConnect } from "../core/connect-listener.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { createHubService } from "./api/hub-service.js";
import { createDashboardHandler } from "./dashboard.js";
import type { Hub } from "./hub.js";

export interface HubServer {
  /** `host:port` actually bound (the port may have been 0). */
  readonly address: string;
  /** Stops accepting, ends open streams (watchers get UNAVAILABLE), waits up to `timeoutMs` for the rest. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * The hub's API on one port, HTTP/1.1 and cleartext HTTP/2 (h2c) alike, plus
 * `/healthz` (the process answers; says whether this hub leads), `/readyz`
 * (store and NATS reachable: 200, else 503 naming what is not) and
 * `/metrics` (Prometheus), and the web dashboard at `/`.
 */
export async function startHubServer(
  hub: Hub,
  listen: string,
  checkReady: () => Promise<string[]>,
): Promise<HubServer> {
  const shutdown = new AbortController();
  const service = createHubService(hub);
  const dashboard = createDashboardHandler();
  const handler = connectNodeAdapter({
    routes: (router) => router.service(HubService, service),
    shutdownSignal: shutdown.signal,
    fallback: (request, response) => {
      const reply = (status: number, body: string, contentType = "text/plain") => {
        response.writeHead(status, { "content-type": contentType });
        response.end(body);
      };
      const path = request.url?.split("?")[0];
      if (path === "/healthz") reply(200, `ok\nleader: ${hub.isLeader ? "yes" : "no"}\n`);
      else if (path === "/metrics") {
        const { registry } = hub.metrics;
        registry.metrics().then(
          (text) => reply(200, text, registry.contentType),
          (error: unknown) => reply(500, `${String(error)}\n`),
        );
      } else if (path !== "/readyz") dashboard(request, response, () => reply(404, "not found\n"));
      else {
        checkReady().then(
          (problems) =>
            reply(problems.length ? 503 : 200, problems.length ? `${problems.join("\n")}\n` : "ready\n"),
          (error: unknown) => reply(503, `${String(error)}\n`),
        );
      }
    },
  });
  const separator = listen.lastIndexOf(":");
  const listener = await listenConnect(handler, {
    host: listen.slice(0, separator) || "0.0.0.0",
    port: Number(listen.slice(separator + 1)),
  });
  return {
    address: listener.address,
    async close(timeoutMs) {
      shutdown.abort(new ConnectError("the hub is shutting down", Code.Unavailable));
      await listener.close(timeoutMs);
    },
  };
}
