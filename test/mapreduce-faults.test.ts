import { access, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MapReduceState, type Task } from "../core/gen/taskframe/v1/hub_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { startCluster } from "./helpers/cluster.js";
import { waitForRun } from "./helpers/engine.js";
import {
  compile,
  EXAMPLE,
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
 * A MapReduce job on a cluster of processes whose parts die: sidecars killed
 * with SIGKILL during the maps and during the reduces, and a hub killed
 * inside its commit by a failpoint. Each ends with the whole, right output or
 * (had the job been aborted) none: never a part of it.
 */

describe("MapReduce jobs when hosts die", () => {
  let dir: string;
  let corpus: string;
  let reference: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-mapreduce-faults-"));
    corpus = await makeCorpus(join(dir, "corpus"), 4096);
    reference = await referenceCounts(corpus);
  }, 60_000);

  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("gives the right output after a sidecar is killed with SIGKILL during the maps and another during the reduces", async () => {
    await using cluster = await startCluster({ sidecars: 3, slots: 2, ackWait: "2s" });
    const jobDir = join(dir, "killed-sidecars");
    const slowMap = await writeScript(jobDir, "slow-map.sh", `sleep 2\nexec ${EXAMPLE("map.sh")}`);
    const slowReduce = await writeScript(jobDir, "slow-reduce.sh", `sleep 3\nexec ${EXAMPLE("reduce.sh")}`);
    const job = await writeJob(jobDir, corpus, {
      partitions: 6,
      reducers: 3,
      map: JSON.stringify(slowMap),
      reduce: JSON.stringify(slowReduce),
    });
    const client = cluster.client();
    const { run } = await client.submitRun({ run: await compile(job.definition) });
    const runningOn = (prefix: string, hosts: readonly string[]) => async () =>
      (await client.listTasks({ runId: run!.id })).tasks.find(
        (t) => t.name.startsWith(prefix) && t.state === TaskState.RUNNING && hosts.includes(t.host),
      );
    const found = (task: Task | undefined) => task !== undefined;

    const map = await until(runningOn("map-", ["sidecar-0"]), found, 30_000);
    cluster.sidecars[0]!.child.kill("SIGKILL");
    const reduce = await until(runningOn("reduce-", ["sidecar-1", "sidecar-2"]), found, 60_000);
    const victim = cluster.sidecars.find((s) => s.name === reduce!.host)!;
    victim.child.kill("SIGKILL");

    const { run: final, tasks } = await waitForRun(client, run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    expect(await sortedLines(job.output)).toEqual(reference);
    expect(await leftovers(job)).toEqual([]);
    for (const [killed, host] of [
      [map!, "sidecar-0"],
      [reduce!, victim.name],
    ] as const) {
      expect(tasks.get(killed.name)?.state).toBe(TaskState.SUCCEEDED);
      const audit = (await client.getAudit({ task: { taskId: killed.id } })).events;
      expect(audit.some((e) => e.detail.includes(`the lease held by ${host} expired`))).toBe(true);
    }
  });

  it.each(["before_output", "after_output"])(
    "a hub killed in its commit (failpoint hub.mapreduce.commit.%s) ends committed once a hub is back",
    async (point) => {
      await using cluster = await startCluster({
        sidecars: 1,
        hubEnv: { TASKFRAME_FAILPOINTS: `hub.mapreduce.commit.${point}=exit` },
      });
      const job = await writeJob(join(dir, `commit-${point}`), corpus, { partitions: 3, reducers: 2 });
      const { run } = await cluster.client().submitRun({ run: await compile(job.definition) });
      await cluster.hubs[0]!.exited;
      expect(cluster.hubs[0]!.stderr()).toContain(`failpoint hub.mapreduce.commit.${point}`);
      // the crash came between the decision and the end: staging is still there, the output is all or nothing
      await stat(join(job.work)).then((info) => expect(info.isDirectory()).toBe(true));
      if (point === "before_output") await expect(access(job.output)).rejects.toThrow();
      else expect(await sortedLines(job.output)).toEqual(reference);

      await cluster.startHub({ listen: new URL(cluster.hubUrls[0]!).host, env: {} });
      const client = cluster.client();
      const { run: final, tasks } = await waitForRun(client, run!.id);
      expect(final.state).toBe(RunState.SUCCEEDED);
      expect(tasks.get("commit")?.attempt).toBeGreaterThan(1);
      const settled = await settledJob(client, run!.id);
      expect(settled.mapreduce?.state).toBe(MapReduceState.COMMITTED);
      expect(await sortedLines(job.output)).toEqual(reference);
      expect(await leftovers(job)).toEqual([]);
    },
  );
});
