import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
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
import { cpuShare, natsServerPids, postgresPids } from "./cpu-share.js";
import { stopChild } from "./local-handlers.js";
import { peakRssBytes } from "./machine.js";
import { mb, ms, type Percentiles, percentiles, type Scenario, throughputTable } from "./scenario.js";

/** What a sustained run counted inside its measuring window. */
export interface SustainedResult {
  windowSeconds: number;
  submitted: number;
  started: number;
  finished: number;
  /** Submit (creation) to start, milliseconds, of tasks submitted in the window. */
  submitToStart: Percentiles;
  /** Submit to recorded end, milliseconds. */
  submitToEnd: Percentiles;
}

/** What each finished task cost Postgres, for the capacity model (docs/performance.md). */
export interface StoragePerTask {
  /** WAL written during the window per task finished in it. */
  walBytes: number;
  /** Table and index bytes per task at the end, by table. */
  tableBytes: Record<string, number>;
}

export interface HandlersResult extends SustainedResult {
  storage: StoragePerTask;
  /** CPU each part of the system spent per task finished in the window, in µs. */
  cpuMicrosPerTask: Record<string, number>;
  hubs: number;
  sidecars: number;
  hubPeakRssBytes: number[];
  sidecarPeakRssBytes: number[];
  /** The SDK workers on each sidecar. */
  workers: WorkerLanguage[];
}

export type WorkerLanguage = "python" | "typescript";

export interface SustainOptions {
  warmupSeconds: number;
  windowSeconds: number;
  /** Tasks per submitted run. */
  batch: number;
  /** Submitted but not yet finished tasks: submitting pauses above this. */
  maxBacklog: number;
}

export const DEFAULT_SUSTAIN: SustainOptions = {
  warmupSeconds: 10,
  windowSeconds: 60,
  batch: 1_000,
  maxBacklog: 40_000,
};

/**
 * Keeps `submitBatch` busy while fewer than `maxBacklog` tasks are unfinished,
 * for the warm-up and then the window; `backlog` says how many are unfinished.
 * Returns when the window ends, with its bounds in this process's clock.
 */
async function sustain(
  options: SustainOptions,
  submitBatch: () => Promise<void>,
  backlog: () => Promise<number>,
  progress: (text: string) => void,
  onWindow: (edge: "start" | "end") => Promise<void>,
): Promise<void> {
  const began = performance.now();
  const windowStart = began + options.warmupSeconds * 1000;
  const windowEnd = windowStart + options.windowSeconds * 1000;
  let inWindow = false;
  let lastReport = began;
  let unfinished = 0;
  const submitter = (async () => {
    while (performance.now() < windowEnd) {
      if (unfinished + options.batch > options.maxBacklog) {
        await sleep(10);
        continue;
      }
      unfinished += options.batch;
      await submitBatch();
    }
  })();
  while (performance.now() < windowEnd) {
    unfinished = await backlog();
    const now = performance.now();
    if (!inWindow && now >= windowStart) {
      inWindow = true;
      await onWindow("start");
    }
    if (now - lastReport >= 10_000) {
      lastReport = now;
      progress(`    ${Math.round((now - began) / 1000)} s: ${unfinished} tasks unfinished`);
    }
    await sleep(100);
  }
  await onWindow("end");
  await submitter;
}

/**
 * No-op handler tasks through `task hub` + `task sidecar` (processes, over
 * Postgres and NATS JetStream) served by one Python and one TypeScript
 * worker, submitted in runs of `batch` for as long as the options say; what
 * counts is what Postgres recorded inside the window.
 */
