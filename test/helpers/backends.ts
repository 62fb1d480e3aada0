import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster } from "./cluster.js";
import { type HubClient, startEngine } from "./engine.js";

/**
 * Where the scheduler scenarios run: the embedded engine (hub and sidecar in
 * this process) on PGlite and on Postgres, and the distributed mode (a
 * `task hub` and a `task sidecar` process over NATS JetStream and Postgres).
 */
export const BACKENDS = ["embedded-pglite", "embedded-postgres", "distributed"] as const;
export type BackendKind = (typeof BACKENDS)[number];

export interface TestBackend extends AsyncDisposable {
  readonly kind: BackendKind;
  readonly client: HubClient;
  /** A scratch directory for the test's own files. */
  readonly dir: string;
  /** The sidecar's Runner socket, where SDK workers connect. */
  readonly runnerSocket: string;
}

export interface BackendOptions {
  slots?: number;
  logMaxBytes?: number;
  /** Lease length, in ms. */
  ackWaitMs?: number;
}

export async function startBackend(kind: BackendKind, options: BackendOptions = {}): Promise<TestBackend> {
  if (kind !== "distributed") {
    const engine = await startEngine(kind === "embedded-pglite" ? "pglite" : "postgres", {
      ...(options.slots ? { slots: options.slots } : {}),
      ...(options.logMaxBytes ? { logMaxBytes: options.logMaxBytes } : {}),
      ...(options.ackWaitMs ? { ackWaitMs: options.ackWaitMs } : {}),
    });
    return {
      kind,
      client: engine.client,
      dir: engine.dir,
      runnerSocket: engine.engine.runnerSocket ?? "",
      [Symbol.asyncDispose]: engine[Symbol.asyncDispose],
    };
  }
  const dir = await mkdtemp(join(tmpdir(), "taskframe-backend-"));
  const cluster = await startCluster({
    hubs: 1,
    sidecars: 1,
    slots: options.slots ?? 16,
    ...(options.logMaxBytes ? { logMaxBytes: options.logMaxBytes } : {}),
    ...(options.ackWaitMs ? { ackWait: `${options.ackWaitMs}ms` } : {}),
  });
  return {
    kind,
    client: cluster.client(),
    dir,
    runnerSocket: cluster.runnerSocket(0),
    async [Symbol.asyncDispose]() {
      await cluster[Symbol.asyncDispose]();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
