import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { listenConnect } from "../core/connect-listener.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import type { ServerTls } from "../core/hub-tls.js";
import { silentLogger } from "../core/logger.js";
import { createHubService } from "./api/hub-service.js";
import { TenantAccess } from "./auth/access.js";
import { Authenticator } from "./auth/authenticator.js";
import { DenialLog } from "./auth/denials.js";
import { guardHttp, peerOf } from "./auth/http-guard.js";
import { authInterceptor } from "./auth/interceptor.js";
import { Permission, peerKey } from "./auth/principal.js";
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
 * `/metrics` (Prometheus), and the web dashboard at `/`; with `tls`, all
 * of it over HTTPS (HTTP/2 or HTTP/1.1), and with its client CA only to
 * clients that present a certificate signed by it.
 *
 * Every RPC and `/metrics` pass `auth` (hub/auth/; docs/security-auth.md):
 * without one, protected mode (loopback callers only). The dashboard's files
 * and the health checks are public; the dashboard's data comes through the API.
 */
export async function startHubServer(
  hub: Hub,
  listen: string,
  checkReady: () => Promise<string[]>,
  auth: { authenticator: Authenticator; denials: DenialLog } = {
    authenticator: new Authenticator(undefined, async () => false),
    denials: new DenialLog(hub.store.database, silentLogger),
  },
  tls?: ServerTls,
): Promise<HubServer> {
  const shutdown = new AbortController();
  const service = createHubService(hub, new TenantAccess(hub.store, auth.denials));
  const dashboard = createDashboardHandler();
  const handler = connectNodeAdapter({
    routes: (router) => router.service(HubService, service),
    interceptors: [authInterceptor(auth.authenticator, auth.denials)],
    contextValues: (request) => createContextValues().set(peerKey, peerOf(request)),
    shutdownSignal: shutdown.signal,
    // a larger request is refused (ResourceExhausted): reading stops at the limit (SECURITY.md)
    readMaxBytes: hub.admission.maxRequestBytes,
    fallback: (request, response) => {
      const reply = (status: number, body: string, contentType = "text/plain") => {
        response.writeHead(status, { "content-type": contentType });
        response.end(body);
      };
      const path = request.url?.split("?")[0];
      if (path === "/healthz") reply(200, `ok\nleader: ${hub.isLeader ? "yes" : "no"}\n`);
      else if (path === "/metrics") {
        const { registry } = hub.metrics;
        guardHttp(auth.authenticator, auth.denials, request, path, Permission.Admin)
          .then(async (refused) => {
            if (refused) reply(refused.status, `${refused.message}\n`);
            else reply(200, await registry.metrics(), registry.contentType);
          })
          .catch((error: unknown) => reply(500, `${String(error)}\n`));
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
    ...(tls ? { tls } : {}),
  });
  return {
    address: listener.address,
    async close(timeoutMs) {
      shutdown.abort(new ConnectError("the hub is shutting down", Code.Unavailable));
      await listener.close(timeoutMs);
    },
  };
}