export async function handlersRun(options: {
  dbUrl: string;
  natsUrl: string;
  concurrency: number;
  sustain: SustainOptions;
  /** @default 1 */
  hubs?: number;
  /** @default 1 */
  sidecars?: number;
  /** Started on every sidecar. @default ["python", "typescript"] */
  workers?: WorkerLanguage[];
  profileDir?: string;
  progress: (text: string) => void;
}): Promise<HandlersResult> {
  const hubs = options.hubs ?? 1;
  const sidecars = options.sidecars ?? 1;
  const languages = options.workers ?? ["python", "typescript"];
  const suffix = randomBytes(4).toString("hex");
  await using database = await createScratchDatabase(options.dbUrl, "taskframe_bench");
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const workers: ChildProcess[] = [];
  const cluster = await startLocalCluster({
    dbUrl: database.url,
    natsUrl: options.natsUrl,
    namespace: `bench${suffix}`,
    dir,
    hubs,
    sidecars,
    slots: 2,
    logLevel: "error",
    ...(options.profileDir ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", options.profileDir] } : {}),
  });
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    for (let i = 0; i < sidecars; i++) {
      for (const language of languages)
        workers.push(startNoopWorker(cluster.runnerSocket(i), language, options.concurrency));
    }
    // runs go to every hub in turn, as behind a load balancer
    const clients = cluster.hubUrls.map((baseUrl) =>
      createClient(HubService, createConnectTransport({ baseUrl, httpVersion: "1.1" })),
    );
    let submitted = 0;
    const spec = create(RunSpecSchema, {
      name: "bench-handlers",
      tasks: Array.from({ length: options.sustain.batch }, (_, i) =>
        create(TaskSpecSchema, { name: `h${i}`, target: { case: "handler", value: { handler: "noop" } } }),
      ),
    });
    const window: { start?: Date; end?: Date } = {};
    const wal: { start?: string; end?: string } = {};
    const databaseName = new URL(database.url).pathname.slice(1);
    const cpu = cpuShare({
      hub: () => cluster.hubs.map((h) => h.child.pid!),
      sidecar: () => cluster.sidecars.map((c) => c.child.pid!),
      workers: () => workers.map((w) => w.pid!),
      nats: natsServerPids,
      postgres: () => postgresPids(databaseName),
    });
    let cpuSeconds: Record<string, number> = {};
    await sustain(
      options.sustain,
      async () => {
        await clients[submitted++ % clients.length]!.submitRun({ run: spec });
      },
      async () => {
        const [row] = await sql<{ n: number }[]>`
          select coalesce(sum(remaining_tasks), 0)::int as n from runs where finished_at is null`;
        return row?.n ?? 0;
      },
      options.progress,
      async (edge) => {
        const [row] = await sql<{ now: Date; wal: string }[]>`
          select clock_timestamp() as now, pg_current_wal_lsn()::text as wal`;
        window[edge] = row!.now;
        wal[edge] = row!.wal;
        if (edge === "start") cpu.start();
        else cpuSeconds = cpu.end();
      },
    );
    const counted = await countWindow(sql, window.start!, window.end!);
    return {
      ...counted,
      storage: await storagePerTask(sql, wal, counted.finished),
      cpuMicrosPerTask: Object.fromEntries(
        Object.entries(cpuSeconds).map(([group, seconds]) => [
          group,
          Math.round((seconds * 1e6) / Math.max(1, counted.finished)),
        ]),
      ),
      hubs,
      sidecars,
      hubPeakRssBytes: cluster.hubs.map((h) => peakRssBytes(h.child.pid!) ?? 0),
      sidecarPeakRssBytes: cluster.sidecars.map((c) => peakRssBytes(c.child.pid!) ?? 0),
      workers: languages,
    };
  } finally {
    await sql.end();
    // workers drain first: they exit before the sidecar they talk to
    await Promise.all(workers.map((child) => stopChild(child)));
    await cluster.stop();
    await cluster.deleteStreams().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A no-op SDK worker on a sidecar's Runner socket. */
function startNoopWorker(socket: string, language: WorkerLanguage, concurrency: number): ChildProcess {
  const env = {
    ...process.env,
    TASKFRAME_SOCKET: socket,
    BENCH_CONCURRENCY: String(concurrency),
    PYTHONPATH: packagePath("sdks/python"),
  };
  const [command, args] =
    language === "python"
      ? ["python3", [packagePath("bench/workers/noop.py")]]
      : [process.execPath, [packagePath("bench/workers/noop.mjs")]];
  return spawn(command, args, { env, stdio: ["ignore", "ignore", "inherit"], cwd: packagePath(".") });
}

/** WAL per task finished in the window, and table bytes per task at the end. */
async function storagePerTask(
  sql: postgres.Sql,
  wal: { start?: string; end?: string },
  finishedInWindow: number,
): Promise<StoragePerTask> {
  const [diff] = await sql<{ bytes: string; tasks: number }[]>`
    select pg_wal_lsn_diff(${wal.end!}::pg_lsn, ${wal.start!}::pg_lsn)::text as bytes,
           (select count(*)::int from tasks) as tasks`;
  const sizes = await sql<{ name: string; bytes: string }[]>`
    select relname as name, pg_total_relation_size(relid)::text as bytes
    from pg_stat_user_tables where relname in ('tasks', 'task_events', 'outbox', 'runs')`;
  const tasks = Math.max(1, diff!.tasks);
  return {
    walBytes: Math.round(Number(diff!.bytes) / Math.max(1, finishedInWindow)),
    tableBytes: Object.fromEntries(sizes.map((r) => [r.name, Math.round(Number(r.bytes) / tasks)])),
  };
}

/** What Postgres recorded between `start` and `end` (its own clock). */
async function countWindow(sql: postgres.Sql, start: Date, end: Date): Promise<SustainedResult> {
  const [counts] = await sql<{ submitted: number; started: number; finished: number }[]>`
    select count(*) filter (where created_at >= ${start} and created_at < ${end})::int as submitted,
           count(*) filter (where started_at >= ${start} and started_at < ${end})::int as started,
           count(*) filter (where finished_at >= ${start} and finished_at < ${end})::int as finished
    from tasks`;
  const latencies = await sql<{ start_ms: number; end_ms: number | null }[]>`
    select (extract(epoch from started_at - created_at) * 1000)::float8 as start_ms,
           (extract(epoch from finished_at - created_at) * 1000)::float8 as end_ms
    from tasks where created_at >= ${start} and created_at < ${end} and started_at is not null`;
  return {
    windowSeconds: (end.getTime() - start.getTime()) / 1000,
    submitted: counts!.submitted,
    started: counts!.started,
    finished: counts!.finished,
    submitToStart: percentiles(latencies.map((l) => l.start_ms)),
    submitToEnd: percentiles(latencies.flatMap((l) => (l.end_ms === null ? [] : [l.end_ms]))),
  };
}

/** The peer: the same no-op jobs through BullMQ on Redis (addBulk, one worker at `concurrency`), sustained the same way. */
export async function bullmqRun(options: {
  redisUrl: string;
  concurrency: number;
  sustain: SustainOptions;
  progress: (text: string) => void;
}): Promise<SustainedResult> {
  const redis = new URL(options.redisUrl);
  const connection = { host: redis.hostname, port: Number(redis.port || 6379) };
  const name = `taskframe-bench-${randomBytes(4).toString("hex")}`;
  const queue = new Queue(name, { connection });
  let window: { start: number; end: number } | undefined;
  const inWindow = (t: number) => window !== undefined && t >= window.start && t < window.end;
  let added = 0;
  let finished = 0;
  let started = 0;
  const toStart: number[] = [];
  const toEnd: number[] = [];
  let pending = 0;
  const worker = new BullWorker(
    name,
    async (job) => {
      const startedAt = job.processedOn ?? Date.now();
      if (inWindow(startedAt)) started += 1;
      if (inWindow(job.timestamp)) toStart.push(startedAt - job.timestamp);
    },
    { connection, concurrency: options.concurrency, removeOnComplete: { count: 0 } },
  );
  worker.on("completed", (job) => {
    pending -= 1;
    const end = job.finishedOn ?? Date.now();
    if (inWindow(end)) finished += 1;
    if (inWindow(job.timestamp)) toEnd.push(end - job.timestamp);
  });
  const jobs = Array.from({ length: options.sustain.batch }, (_, i) => ({ name: "noop", data: { i } }));
  try {
    await sustain(
      options.sustain,
      async () => {
        const at = Date.now();
        await queue.addBulk(jobs);
        pending += jobs.length;
        if (inWindow(at)) added += jobs.length;
      },
      async () => pending,
      options.progress,
      async (edge) => {
        if (edge === "start") window = { start: Date.now(), end: Number.POSITIVE_INFINITY };
        else if (window) window.end = Date.now();
      },
    );
    return {
      windowSeconds: (window!.end - window!.start) / 1000,
      submitted: added,
      started,
      finished,
      submitToStart: percentiles(toStart),
      submitToEnd: percentiles(toEnd),
    };
  } finally {
    await worker.close(true);
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

export const handlersScenario: Scenario = {
  name: "handlers",
  summary:
    "no-op handler tasks through 1 hub + 1 sidecar (processes, over Postgres and NATS) served by one\n" +
    "Python and one TypeScript SDK worker, submitted in runs of 1000 for 10 s of warm-up and then\n" +
    "--seconds (default 60), beside BullMQ on Redis doing the same; counts what was recorded in the window",
  async run({ seconds = DEFAULT_SUSTAIN.windowSeconds, concurrency, db, nats, redis, profileDir, progress }) {
    const sustain = { ...DEFAULT_SUSTAIN, windowSeconds: seconds };
    progress(
      `  taskframe: 1 hub + 1 sidecar, Python and TypeScript workers at concurrency ${concurrency} ...`,
    );
    const ours = await handlersRun({
      dbUrl: db,
      natsUrl: nats,
      concurrency,
      sustain,
      progress,
      ...(profileDir ? { profileDir } : {}),
    });
    progress(`  BullMQ on Redis, one worker at concurrency ${concurrency} ...`);
    const bull = await bullmqRun({ redisUrl: redis, concurrency, sustain, progress });
    const row = (runner: string, result: SustainedResult, peakRss: string, what: string) => ({
      runner,
      tasks: result.finished,
      seconds: result.windowSeconds,
      peakRss,
      note:
        `${what}; submitted ${Math.round(result.submitted / result.windowSeconds)}/s, started ${Math.round(result.started / result.windowSeconds)}/s; ` +
        `submit->start p50 ${ms(result.submitToStart.p50)} p99 ${ms(result.submitToStart.p99)}`,
    });
    const ratio = ours.finished / ours.windowSeconds / (bull.finished / bull.windowSeconds);
    return {
      data: { sustain, taskframe: ours, bullmq: bull, ratioToBullmq: ratio },
      tables: [
        throughputTable(
          `handlers: no-op tasks finished in a ${seconds} s window after ${sustain.warmupSeconds} s of warm-up (taskframe ${ratio.toFixed(2)}x BullMQ)`,
          [
            row(
              "taskframe hub + sidecar, Python & TS workers",
              ours,
              `hub ${mb(ours.hubPeakRssBytes[0])}; sidecar ${mb(ours.sidecarPeakRssBytes[0])}`,
              "every transition in Postgres",
            ),
            row(`BullMQ (Redis), 1 worker x ${concurrency}`, bull, "", "completed jobs removed"),
          ],
        ),
        {
          title:
            "handlers: CPU per finished task, by process (µs; this box can give " +
            `${Math.round((availableParallelism() * 1e6) / 11_574)} µs a task in all at 1B tasks/day)`,
          header: [...Object.keys(ours.cpuMicrosPerTask), "sum"],
          rows: [
            [
              ...Object.values(ours.cpuMicrosPerTask).map(String),
              String(Object.values(ours.cpuMicrosPerTask).reduce((a, b) => a + b, 0)),
            ],
          ],
        },
        {
          title: "handlers: what each task cost Postgres (for the capacity model in docs/performance.md)",
          header: [
            "WAL per finished task",
            ...Object.keys(ours.storage.tableBytes).map((t) => `${t} per task`),
          ],
          rows: [
            [`${ours.storage.walBytes} B`, ...Object.values(ours.storage.tableBytes).map((b) => `${b} B`)],
          ],
        },
      ],
    };
  },
};
