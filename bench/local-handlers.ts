import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { packagePath } from "../core/package-root.js";
import { type LocalCluster, startLocalCluster } from "../embedded/local-cluster.js";
import { createScratchDatabase, type ScratchDatabase } from "../hub/store/scratch-database.js";

/** 1 hub + 1 sidecar (processes) on a scratch database and a NATS namespace of their own, with a TS no-op worker. */
export interface HandlersCluster extends AsyncDisposable {
  readonly cluster: LocalCluster;
  readonly databaseUrl: string;
  readonly client: Client<typeof HubService>;
  /** The TypeScript no-op worker (bench/workers/noop.mjs). */
  readonly worker: ChildProcess;
  readonly hubPid: number;
  readonly sidecarPid: number;
  /** From launch to "hub listening" (schema migrated on a fresh database): ms, to the 50 ms the cluster polls at. */
  readonly hubStartMs: number;
  /** From launch to "leasing pools". */
  readonly sidecarStartMs: number;
  close(): Promise<void>;
}

export async function startHandlersCluster(options: {
  dbUrl: string;
  natsUrl: string;
  concurrency: number;
  slots?: number;
  profileDir?: string | undefined;
}): Promise<HandlersCluster> {
  const suffix = randomBytes(4).toString("hex");
  const database: ScratchDatabase = await createScratchDatabase(options.dbUrl, "taskframe_bench");
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  let cluster: LocalCluster | undefined;
  let worker: ChildProcess | undefined;
  const close = async () => {
    if (worker) await stopChild(worker); // before the sidecar it talks to
    await cluster?.stop();
    await cluster?.deleteStreams().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await database[Symbol.asyncDispose]();
  };
  try {
    cluster = await startLocalCluster({
      dbUrl: database.url,
      natsUrl: options.natsUrl,
      namespace: `bench${suffix}`,
      dir,
      hubs: 0,
      sidecars: 0,
      slots: options.slots ?? 2,
      logLevel: "error",
      ...(options.profileDir ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", options.profileDir] } : {}),
    });
    let started = performance.now();
    const hub = await cluster.startHub();
    const hubStartMs = performance.now() - started;
    started = performance.now();
    const sidecar = await cluster.startSidecar();
    const sidecarStartMs = performance.now() - started;
    worker = spawn(process.execPath, [packagePath("bench/workers/noop.mjs")], {
      env: {
        ...process.env,
        TASKFRAME_SOCKET: cluster.runnerSocket(0),
        BENCH_CONCURRENCY: String(options.concurrency),
      },
      stdio: ["ignore", "ignore", "inherit"],
      cwd: packagePath("."),
    });
    const client = createClient(
      HubService,
      createConnectTransport({ baseUrl: cluster.hubUrls[0]!, httpVersion: "1.1" }),
    );
    return {
      cluster,
      databaseUrl: database.url,
      client,
      worker,
      hubPid: hub.child.pid!,
      sidecarPid: sidecar.child.pid!,
      hubStartMs,
      sidecarStartMs,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** SIGTERM, and waits for the exit (SIGKILL after `graceMs`). */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

const BULL_WORKER = `
import { Worker } from "bullmq";
const url = new URL(process.env.BENCH_REDIS);
const worker = new Worker(process.env.BENCH_QUEUE, async () => {}, {
  connection: { host: url.hostname, port: Number(url.port || 6379) },
  concurrency: Number(process.env.BENCH_CONCURRENCY),
  ...(process.env.BENCH_KEEP_COMPLETED === "1" ? {} : { removeOnComplete: { count: 0 } }),
});
await worker.waitUntilReady();
process.stderr.write("bullmq worker ready\\n");
process.once("SIGTERM", async () => { await worker.close(); process.exit(0); });
`;

/** A BullMQ Worker with a no-op processor in a process of its own; resolves once it is connected. */
export async function spawnBullWorker(options: {
  redisUrl: string;
  queue: string;
  concurrency: number;
  /** Keep completed jobs (with their processedOn and finishedOn) for the caller to read. */
  keepCompleted?: boolean;
}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", BULL_WORKER], {
    env: {
      ...process.env,
      BENCH_REDIS: options.redisUrl,
      BENCH_QUEUE: options.queue,
      BENCH_CONCURRENCY: String(options.concurrency),
      BENCH_KEEP_COMPLETED: options.keepCompleted ? "1" : "0",
    },
    stdio: ["ignore", "ignore", "pipe"],
    cwd: packagePath("."),
  });
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`BullMQ worker did not start:\n${stderr}`)), 30_000);
    child.stderr!.on("data", (data: Buffer) => {
      stderr += data.toString();
      if (stderr.includes("bullmq worker ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`BullMQ worker exited (${code}):\n${stderr}`));
    });
  });
  child.stderr!.resume();
  return child;
}
