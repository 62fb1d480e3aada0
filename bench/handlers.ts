import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Worker as BullWorker, Queue } from "bullmq";
import postgres from "postgres";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../core/package-root.js";
import { startLocalCluster } from "../embedded/local-cluster.js";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import { peakRssBytes } from "./machine.js";
import { mb, ms, type Scenario, throughputTable } from "./scenario.js";
import { submitAndWait, type Timed } from "./workloads.js";

export interface Latencies {
  /** Submit (creation) to start, milliseconds. */
  p50: number;
  p99: number;
}

export interface HandlersResult extends Timed {
  latency: Latencies;
  hubPeakRssBytes: number;
  sidecarPeakRssBytes: number;
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

function latencies(samples: number[]): Latencies {
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/**
 * `count` no-op handler tasks through `task hub` + `task sidecar` (processes,
 * over Postgres and NATS JetStream) served by one Python and one TypeScript
 * worker, each at `concurrency`.
 */
export async function handlersRun(
  count: number,
  options: { dbUrl: string; natsUrl: string; concurrency: number; profileDir?: string },
): Promise<HandlersResult> {
  const suffix = randomBytes(4).toString("hex");
  await using database = await createScratchDatabase(options.dbUrl, "taskframe_bench");
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const workers: ChildProcess[] = [];
  const cluster = await startLocalCluster({
    dbUrl: database.url,
    natsUrl: options.natsUrl,
    namespace: `bench${suffix}`,
    dir,
    hubs: 1,
    sidecars: 1,
    slots: 2,
    logLevel: "error",
    ...(options.profileDir ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", options.profileDir] } : {}),
  });
  try {
    const env = {
      ...process.env,
      TASKFRAME_SOCKET: cluster.runnerSocket(0),
      BENCH_CONCURRENCY: String(options.concurrency),
      PYTHONPATH: packagePath("sdks/python"),
    };
    const start = (command: string, args: string[]) =>
      workers.push(
        spawn(command, args, { env, stdio: ["ignore", "ignore", "inherit"], cwd: packagePath(".") }),
      );
    start("python3", [packagePath("bench/workers/noop.py")]);
    start(process.execPath, [packagePath("bench/workers/noop.mjs")]);
    const client = createClient(
      HubService,
      createConnectTransport({ baseUrl: cluster.hubUrls[0]!, httpVersion: "1.1" }),
    );
    const spec = create(RunSpecSchema, {
      name: "bench-handlers",
      tasks: Array.from({ length: count }, (_, i) =>
        create(TaskSpecSchema, { name: `h${i}`, target: { case: "handler", value: { handler: "noop" } } }),
      ),
    });
    const timed = await submitAndWait(client, spec);
    const sql = postgres(database.url, { max: 1 });
    const rows = await sql<{ ms: number }[]>`
      select (extract(epoch from started_at - created_at) * 1000)::float8 as ms from tasks`.finally(() =>
      sql.end(),
    );
    return {
      ...timed,
      latency: latencies(rows.map((r) => r.ms)),
      hubPeakRssBytes: peakRssBytes(cluster.hubs[0]!.child.pid!) ?? 0,
      sidecarPeakRssBytes: peakRssBytes(cluster.sidecars[0]!.child.pid!) ?? 0,
    };
  } finally {
    // workers drain first: they exit before the sidecar they talk to
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.exitCode !== null || worker.signalCode !== null) return resolve();
            worker.once("exit", () => resolve());
            worker.kill("SIGTERM");
          }),
      ),
    );
    await cluster.stop();
    await cluster.deleteStreams().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface BullResult extends Timed {
  latency: Latencies;
}

/** The peer: the same no-op jobs through BullMQ on Redis (addBulk, one worker at `concurrency`). */
export async function bullmqRun(
  count: number,
  options: { redisUrl: string; concurrency: number },
): Promise<BullResult> {
  const redis = new URL(options.redisUrl);
  const connection = { host: redis.hostname, port: Number(redis.port || 6379) };
  const name = `taskframe-bench-${randomBytes(4).toString("hex")}`;
  const queue = new Queue(name, { connection });
  const samples: number[] = [];
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const worker = new BullWorker(
    name,
    async (job) => {
      samples.push((job.processedOn ?? Date.now()) - job.timestamp);
      if (samples.length === count) finish();
    },
    { connection, concurrency: options.concurrency, removeOnComplete: { count: 0 } },
  );
  try {
    const started = performance.now();
    for (let i = 0; i < count; i += 1_000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1_000, count - i) }, (_, j) => ({ name: "noop", data: { i: i + j } })),
      );
    }
    const submitted = performance.now();
    await finished;
    const totalSeconds = (performance.now() - started) / 1000;
    return {
      tasks: count,
      submitSeconds: (submitted - started) / 1000,
      totalSeconds,
      tasksPerSecond: count / totalSeconds,
      state: "SUCCEEDED",
      latency: latencies(samples),
    };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

export const handlersScenario: Scenario = {
  name: "handlers",
  summary:
    "N no-op handler tasks through 1 hub + 1 sidecar (processes, over Postgres and NATS) served by\none Python and one TypeScript SDK worker, beside the same jobs through BullMQ on Redis (default 50000)",
  async run({ tasks = 50_000, concurrency, db, nats, redis, profileDir, progress }) {
    progress("  taskframe: 1 hub + 1 sidecar, one Python and one TypeScript worker ...");
    const ours = await handlersRun(tasks, {
      dbUrl: db,
      natsUrl: nats,
      concurrency,
      ...(profileDir ? { profileDir } : {}),
    });
    progress("  BullMQ on Redis ...");
    const bull = await bullmqRun(tasks, { redisUrl: redis, concurrency });
    return {
      data: { taskframe: ours, bullmq: bull },
      tables: [
        throughputTable(`handlers: ${tasks} no-op handler tasks, workers at concurrency ${concurrency}`, [
          {
            runner: "taskframe hub + sidecar + Python & TS workers",
            tasks: ours.tasks,
            seconds: ours.totalSeconds,
            peakRss: `hub ${mb(ours.hubPeakRssBytes)}; sidecar ${mb(ours.sidecarPeakRssBytes)}`,
            note: `run ${ours.state}; submit ${ours.submitSeconds.toFixed(2)}s; submit->start p50 ${ms(ours.latency.p50)} p99 ${ms(ours.latency.p99)}; every transition in Postgres`,
          },
          {
            runner: `BullMQ (Redis), 1 worker x ${concurrency}`,
            tasks: bull.tasks,
            seconds: bull.totalSeconds,
            note: `addBulk ${bull.submitSeconds.toFixed(2)}s; add->start p50 ${ms(bull.latency.p50)} p99 ${ms(bull.latency.p99)}; completed jobs removed`,
          },
        ]),
      ],
    };
  },
};
