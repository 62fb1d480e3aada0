import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

/** Histogram buckets for task and attempt durations, in seconds: 5 ms to an hour. */
export const DURATION_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
];

/**
 * A process's Prometheus registry, with the Node.js process metrics (CPU,
 * memory, event loop lag, handles) under `taskframe_`, labelled with the
 * role. One per process: the default metrics watch the whole process.
 */
export function processMetricsRegistry(role: "hub" | "sidecar"): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: "taskframe_" });
  return registry;
}

/** Answers GET /metrics on `host:port` with the registry's metrics in the Prometheus text format. */
export async function serveMetrics(
  registry: Registry,
  listen: { host: string; port: number },
): Promise<{ address: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    if (request.url?.split("?")[0] !== "/metrics") {
      response
        .writeHead(404, { "content-type": "text/plain" })
        .end("not found: the metrics are at /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const bound = server.address();
  const address =
    typeof bound === "object" && bound ? `${listen.host}:${bound.port}` : `${listen.host}:${listen.port}`;
  return {
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
