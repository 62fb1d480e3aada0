import { type ChildProcess, spawn } from "node:child_process";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MapReduceState } from "../core/gen/taskframe/v1/hub_pb.js";
import { packagePath } from "../core/package-root.js";
import { RunState, TaskState } from "../core/states.js";
import { type Cluster, startCluster } from "./helpers/cluster.js";
import { type HubClient, startEngine, type TestEngine, waitForRun } from "./helpers/engine.js";
import {
  compile,
  leftovers,
  makeCorpus,
  referenceCounts,
  settledJob,
  sortedLines,
  writeJob,
  writeScript,
} from "./helpers/mapreduce.js";
import { until } from "./helpers/until.js";

/*
 * The same MapReduce scenarios on the embedded engine (PGlite, in-process
 * queue) and on a cluster of processes (a hub and three sidecars over
 * Postgres and NATS). The corpus is small here so that the suite stays fast;
 * TASKFRAME_MR_CORPUS_KIB=204800 runs them on 200 MB.
 */

const CORPUS_KIB = Number(process.env.TASKFRAME_MR_CORPUS_KIB ?? 6144);

interface Target {
  client: HubClient;
  /** Runner sockets Python workers serve (one per sidecar). */
  runnerSockets: string[];
  hosts: number;
  dispose(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  embedded: async () => {
    const engine: TestEngine = await startEngine("pglite", { slots: 4 });
    await engine.engine.serve();
    return {
      client: engine.client,
      runnerSockets: [engine.engine.runnerSocket!],
      hosts: 1,
      dispose: async () => engine[Symbol.asyncDispose](),
    };
  },
  cluster: async () => {
    const cluster: Cluster = await startCluster({ sidecars: 3, slots: 2, ackWait: "2s" });
    return {
      client: cluster.client(),
      runnerSockets: [0, 1, 2].map((i) => cluster.runnerSocket(i)),
      hosts: 3,
      dispose: async () => cluster[Symbol.asyncDispose](),
    };
  },
};

describe.each(Object.keys(targets))("MapReduce jobs (%s)", (kind) => {
  let target: Target;
  let dir: string;
  let corpus: string;
  let reference: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-mapreduce-"));
    corpus = await makeCorpus(join(dir, "corpus"), CORPUS_KIB);
    [target, reference] = await Promise.all([targets[kind]!(), referenceCounts(corpus)]);
  }, 120_000);

  afterAll(async () => {
    await target?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it("counts words like sort | uniq -c, spreads the maps over the hosts, and leaves no staging behind", async () => {
    const job = await writeJob(join(dir, "wordcount"), corpus, { partitions: 6, reducers: 3 });
    const { run } = await target.client.submitRun({ run: await compile(job.definition) });
    const { run: final, tasks } = await waitForRun(target.client, run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    expect([...tasks.keys()].sort()).toEqual(
      ["commit", ...[0, 1, 2, 3, 4, 5].map((p) => `map-${p}`), "reduce-0", "reduce-1", "reduce-2"].sort(),
    );
    expect(await sortedLines(job.output)).toEqual(reference);
    expect(await leftovers(job)).toEqual([]);
    const hosts = new Set([...tasks.values()].filter((t) => t.name.startsWith("map-")).map((t) => t.host));
    expect(hosts.size).toBe(target.hosts);

    const { mapreduce } = (await target.client.getRun({ runId: run!.id })).run!;
    expect(mapreduce?.state).toBe(MapReduceState.COMMITTED);
    const counters = mapreduce!.counters!;
    expect(Number(counters.reduceRecordsOut)).toBe(reference.length);
    expect(counters.mapRecordsOut).toBe(counters.reduceRecordsIn);
    expect(Number(counters.mapRecordsIn)).toBeGreaterThan(CORPUS_KIB * 10);
    expect(Number(counters.shuffleBytes)).toBeGreaterThan(0);
  });

  it("a reducer failing for good aborts the job: no output, no staging files", async () => {
    const failing = await writeScript(
      join(dir, "failing"),
      "reduce.sh",
      `[ "$TASKFRAME_TASK_NAME" = reduce-1 ] && { echo "reduce-1 breaks" >&2; exit 3; }\nexec ${packagePath("examples", "mapreduce", "reduce.sh")}`,
    );
    const broken = await writeJob(join(dir, "failing"), corpus, {
      reducers: 3,
      reduce: JSON.stringify(failing),
    });
    const { run } = await target.client.submitRun({ run: await compile(broken.definition) });
    const { run: final, tasks } = await waitForRun(target.client, run!.id);
    expect(final.state).toBe(RunState.FAILED);
    expect(tasks.get("reduce-1")).toMatchObject({ state: TaskState.FAILED, attempt: 3, exitCode: 3 });
    expect(tasks.get("commit")?.state).toBe(TaskState.SKIPPED);
    const settled = await settledJob(target.client, run!.id);
    expect(settled.mapreduce?.state).toBe(MapReduceState.ABORTED);
    expect(settled.mapreduce?.detail).toMatch(/reduce-1 ended FAILED/);
    await expect(access(broken.output)).rejects.toThrow();
    expect(await leftovers(broken)).toEqual([]);
  });

  it("a job cancelled mid-way stops its tasks and leaves nothing behind", async () => {
    const slow = await writeScript(join(dir, "cancelled"), "slow-map.sh", "sleep 30");
    const job = await writeJob(join(dir, "cancelled"), corpus, { map: JSON.stringify(slow) });
    const { run } = await target.client.submitRun({ run: await compile(job.definition) });
    const client = target.client;
    await until(
      async () => (await client.listTasks({ runId: run!.id })).tasks,
      (tasks) => tasks.some((t) => t.state === TaskState.RUNNING),
      20_000,
    );
    await client.cancelRun({ runId: run!.id, reason: "changed my mind" });
    const { run: final } = await waitForRun(client, run!.id);
    expect(final.state).toBe(RunState.CANCELLED);
    const settled = await settledJob(client, run!.id);
    expect(settled.mapreduce?.state).toBe(MapReduceState.ABORTED);
    await expect(access(job.output)).rejects.toThrow();
    expect(await leftovers(job)).toEqual([]);
  });

  it("runs map and reduce as Python handlers, with the same result", async () => {
    const workers = target.runnerSockets.map((socket) => startPythonWorker(socket));
    try {
      const job = await writeJob(join(dir, "python"), corpus, {
        map: "{ handler: wordcount.map }",
        reduce: "{ handler: wordcount.reduce }",
      });
      const { run } = await target.client.submitRun({ run: await compile(job.definition) });
      const { run: final } = await waitForRun(target.client, run!.id);
      expect(final.state).toBe(RunState.SUCCEEDED);
      expect(await sortedLines(job.output)).toEqual(reference);
      expect(await leftovers(job)).toEqual([]);
    } finally {
      await Promise.all(workers.map(stopProcess));
    }
  });
});

function startPythonWorker(socket: string): ChildProcess {
  return spawn("python3", [packagePath("examples", "mapreduce", "python", "wordcount_worker.py")], {
    env: { ...process.env, TASKFRAME_SOCKET: socket, PYTHONPATH: packagePath("sdks", "python") },
    stdio: "ignore",
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("close", resolve));
  child.kill("SIGTERM");
  await exited;
}
