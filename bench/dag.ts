import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Worker as BullWorker, type FlowJob, FlowProducer, QueueEvents } from "bullmq";
import postgres from "postgres";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import {
  type RunSpec,
  RunSpecSchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../core/package-root.js";
import { RunState } from "../core/states.js";
import { startLocalCluster } from "../embedded/local-cluster.js";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import { stopChild } from "./local-handlers.js";
import { peakRssBytes } from "./machine.js";
import { type BenchContext, mb, ms, percentiles, type Scenario, type Table } from "./scenario.js";
import { seededRandom } from "./seeded-random.js";

export type DagShape = "chain" | "fanout" | "layered";

/**
 * The widest fan-in of one task. A task's work item carries its spec, `needs` and all, and one over
 * NATS's max_payload (1 MB) is never published: a sink needing a million tasks (~9 MB) would wait
 * forever. 100,000 needs fit.
 */
const MAX_FAN_IN = 100_000;

/** Layers of the random layered DAG. */
const LAYERS = 10;

const noopTask = (name: string, needs: string[]): TaskSpec =>
  create(TaskSpecSchema, { name, needs, target: { case: "handler", value: { handler: "noop" } } });

/**
 * `count` no-op handler tasks as a DAG:
 * - `chain`: each task needs the one before it;
 * - `fanout`: a root, `count - 2` tasks that need it, and a sink that needs them all (above 100,000,
 *   through joins of 100,000: see MAX_FAN_IN);
 * - `layered`: 10 layers of `count / 10`; each task past the first layer needs 1 to 3 random
 *   tasks of the layer before (seeded, so the same DAG every time).
 */
export function noopDag(shape: DagShape, count: number, seed = 1): RunSpec {
  const tasks: TaskSpec[] = [];
  if (shape === "chain") {
    for (let i = 0; i < count; i++) tasks.push(noopTask(`t${i}`, i === 0 ? [] : [`t${i - 1}`]));
  } else if (shape === "fanout") {
    // above MAX_FAN_IN, the middle tasks end in joins of MAX_FAN_IN each, and the sink needs the joins
    const joins = count - 2 > MAX_FAN_IN ? Math.ceil((count - 2) / (MAX_FAN_IN + 1)) : 0;
    const middle = Math.max(0, count - 2 - joins);
    tasks.push(noopTask("root", []));
    const names: string[] = [];
    for (let i = 0; i < middle; i++) {
      names.push(`t${i}`);
      tasks.push(noopTask(`t${i}`, ["root"]));
    }
    const last: string[] = [];
    for (let j = 0; j < joins; j++) {
      last.push(`j${j}`);
      tasks.push(noopTask(`j${j}`, names.slice(j * MAX_FAN_IN, (j + 1) * MAX_FAN_IN)));
    }
    if (count > 1) tasks.push(noopTask("sink", joins > 0 ? last : names.length > 0 ? names : ["root"]));
  } else {
    const random = seededRandom(seed);
    const perLayer = Math.ceil(count / LAYERS);
    let previous: string[] = [];
    for (let layer = 0; tasks.length < count; layer++) {
      const current: string[] = [];
      for (let i = 0; i < perLayer && tasks.length < count; i++) {
        const name = `l${layer}-${i}`;
        const needs = new Set<string>();
        const edges = previous.length === 0 ? 0 : 1 + Math.floor(random() * 3);
        for (let e = 0; e < edges; e++) needs.add(previous[Math.floor(random() * previous.length)]!);
        tasks.push(noopTask(name, [...needs]));
        current.push(name);
      }
      previous = current;
    }
  }
  return create(RunSpecSchema, { name: `bench-${shape}-${count}`, tasks });
}

const edgesOf = (spec: RunSpec) => spec.tasks.reduce((sum, t) => sum + t.needs.length, 0);

/** A hub and a sidecar (processes) over a scratch database, with one TypeScript SDK worker. */
export interface NoopCluster extends AsyncDisposable {
  client: Client<typeof HubService>;
  /** The scratch database, for what the API does not say (timestamps, outputs). */
  sql: postgres.Sql;
  hubPeakRssBytes(): number;
  sidecarPeakRssBytes(): number;
}

export async function startNoopCluster(
  context: Pick<BenchContext, "db" | "nats" | "slots" | "concurrency" | "profileDir">,
  worker = packagePath("bench/workers/noop.mjs"),
): Promise<NoopCluster> {
  const database = await createScratchDatabase(context.db, "taskframe_bench");
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const workers: ChildProcess[] = [];
  let cluster: Awaited<ReturnType<typeof startLocalCluster>> | undefined;
  let sql: postgres.Sql | undefined;
  const stop = async () => {
    // workers drain first: they exit before the sidecar they talk to
    await Promise.all(workers.map((child) => stopChild(child)));
    await sql?.end();
    await cluster?.stop();
    await cluster?.deleteStreams().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await database[Symbol.asyncDispose]();
  };
  try {
    cluster = await startLocalCluster({
      dbUrl: database.url,
      natsUrl: context.nats,
      namespace: `bench${randomBytes(4).toString("hex")}`,
      dir,
      hubs: 1,
      sidecars: 1,
      slots: context.slots,
      logLevel: "error",
      ...(context.profileDir ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", context.profileDir] } : {}),
    });
    workers.push(
      spawn(process.execPath, [worker], {
        env: {
          ...process.env,
          TASKFRAME_SOCKET: cluster.runnerSocket(0),
          BENCH_CONCURRENCY: String(context.concurrency),
        },
        stdio: ["ignore", "ignore", "inherit"],
        cwd: packagePath("."),
      }),
    );
    sql = postgres(database.url, { max: 1, onnotice: () => {} });
    const started = cluster;
    return {
      client: createClient(
        HubService,
        createConnectTransport({ baseUrl: started.hubUrls[0]!, httpVersion: "1.1" }),
      ),
      sql,
      hubPeakRssBytes: () => peakRssBytes(started.hubs[0]!.child.pid!) ?? 0,
      sidecarPeakRssBytes: () => peakRssBytes(started.sidecars[0]!.child.pid!) ?? 0,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function withNoopCluster<T>(
  context: Parameters<typeof startNoopCluster>[0],
  work: (cluster: NoopCluster) => Promise<T>,
): Promise<T> {
  await using cluster = await startNoopCluster(context);
  return await work(cluster);
}

/**
 * Polls the run's row until it has finished, and returns its state. Gives up when no task of it
 * has ended for `stallMs` (the state is then "STALLED"; releasing the dependents of a task
 * that a million need takes minutes, in one transaction). Polling the row costs the hub nothing,
 * where WatchRun's first message would list every task of a million-task run.
 */
export async function waitForRun(
  sql: postgres.Sql,
  runId: string,
  { pollMs = 20, stallMs = 600_000 } = {},
): Promise<{ state: string; remaining: number }> {
  let remaining = Number.NaN;
  let movedAt = performance.now();
  for (;;) {
    const [row] = await sql<{ state: number; remaining_tasks: number }[]>`
      select state, remaining_tasks from runs where id = ${runId}`;
    if (!row) throw new Error(`run ${runId} is not in the database`);
    if (row.state !== RunState.RUNNING)
      return { state: RunState[row.state] ?? String(row.state), remaining: 0 };
    if (row.remaining_tasks !== remaining) {
      remaining = row.remaining_tasks;
      movedAt = performance.now();
    } else if (performance.now() - movedAt > stallMs) {
      return { state: "STALLED", remaining };
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export interface DagRow {
  shape: DagShape;
  tasks: number;
  edges: number;
  /** The client's protobuf encoding of the RunSpec alone (measured apart; SubmitRun does it again). */
  encodeSeconds: number;
  requestBytes: number;
  /** The SubmitRun call: encode, transfer, validate, insert, queue the roots, answer. */
  submitSeconds: number;
  /** SubmitRun to the run's end. */
  totalSeconds: number;
  /** The hub's peak resident set by the time SubmitRun answered. */
  hubPeakRssAfterSubmitBytes: number;
  state: string;
  hubPeakRssBytes: number;
  sidecarPeakRssBytes: number;
  /** The machine's 1-minute load average at the end: the box is shared. */
  loadAverage: number;
}

export async function runDag(cluster: NoopCluster, shape: DagShape, count: number): Promise<DagRow> {
  const spec = noopDag(shape, count);
  const encodeStarted = performance.now();
  const requestBytes = toBinary(RunSpecSchema, spec).length;
  const encodeSeconds = (performance.now() - encodeStarted) / 1000;
  const started = performance.now();
  const { run } = await cluster.client.submitRun({ run: spec });
  const submitted = performance.now();
  const hubPeakRssAfterSubmitBytes = cluster.hubPeakRssBytes();
  const { state } = await waitForRun(cluster.sql, run!.id, {
    pollMs: count <= 10_000 ? 5 : 20,
  });
  if (state === "STALLED") await cluster.client.cancelRun({ runId: run!.id, reason: "stalled" });
  const totalSeconds = (performance.now() - started) / 1000;
  return {
    shape,
    tasks: count,
    edges: edgesOf(spec),
    encodeSeconds,
    requestBytes,
    submitSeconds: (submitted - started) / 1000,
    totalSeconds,
    hubPeakRssAfterSubmitBytes,
    state,
    hubPeakRssBytes: cluster.hubPeakRssBytes(),
    sidecarPeakRssBytes: cluster.sidecarPeakRssBytes(),
    loadAverage: loadavg()[0]!,
  };
}

export interface ChainResult {
  tasks: number;
  /** End to end, SubmitRun to the end of WatchRun's stream, per repetition (ms). */
  samplesMs: number[];
  p50Ms: number;
  bestMs: number;
  /** From the record: the first task's creation to the last one's end, per repetition (ms). */
  recordedMs: number[];
}

/** A chain of `length` no-op tasks, `repeat` times (after one warm-up), watched as a client would. */
async function runChain(cluster: NoopCluster, length: number, repeat: number): Promise<ChainResult> {
  const samplesMs: number[] = [];
  const recordedMs: number[] = [];
  for (let i = 0; i <= repeat; i++) {
    const spec = noopDag("chain", length);
    const started = performance.now();
    const { run } = await cluster.client.submitRun({ run: spec });
    for await (const _ of cluster.client.watchRun({ runId: run!.id })) {
      // the stream ends when the run has finished
    }
    const elapsed = performance.now() - started;
    const final = (await cluster.client.getRun({ runId: run!.id })).run!;
    if (final.state !== RunState.SUCCEEDED) throw new Error(`chain run ended ${RunState[final.state]}`);
    if (i === 0) continue; // warm-up: connections, JIT, the queue's consumers
    samplesMs.push(elapsed);
    const [span] = await cluster.sql<{ ms: number }[]>`
      select (extract(epoch from max(finished_at) - min(created_at)) * 1000)::float8 as ms
      from tasks where run_id = ${run!.id}`;
    recordedMs.push(span!.ms);
  }
  const sorted = [...samplesMs];
  return {
    tasks: length,
    samplesMs,
    p50Ms: percentiles(sorted).p50,
    bestMs: Math.min(...samplesMs),
    recordedMs,
  };
}

/** The same chain as a BullMQ flow (each job the only child of the next), on Redis. */
async function bullmqChainMs(redisUrl: string, length: number, repeat: number): Promise<number[]> {
  const redis = new URL(redisUrl);
  const connection = { host: redis.hostname, port: Number(redis.port || 6379) };
  const queueName = `taskframe-bench-chain-${randomBytes(4).toString("hex")}`;
  const flows = new FlowProducer({ connection });
  const events = new QueueEvents(queueName, { connection });
  const worker = new BullWorker(queueName, async () => undefined, { connection, concurrency: 8 });
  const samples: number[] = [];
  try {
    await events.waitUntilReady();
    await worker.waitUntilReady();
    for (let i = 0; i <= repeat; i++) {
      let job: FlowJob = { name: "t0", queueName, data: {} };
      for (let t = 1; t < length; t++) job = { name: `t${t}`, queueName, data: {}, children: [job] };
      const started = performance.now();
      const added = await flows.add(job);
      await added.job.waitUntilFinished(events, 60_000);
      if (i > 0) samples.push(performance.now() - started);
    }
    return samples;
  } finally {
    await worker.close();
    await events.close();
    await flows.close();
  }
}

/** `make -j parallel` over the same DAG, each target running /bin/true; seconds. */
export function makeDagSeconds(spec: RunSpec, parallel: number): number {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-make-"));
  try {
    // every task a phony target, so that make runs each one
    const names = spec.tasks.map((t) => t.name);
    const lines = [`all: ${names.join(" ")}`, `.PHONY: all ${names.join(" ")}`];
    for (const task of spec.tasks) lines.push(`${task.name}: ${task.needs.join(" ")}\n\t@true`);
    writeFileSync(join(dir, "Makefile"), `${lines.join("\n")}\n`);
    const started = performance.now();
    const result = spawnSync("make", ["-s", "-j", String(parallel), "-C", dir], { stdio: "ignore" });
    if (result.status !== 0) throw new Error(`make failed (${result.status})`);
    return (performance.now() - started) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The default sizes, or those below --tasks and --tasks itself. */
export function dagSizes(largest: number | undefined): number[] {
  const defaults = [1_000, 10_000, 100_000, 1_000_000];
  if (largest === undefined) return defaults;
  return [...defaults.filter((size) => size < largest), largest];
}

/** Peers run up to this size: make forks a process per target, and the box is shared. */
const MAKE_UP_TO = 10_000;
const CHAIN = 40;
const CHAIN_REPEAT = 5;

const seconds = (n: number) => n.toFixed(2);
const perTaskUs = (totalSeconds: number, tasks: number) => ((totalSeconds * 1e6) / tasks).toFixed(0);

export const dagScenario: Scenario = {
  name: "dag",
  summary:
    "no-op handler DAGs (chain, fan-out/fan-in, random 10-layer) of 1k, 10k, 100k and 1M tasks through\n" +
    "1 hub + 1 sidecar + a TypeScript worker: submit and total seconds, µs per task (--tasks sets the\n" +
    "largest); a chain of 40 end to end beside a BullMQ flow; make -j beside the DAGs up to 10k\n" +
    "(default 1000000; 100000 within all)",
  async run(context) {
    const { progress, slots } = context;
    // a million-task DAG takes many minutes on a small box: `all` stops at 100k unless told
    const sizes = dagSizes(context.tasks ?? (context.partOfAll ? 100_000 : undefined));
    const rows: DagRow[] = [];
    const makeRows: { shape: DagShape; tasks: number; seconds: number }[] = [];

    progress(`  chain of ${CHAIN}, ${CHAIN_REPEAT} times after a warm-up ...`);
    let chain: ChainResult;
    {
      await using cluster = await startNoopCluster(context);
      chain = await runChain(cluster, CHAIN, CHAIN_REPEAT);
    }
    progress(`  BullMQ flow chain of ${CHAIN} ...`);
    const bullChain = await bullmqChainMs(context.redis, CHAIN, CHAIN_REPEAT).catch((error: unknown) => {
      progress(`  BullMQ skipped: ${String(error)}`);
      return undefined;
    });

    for (const size of sizes) {
      const shapes: DagShape[] = size <= 1_000 ? ["chain", "fanout", "layered"] : ["fanout", "layered"];
      for (const shape of shapes) {
        progress(`  ${shape} of ${size} ...`);
        // a fresh database per DAG: each starts from empty tables and an idle hub
        const row = await withNoopCluster(context, (cluster) => runDag(cluster, shape, size));
        progress(
          `    submit ${seconds(row.submitSeconds)} s, total ${seconds(row.totalSeconds)} s, ${row.state}`,
        );
        rows.push(row);
        if (size <= MAKE_UP_TO && shape !== "chain") {
          progress(`  make -j ${slots}, ${shape} of ${size} ...`);
          makeRows.push({ shape, tasks: size, seconds: makeDagSeconds(noopDag(shape, size), slots) });
        }
      }
    }

    const tables: Table[] = [
      {
        title: `dag: no-op handler DAGs through 1 hub + 1 sidecar + 1 TypeScript worker (concurrency ${context.concurrency}), Postgres + NATS`,
        header: ["shape", "tasks", "edges", "submit s", "total s", "tasks/s", "µs per task", "note"],
        rows: rows.map((r) => [
          r.shape,
          String(r.tasks),
          String(r.edges),
          seconds(r.submitSeconds),
          seconds(r.totalSeconds),
          (r.tasks / r.totalSeconds).toFixed(0),
          perTaskUs(r.totalSeconds, r.tasks),
          `${r.state}; submit ${perTaskUs(r.submitSeconds, r.tasks)} µs/task (client encode ${seconds(r.encodeSeconds)} s, ${mb(r.requestBytes)}); ` +
            `peak RSS hub ${mb(r.hubPeakRssAfterSubmitBytes)} by the submit's end, ${mb(r.hubPeakRssBytes)} by the run's, sidecar ${mb(r.sidecarPeakRssBytes)}; load ${r.loadAverage.toFixed(1)}`,
        ]),
      },
      {
        title:
          `dag peers: make -j ${slots} over the same DAGs, each target /bin/true (a process per task, no record), ` +
          `up to ${MAKE_UP_TO} tasks (100k took 80-100 s here); BullMQ flows cannot fan out (a job has one parent)`,
        header: ["shape", "tasks", "total s", "tasks/s", "µs per task"],
        rows: makeRows.map((r) => [
          r.shape,
          String(r.tasks),
          seconds(r.seconds),
          (r.tasks / r.seconds).toFixed(0),
          perTaskUs(r.seconds, r.tasks),
        ]),
      },
      {
        title: `chain: ${CHAIN} sequential no-op tasks end to end (SubmitRun to the end of WatchRun), ${CHAIN_REPEAT} runs after a warm-up`,
        header: ["runner", "p50", "best", "per hop (p50)", "note"],
        rows: [
          [
            "taskframe 1 hub + 1 sidecar + TS worker",
            ms(chain.p50Ms),
            ms(chain.bestMs),
            ms(chain.p50Ms / CHAIN),
            `measured; recorded first created -> last finished p50 ${ms(percentiles([...chain.recordedMs]).p50)}; target <= 400 ms`,
          ],
          ...(bullChain
            ? [
                [
                  "BullMQ flow (Redis), 1 worker",
                  ms(percentiles([...bullChain]).p50),
                  ms(Math.min(...bullChain)),
                  ms(percentiles([...bullChain]).p50 / CHAIN),
                  "measured; each job the only child of the next",
                ],
              ]
            : []),
          [
            "Hatchet, Temporal",
            "~1-3 s",
            "",
            "~25-75 ms",
            "published, not measured here (Windmill's benchmark, 2 vCPU m4.large)",
          ],
          ["Airflow", "~56 s", "", "~1.4 s", "published, not measured here (Windmill's benchmark)"],
        ],
      },
    ];
    return { data: { sizes, rows, make: makeRows, chain, bullmqChainMs: bullChain }, tables };
  },
};
