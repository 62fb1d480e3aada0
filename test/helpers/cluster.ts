import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HubService } from "../../core/gen/taskframe/v1/hub_pb.js";
import {
  type LocalCluster,
  type LocalClusterOptions,
  startLocalCluster,
} from "../../embedded/local-cluster.js";
import { createTestDatabase, type TestDatabase } from "./databases.js";
import type { HubClient } from "./engine.js";

/** The NATS server the integration tests use (CI runs one with JetStream at 127.0.0.1:4222). */
export const TEST_NATS_URL = process.env.TASKFRAME_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

export type ClusterOptions = Omit<LocalClusterOptions, "dbUrl" | "natsUrl" | "namespace" | "dir"> & {
  natsUrl?: string;
  /** A namespace of the test's choosing (e.g. one its NATS permissions name); a fresh one by default. */
  namespace?: string;
};

export interface Cluster extends LocalCluster, AsyncDisposable {
  readonly namespace: string;
  readonly dir: string;
  readonly database: TestDatabase;
  /** A client of the first hub that is still running. */
  client(): HubClient;
  clientOf(hubIndex: number): HubClient;
}

/**
 * Hubs and sidecars as separate processes on a fresh Postgres database and a
 * NATS namespace of their own, so that test files sharing the servers never
 * see each other's work. Short kill grace and log cap, for tests. Unjailed
 * unless asked (`jail:`): these scenarios watch tasks through files in the
 * test's own directory and host pids, which a jail rightly hides;
 * test/jail.test.ts runs jailed sidecars.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const namespace = options.namespace ?? `t${randomBytes(5).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "taskframe-cluster-"));
  const database = await createTestDatabase("postgres");
  let local: LocalCluster;
  try {
    local = await startLocalCluster({
      killGrace: "300ms",
      logMaxBytes: 2 ** 20,
      jail: "none",
      ...options,
      dbUrl: database.target.kind === "postgres" ? database.target.url : "",
      natsUrl: options.natsUrl ?? TEST_NATS_URL,
      namespace,
      dir,
    });
  } catch (error) {
    await database[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const clientOf = (index: number) =>
    createClient(HubService, createConnectTransport({ baseUrl: local.hubUrls[index]!, httpVersion: "1.1" }));
  return {
    ...local,
    namespace,
    dir,
    database,
    client() {
      const index = local.hubs.findIndex((h) => h.child.exitCode === null && h.child.signalCode === null);
      return clientOf(Math.max(0, index));
    },
    clientOf,
    async [Symbol.asyncDispose]() {
      await local.stop();
      await local.deleteStreams().catch(() => {});
      await database[Symbol.asyncDispose]();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
