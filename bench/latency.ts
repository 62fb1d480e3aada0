import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { Queue } from "bullmq";
import postgres from "postgres";
import type { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { spawnBullWorker, startHandlersCluster, stopChild } from "./local-handlers.js";
import { ms, type Percentiles, percentiles, type Scenario, type Table } from "./scenario.js";
import { submitAndWait } from "./workloads.js";

/**
 * Tasks per run (per addBulk for BullMQ): the maximum is measured with runs of
 * this size, and every load sends the same runs, one every RUN_SIZE/rate s.
 * Per-run costs dominate small runs (see the note in the report), so runs of
 * one size keep the loads fractions of one maximum.
 */
const RUN_SIZE = 10;
const LOADS = [0.25, 0.5, 0.75] as const;
/** Arrivals in the first second of each load are left out of the percentiles (connections, JIT). */
const WARMUP_MS = 1_000;
/** A run sent this much after its time counts as late (the bench itself could not keep up). */
const LATE_MS = 10;
const TARGET = { load: 0.5, startP50: 5, startP99: 25 };

export interface LoadResult {
  runner: string;
  load: number;
  /** Arrivals per second asked for. */
  rate: number;
  tasks: number;
  /** Tasks that had not ended when the bench stopped waiting. */
  unfinished: number;
  /** Scheduled arrival (the tick's time, not when its timer fired) to start. */
  toStart: Percentiles;
  /** Scheduled arrival to the end of the task (the sidecar's or worker's clock). */
  toEnd: Percentiles;
  /** taskframe: scheduled arrival to the run's row (the hub's created_at). */
  toCreated?: Percentiles;
  /** taskframe: scheduled arrival to the terminal state's commit (updated_at, now() of the hub's transaction). */
  toRecorded?: Percentiles;
  /** Scheduled arrival to the submit call's answer, per tick. */
  submitAnswer: Percentiles;
  submitErrors: number;
  /** Runs sent more than LATE_MS after their time. */
  lateTicks: number;
  /** Seconds from the last arrival until every task had ended. */
  drainSeconds: number;
}

interface Tick {
  /** Scheduled time, epoch ms. */
  atMs: number;
  first: number;
  count: number;
}

/** `seconds` of arrivals at `rate` tasks/s from `startMs` (epoch): a run of RUN_SIZE every RUN_SIZE/rate s. */
function schedule(rate: number, seconds: number, startMs: number): Tick[] {
  const ticks: Tick[] = [];
  const total = Math.round(rate * seconds);
  const everyMs = (1000 * RUN_SIZE) / rate;
  for (let k = 0; k * RUN_SIZE < total; k++) {
    const first = k * RUN_SIZE;
    ticks.push({ atMs: startMs + k * everyMs, first, count: Math.min(RUN_SIZE, total - first) });
  }
  return ticks;
}

/**
 * Open loop: each tick is sent when its time comes whatever happened to the
 * ones before (nothing waits for an answer), so a slow system cannot slow
 * the arrivals down; late timers only add to the measured latency.
 */
async function openLoop(
  ticks: readonly Tick[],
  send: (tick: Tick) => Promise<unknown>,
): Promise<{ answers: number[]; errors: number; lateTicks: number; firstError: string | undefined }> {
  const answers: number[] = [];
  const inFlight: Promise<void>[] = [];
  let errors = 0;
  let lateTicks = 0;
  let firstError: string | undefined;
  for (const tick of ticks) {
    const wait = tick.atMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (-wait > LATE_MS) lateTicks++;
    inFlight.push(
      send(tick).then(
        () => {
          answers.push(Date.now() - tick.atMs);
        },
        (error: unknown) => {
          errors++;
          firstError ??= (error as Error).message;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return { answers, errors, lateTicks, firstError };
}

const noopTask = (i: number) =>
  create(TaskSpecSchema, { name: `t${i}`, target: { case: "handler", value: { handler: "noop" } } });

const sleep = (msToWait: number) => new Promise((resolve) => setTimeout(resolve, msToWait));

/** Tasks ended in runs called `name`. */
async function endedTasks(sql: postgres.Sql, name: string): Promise<{ total: number; ended: number }> {
  const [row] = await sql<{ total: number; ended: number }[]>`
    select coalesce(sum(total_tasks), 0)::int as total, coalesce(sum(total_tasks - remaining_tasks), 0)::int as ended
    from runs where name = ${name}`;
  return row!;
}

async function waitForRuns(sql: postgres.Sql, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { total, ended } = await endedTasks(sql, name);
    if (ended >= total || Date.now() > deadline) return;
    await sleep(50);
  }
}

/**
 * The most no-op handler tasks a second the cluster ends, closed loop: runs
 * of `runSize` submitted (up to 8 at once) while fewer than `backlog` tasks
 * are unfinished; counted after a warm-up fifth of the time.
 */
async function maximumRate(
  client: Client<typeof HubService>,
  sql: postgres.Sql,
  seconds: number,
  runSize: number,
  backlog: number,
): Promise<{ rate: number; ended: number; seconds: number }> {
  const name = "lat-max";
  const startedAt = performance.now();
  const warmEnd = startedAt + (seconds * 1000) / 5;
  const end = startedAt + seconds * 1000;
  let submitted = 0;
  let inFlight = 0;
  let next = 0;
  let failure: unknown;
  let mark: { at: number; ended: number } | undefined;
  let ended = 0;
  while (performance.now() < end) {
    if (failure) throw failure;
    ended = (await endedTasks(sql, name)).ended;
    if (!mark && performance.now() >= warmEnd) mark = { at: performance.now(), ended };
    while (submitted - ended < backlog && inFlight < 8) {
      const first = next;
      next += runSize;
      submitted += runSize;
      inFlight++;
      void client
        .submitRun({
          run: create(RunSpecSchema, {
            name,
            tasks: Array.from({ length: runSize }, (_, i) => noopTask(first + i)),
          }),
        })
        .then(
          () => inFlight--,
          (error: unknown) => {
            failure = error;
          },
        );
    }
    await sleep(20);
  }
  ended = (await endedTasks(sql, name)).ended;
  const measuredSeconds = (performance.now() - mark!.at) / 1000;
  await waitForRuns(sql, name, 60_000);
  return {
    rate: (ended - mark!.ended) / measuredSeconds,
    ended: ended - mark!.ended,
    seconds: measuredSeconds,
  };
}

async function taskframeAtRate(
  client: Client<typeof HubService>,
  sql: postgres.Sql,
  load: number,
  rate: number,
  seconds: number,
): Promise<LoadResult> {
  const name = `lat-${Math.round(load * 100)}`;
  const ticks = schedule(rate, seconds, Date.now() + 200);
  const scheduled = new Float64Array(Math.round(rate * seconds));
  for (const tick of ticks) scheduled.fill(tick.atMs, tick.first, tick.first + tick.count);
  const sent = await openLoop(ticks, (tick) =>
    client.submitRun({
      run: create(RunSpecSchema, {
        name,
        tasks: Array.from({ length: tick.count }, (_, j) => noopTask(tick.first + j)),
      }),
    }),
  );
  const lastArrival = ticks.at(-1)!.atMs;
  await waitForRuns(sql, name, Math.max(30_000, seconds * 2_000));
  const drainSeconds = (Date.now() - lastArrival) / 1000;
  const rows = await sql<{ name: string; c: number; s: number | null; f: number | null; u: number }[]>`
    select t.name,
      extract(epoch from t.created_at)::float8 * 1000 as c,
      extract(epoch from t.started_at)::float8 * 1000 as s,
      extract(epoch from t.finished_at)::float8 * 1000 as f,
      extract(epoch from t.updated_at)::float8 * 1000 as u
    from tasks t join runs r on r.id = t.run_id where r.name = ${name}`;
  const from = ticks[0]!.atMs + WARMUP_MS;
  const toStart: number[] = [];
  const toEnd: number[] = [];
  const toCreated: number[] = [];
  const toRecorded: number[] = [];
  let unfinished = 0;
  for (const row of rows) {
    const at = scheduled[Number(row.name.slice(1))]!;
    if (row.f === null) unfinished++;
    if (at < from) continue;
    toCreated.push(row.c - at);
    if (row.s !== null) toStart.push(row.s - at);
    if (row.f !== null) {
      toEnd.push(row.f - at);
      toRecorded.push(row.u - at);
    }
  }
  if (sent.firstError) throw new Error(`submitRun failed ${sent.errors} times: ${sent.firstError}`);
  return {
    runner: "taskframe",
    load,
    rate,
    tasks: scheduled.length,
    unfinished: unfinished + (scheduled.length - rows.length),
    toStart: percentiles(toStart),
    toEnd: percentiles(toEnd),
    toCreated: percentiles(toCreated),
    toRecorded: percentiles(toRecorded),
    submitAnswer: percentiles(sent.answers),
    submitErrors: sent.errors,
    lateTicks: sent.lateTicks,
    drainSeconds,
  };
}

async function bullmqAtRate(queue: Queue, load: number, rate: number, seconds: number): Promise<LoadResult> {
  const ticks = schedule(rate, seconds, Date.now() + 200);
  const total = Math.round(rate * seconds);
  const sent = await openLoop(ticks, (tick) =>
    queue.addBulk(
      Array.from({ length: tick.count }, (_, j) => ({
        name: "noop",
        data: { at: tick.atMs, i: tick.first + j },
      })),
    ),
  );
  const lastArrival = ticks.at(-1)!.atMs;
  const deadline = Date.now() + Math.max(30_000, seconds * 2_000);
  while ((await queue.getCompletedCount()) < total && Date.now() < deadline) await sleep(50);
  const drainSeconds = (Date.now() - lastArrival) / 1000;
  const jobs = await queue.getJobs(["completed"], 0, -1);
  const from = ticks[0]!.atMs + WARMUP_MS;
  const toStart: number[] = [];
  const toEnd: number[] = [];
  for (const job of jobs) {
    const at = (job.data as { at: number }).at;
    if (at < from) continue;
    if (job.processedOn) toStart.push(job.processedOn - at);
    if (job.finishedOn) toEnd.push(job.finishedOn - at);
  }
  await queue.clean(0, 0, "completed");
  if (sent.firstError) throw new Error(`addBulk failed ${sent.errors} times: ${sent.firstError}`);
  return {
    runner: "BullMQ",
    load,
    rate,
    tasks: total,
    unfinished: total - jobs.length,
    toStart: percentiles(toStart),
    toEnd: percentiles(toEnd),
    submitAnswer: percentiles(sent.answers),
    submitErrors: sent.errors,
    lateTicks: sent.lateTicks,
    drainSeconds,
  };
}

const trio = (p: Percentiles | undefined) =>
  p === undefined ? "" : `${ms(p.p50)} / ${ms(p.p95)} / ${ms(p.p99)}`;

export const latencyScenario: Scenario = {
  name: "latency",
  summary:
    "submit->start and submit->end p50/p95/p99 of no-op handler tasks (1 hub + 1 sidecar + a TS worker)\n" +
    "at 25/50/75% of the maximum rate measured first, open loop (runs of 10 on a fixed schedule, latency\n" +
    "from the scheduled arrival); BullMQ at the same rates. --tasks N: take N tasks/s as the maximum;\n" +
    "--seconds: per load (default 20)",
  async run({ tasks, seconds = 20, concurrency, db, nats, redis, profileDir, progress }) {
    const results: LoadResult[] = [];
    let maximum: { rate: number; ended: number; seconds: number; runSize: number; measured: boolean };
    {
      progress("  taskframe: 1 hub + 1 sidecar + a TypeScript worker ...");
      await using fixture = await startHandlersCluster({ dbUrl: db, natsUrl: nats, concurrency, profileDir });
      const sql = postgres(fixture.databaseUrl, { max: 2, onnotice: () => {} });
      try {
        // the worker connects; connections and code paths warm up
        await submitAndWait(
          fixture.client,
          create(RunSpecSchema, {
            name: "lat-warmup",
            tasks: Array.from({ length: 500 }, (_, i) => noopTask(i)),
          }),
        );
        if (tasks === undefined) {
          const runSize = RUN_SIZE;
          progress(`  maximum rate: 10 s closed loop, runs of ${runSize}, at most 2000 unfinished ...`);
          maximum = {
            ...(await maximumRate(fixture.client, sql, 10, runSize, 2_000)),
            runSize,
            measured: true,
          };
        } else {
          maximum = { rate: tasks, ended: 0, seconds: 0, runSize: 0, measured: false };
        }
        progress(`  maximum ${maximum.rate.toFixed(0)} tasks/s`);
        for (const load of LOADS) {
          const rate = Math.max(1, Math.round(load * maximum.rate));
          progress(`  taskframe at ${load * 100}%: ${rate} tasks/s for ${seconds} s ...`);
          results.push(await taskframeAtRate(fixture.client, sql, load, rate, seconds));
        }
      } finally {
        await sql.end();
      }
    }
    {
      const redisUrl = new URL(redis);
      const name = `taskframe-latency-${randomBytes(4).toString("hex")}`;
      const queue = new Queue(name, {
        connection: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) },
      });
      const worker = await spawnBullWorker({
        redisUrl: redis,
        queue: name,
        concurrency,
        keepCompleted: true,
      });
      try {
        for (const load of LOADS) {
          const rate = Math.max(1, Math.round(load * maximum.rate));
          progress(`  BullMQ at ${rate} tasks/s for ${seconds} s ...`);
          results.push(await bullmqAtRate(queue, load, rate, seconds));
        }
      } finally {
        await stopChild(worker);
        await queue.obliterate({ force: true }).catch(() => {});
        await queue.close();
      }
    }
    const atTarget = results.find((r) => r.runner === "taskframe" && r.load === TARGET.load);
    const verdict =
      atTarget && atTarget.toStart.p50 <= TARGET.startP50 && atTarget.toStart.p99 <= TARGET.startP99
        ? "met"
        : "MISSED";
    const tables: Table[] = [
      {
        title:
          `latency: no-op handler tasks, open loop (a run/addBulk of ${RUN_SIZE} every ${RUN_SIZE}/rate s; from its scheduled time), ` +
          `${seconds} s a load, first ${WARMUP_MS / 1000} s left out; maximum ` +
          (maximum.measured
            ? `${maximum.rate.toFixed(0)} tasks/s (closed loop, runs of ${maximum.runSize}, ${maximum.ended} tasks in ${maximum.seconds.toFixed(1)} s)`
            : `${maximum.rate} tasks/s (--tasks)`),
        header: [
          "runner",
          "load",
          "tasks/s",
          "tasks",
          "->start p50/p95/p99",
          "->end p50/p95/p99",
          "submit answered p50/p99",
          "note",
        ],
        rows: results.map((r) => [
          r.runner === "taskframe"
            ? "taskframe hub + sidecar + TS worker"
            : `BullMQ, 1 worker x ${concurrency}`,
          `${r.load * 100}%`,
          String(r.rate),
          String(r.tasks),
          trio(r.toStart),
          trio(r.toEnd),
          `${ms(r.submitAnswer.p50)} / ${ms(r.submitAnswer.p99)}`,
          [
            r.unfinished > 0 ? `${r.unfinished} unfinished` : "",
            `drained ${r.drainSeconds.toFixed(1)} s after the last arrival`,
            r.lateTicks > 0 ? `${r.lateTicks} runs sent > ${LATE_MS} ms late` : "",
            r.runner === "taskframe" && r.load === TARGET.load
              ? `target ->start p50 <= ${TARGET.startP50} ms, p99 <= ${TARGET.startP99} ms: ${verdict}`
              : "",
          ]
            .filter(Boolean)
            .join("; "),
        ]),
      },
      {
        title:
          "latency: taskframe breakdown from the scheduled arrival (created_at: the hub's submit; " +
          "recorded: the commit of the terminal state)",
        header: ["load", "->created p50/p95/p99", "->start", "->end (sidecar clock)", "->recorded"],
        rows: results
          .filter((r) => r.runner === "taskframe")
          .map((r) => [
            `${r.load * 100}%`,
            trio(r.toCreated),
            trio(r.toStart),
            trio(r.toEnd),
            trio(r.toRecorded),
          ]),
      },
    ];
    return { data: { maximum, runSize: RUN_SIZE, warmupMs: WARMUP_MS, target: TARGET, results }, tables };
  },
};
