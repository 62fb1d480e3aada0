import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { HubService } from "../../core/gen/taskframe/v1/hub_pb.js";
import { TASK_BIN } from "./cli.js";
import { createTestDatabase, type TestDatabase } from "./databases.js";
import type { HubClient } from "./engine.js";

/** The NATS server the integration tests use (CI runs one with JetStream at 127.0.0.1:4222). */
export const TEST_NATS_URL = process.env.TASKFRAME_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

export interface ClusterOptions {
  hubs?: number;
  sidecars?: number;
  slots?: number;
  ackWait?: string;
  killGrace?: string;
  logMaxBytes?: number;
  reconcileEvery?: string;
  reconcileAfter?: string;
  natsUrl?: string;
  /** Extra flags for every sidecar. */
  sidecarFlags?: string[];
}

/** A process of the cluster, started from the built `task` command. */
export interface ClusterProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

export interface Cluster extends AsyncDisposable {
  readonly namespace: string;
  readonly dir: string;
  readonly database: TestDatabase;
  readonly hubs: ClusterProcess[];
  readonly hubUrls: string[];
  readonly sidecars: ClusterProcess[];
  /** A client of the first hub that is still running. */
  client(): HubClient;
  clientOf(hubIndex: number): HubClient;
  startHub(): Promise<ClusterProcess>;
  startSidecar(name?: string): Promise<ClusterProcess>;
}

/**
 * Hubs and sidecars as separate processes (`task hub`, `task sidecar`) on a
 * fresh Postgres database and a NATS namespace of their own, so that test
 * files sharing the servers never see each other's work.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const namespace = `t${randomBytes(5).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "taskframe-cluster-"));
  const database = await createTestDatabase("postgres");
  const dbUrl = database.target.kind === "postgres" ? database.target.url : "";
  const natsUrl = options.natsUrl ?? TEST_NATS_URL;
  const common = [
    "--nats",
    natsUrl,
    "--namespace",
    namespace,
    "--ack-wait",
    options.ackWait ?? "30s",
    "--log-level",
    "warn",
  ];
  const hubs: ClusterProcess[] = [];
  const hubUrls: string[] = [];
  const sidecars: ClusterProcess[] = [];

  const startHub = async () => {
    const hub = launch(`hub-${hubs.length}`, [
      "hub",
      "--db",
      dbUrl,
      "--listen",
      "127.0.0.1:0",
      "--reconcile-every",
      options.reconcileEvery ?? "10s",
      "--reconcile-after",
      options.reconcileAfter ?? "60s",
      "--shutdown-timeout",
      "1s",
      ...common,
    ]);
    const line = await waitForLine(hub, /hub listening on (http:\/\/\S+)/);
    hubs.push(hub);
    hubUrls.push(line[1]!);
    return hub;
  };
  const startSidecar = async (name = `sidecar-${sidecars.length}`) => {
    const sidecar = launch(name, [
      "sidecar",
      "--hub",
      hubUrls[0]!,
      "--host",
      name,
      "--slots",
      String(options.slots ?? 16),
      "--kill-grace",
      options.killGrace ?? "300ms",
      "--log-max-bytes",
      String(options.logMaxBytes ?? 2 ** 20),
      "--ledger-dir",
      join(dir, `ledger-${name}`),
      "--drain-timeout",
      "2s",
      ...(options.sidecarFlags ?? []),
      ...common,
    ]);
    await waitForLine(sidecar, /leasing pools/);
    sidecars.push(sidecar);
    return sidecar;
  };

  try {
    for (let i = 0; i < (options.hubs ?? 1); i++) await startHub();
    for (let i = 0; i < (options.sidecars ?? 1); i++) await startSidecar();
  } catch (error) {
    await stopAll([...sidecars, ...hubs]);
    await database[Symbol.asyncDispose]();
    throw error;
  }

  const clientOf = (index: number) =>
    createClient(HubService, createConnectTransport({ baseUrl: hubUrls[index]!, httpVersion: "1.1" }));
  return {
    namespace,
    dir,
    database,
    hubs,
    hubUrls,
    sidecars,
    client() {
      const index = hubs.findIndex((h) => h.child.exitCode === null && h.child.signalCode === null);
      return clientOf(Math.max(0, index));
    },
    clientOf,
    startHub,
    startSidecar,
    async [Symbol.asyncDispose]() {
      await stopAll([...sidecars, ...hubs]);
      await deleteNamespaceStreams(natsUrl, namespace).catch(() => {});
      await database[Symbol.asyncDispose]();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function launch(name: string, args: string[]): ClusterProcess {
  const child = spawn(process.execPath, [TASK_BIN, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (data: Buffer) => {
    stderr += data.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return { name, child, stderr: () => stderr, exited };
}

/** Waits for the process to print a line matching `pattern` on stderr. */
async function waitForLine(
  process: ClusterProcess,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = process.stderr().match(pattern);
    if (match) return match;
    if (process.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${process.name} did not start:\n${process.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopAll(processes: ClusterProcess[]): Promise<void> {
  await Promise.all(
    processes.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill("SIGTERM");
      const timer = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(timer);
    }),
  );
}

async function deleteNamespaceStreams(natsUrl: string, namespace: string): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const stream of jsm.streams.list()) {
      if (stream.config.name.startsWith(`${namespace.toUpperCase()}_`))
        await jsm.streams.delete(stream.config.name);
    }
  } finally {
    await nc.close();
  }
}
