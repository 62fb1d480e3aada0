import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { WorkItemSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { JetStreamWorkQueue } from "../core/nats/jetstream-work-queue.js";
import { onReconnect } from "../core/nats/reconnects.js";
import { RunState, TaskState } from "../core/states.js";
import { startCluster } from "./helpers/cluster.js";
import { type HubClient, runSpec, runToEnd, shellTask, waitForRun } from "./helpers/engine.js";
import { freePort } from "./helpers/processes.js";

/*
 * The distributed mode as separate processes: hubs and sidecars over a real
 * NATS JetStream and Postgres, with the faults this mode exists to survive.
 */

const stateCounts = (tasks: Iterable<{ state: TaskState }>) => {
  const counts: Record<string, number> = {};
  for (const t of tasks) counts[TaskState[t.state]] = (counts[TaskState[t.state]] ?? 0) + 1;
  return counts;
};

async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs = 30_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function auditOf(client: HubClient, taskId: string) {
  return (await client.getAudit({ task: { taskId } })).events;
}

describe("a cluster of hubs and sidecars", () => {
  it("runs a 5,000-task fan-out and fan-in on two hubs and three sidecars", async () => {
    await using cluster = await startCluster({ hubs: 2, sidecars: 3, slots: 16 });
    const middle = Array.from({ length: 5_000 }, (_, i) => shellTask(`m${i}`, "true", { needs: ["root"] }));
    const spec = runSpec("wide", [
      shellTask("root", "true"),
      ...middle,
      shellTask("sink", "true", { needs: middle.map((t) => t.name) }),
    ]);
    const { run } = await cluster.clientOf(1).submitRun({ run: spec });
    const { run: final, tasks } = await waitForRun(cluster.clientOf(0), run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    expect(stateCounts(tasks.values())).toEqual({ SUCCEEDED: 5_002 });
    const hosts = new Map<string, number>();
    for (const task of tasks.values()) hosts.set(task.host, (hosts.get(task.host) ?? 0) + 1);
    expect([...hosts.keys()].sort()).toEqual(["sidecar-0", "sidecar-1", "sidecar-2"]);
    for (const count of hosts.values()) expect(count).toBeGreaterThan(100);
    const sample = [...tasks.values()].slice(0, 20);
    for (const task of sample) {
      const running = (await auditOf(cluster.client(), task.id)).filter((e) => e.to === TaskState.RUNNING);
      expect(running).toHaveLength(1);
      expect(running[0]?.host).toBe(task.host);
    }
  });

  it("redelivers the tasks of a sidecar killed with SIGKILL and records why they ran again", async () => {
    await using cluster = await startCluster({ sidecars: 1, ackWait: "1s" });
    const marks = join(cluster.dir, "starts");
    const spec = runSpec("victims", [
      shellTask("slow-a", `echo "$TASKFRAME_HOST" >> ${marks}-a; sleep 2`),
      shellTask("slow-b", `echo "$TASKFRAME_HOST" >> ${marks}-b; sleep 2`),
    ]);
    const { run } = await cluster.client().submitRun({ run: spec });
    await waitUntil(
      async () => (await readFile(`${marks}-b`, "utf8").catch(() => "")) !== "",
      20_000,
      "tasks started",
    );
    await cluster.startSidecar("rescuer");
    cluster.sidecars[0]!.child.kill("SIGKILL");
    const { run: final, tasks } = await waitForRun(cluster.client(), run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    for (const name of ["slow-a", "slow-b"]) {
      const task = tasks.get(name)!;
      expect(task).toMatchObject({ state: TaskState.SUCCEEDED, attempt: 1, host: "rescuer" });
      expect(await readFile(`${marks}-${name.slice(-1)}`, "utf8")).toBe("sidecar-0\nrescuer\n");
      const audit = await auditOf(cluster.client(), task.id);
      expect(
        audit.some((e) => /^redelivered to rescuer .*the lease held by sidecar-0 expired/.test(e.detail)),
      ).toBe(true);
    }
  });

  it("rejects and records the late result of a sidecar paused past its lease", async () => {
    await using cluster = await startCluster({ sidecars: 1, ackWait: "1s" });
    const spec = runSpec("paused", [shellTask("work", "sleep 1.5; echo done")]);
    const { run } = await cluster.client().submitRun({ run: spec });
    const client = cluster.client();
    let taskId = "";
    await waitUntil(async () => {
      const { tasks } = await client.listTasks({ runId: run!.id });
      taskId = tasks[0]?.id ?? "";
      return tasks[0]?.state === TaskState.RUNNING;
    });
    const paused = cluster.sidecars[0]!;
    paused.child.kill("SIGSTOP");
    await cluster.startSidecar("standby");
    const { run: final, tasks } = await waitForRun(client, run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    expect(tasks.get("work")?.host).toBe("standby");
    paused.child.kill("SIGCONT");
    await waitUntil(
      async () => (await auditOf(client, taskId)).some((e) => e.rejected),
      20_000,
      "late result recorded",
    );
    const rejected = (await auditOf(client, taskId)).filter((e) => e.rejected);
    expect(rejected[0]).toMatchObject({ host: "sidecar-0", to: TaskState.SUCCEEDED });
    expect(rejected[0]?.detail).toMatch(
      /^rejected: the task is SUCCEEDED, not RUNNING|^rejected: stale lease/,
    );
    expect((await client.getTask({ task: { taskId } })).task).toMatchObject({
      state: TaskState.SUCCEEDED,
      host: "standby",
    });
  });

  it("keeps going when the leading hub is killed: the other takes the lead, nothing is lost or run twice", async () => {
    await using cluster = await startCluster({ hubs: 2, sidecars: 2, reconcileEvery: "500ms" });
    const leaders = async () =>
      Promise.all(
        cluster.hubUrls.map((url) =>
          fetch(`${url}/healthz`)
            .then((r) => r.text())
            .catch(() => ""),
        ),
      );
    await waitUntil(
      async () => (await leaders()).some((body) => body.includes("leader: yes")),
      10_000,
      "a leader",
    );
    const leader = (await leaders()).findIndex((body) => body.includes("leader: yes"));
    const survivor = 1 - leader;
    const spec = runSpec(
      "failover",
      Array.from({ length: 300 }, (_, i) => shellTask(`t${i}`, "sleep 0.05")),
    );
    const { run } = await cluster.clientOf(survivor).submitRun({ run: spec });
    await waitUntil(async () => {
      const { run: now } = await cluster.clientOf(survivor).getRun({ runId: run!.id });
      return (now?.counts.find((c) => c.state === TaskState.SUCCEEDED)?.count ?? 0) > 50;
    });
    cluster.hubs[leader]!.child.kill("SIGKILL");
    await waitUntil(async () => (await leaders())[survivor]!.includes("leader: yes"), 15_000, "failover");
    const { run: final, tasks } = await waitForRun(cluster.clientOf(survivor), run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    expect(stateCounts(tasks.values())).toEqual({ SUCCEEDED: 300 });
    for (const task of [...tasks.values()].slice(0, 50)) {
      const audit = await auditOf(cluster.clientOf(survivor), task.id);
      expect(audit.filter((e) => e.to === TaskState.RUNNING && !e.rejected)).toHaveLength(1);
    }
  });

  it("resumes delivery after nats-server restarts mid-run, losing nothing", async () => {
    await using nats = await startNatsServer();
    await using cluster = await startCluster({ sidecars: 1, natsUrl: nats.url, ackWait: "2s" });
    const spec = runSpec(
      "restart",
      Array.from({ length: 200 }, (_, i) => shellTask(`t${i}`, "sleep 0.1")),
    );
    const { run } = await cluster.client().submitRun({ run: spec });
    await waitUntil(async () => {
      const { run: now } = await cluster.client().getRun({ runId: run!.id });
      return (now?.counts.find((c) => c.state === TaskState.SUCCEEDED)?.count ?? 0) > 30;
    });
    await nats.restart();
    const { run: final, tasks } = await waitForRun(cluster.client(), run!.id);
    expect(final.state).toBe(RunState.SUCCEEDED);
    expect(stateCounts(tasks.values())).toEqual({ SUCCEEDED: 200 });
  });

  it("marks first deliveries soon after a reconnect as uncertain: a restarted nats-server may have lost its counts", async () => {
    await using nats = await startNatsServer();
    const nc = await connect({ servers: nats.url, reconnectTimeWait: 100 });
    const queue = await JetStreamWorkQueue.open(nc, { namespace: "uncertain", ackWaitMs: 1_000 });
    const item = (taskId: string) =>
      create(WorkItemSchema, {
        taskId,
        runId: "r",
        attempt: 1,
        dispatch: 1,
        spec: create(TaskSpecSchema, { name: taskId, target: { case: "exec", value: { command: "true" } } }),
      });
    const leaseOf = async (taskId: string) => {
      await queue.publish([item(taskId)]);
      const [lease] = await queue.consumer("default").fetch(1, { maxWaitMs: 5_000 });
      await lease!.ack();
      return lease!;
    };
    try {
      expect((await leaseOf("before")).deliveryCountUncertain).toBeUndefined();
      const reconnected = new Promise<void>((resolve) => {
        const stop = onReconnect(nc, () => {
          stop();
          resolve();
        });
      });
      await nats.restart();
      await reconnected;
      const after = await leaseOf("after");
      expect(after).toMatchObject({ delivery: 1, deliveryCountUncertain: true });
      // two ack waits after the reconnect, deliveries are counted again
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await leaseOf("later")).deliveryCountUncertain).toBeUndefined();
    } finally {
      await queue.close();
      await nc.close();
    }
  });

  it("acks a redelivered work item of a task that already ended, without running it", async () => {
    await using cluster = await startCluster({ sidecars: 1 });
    const marks = join(cluster.dir, "ran");
    const { tasks } = await runToEnd(
      cluster.client(),
      runSpec("once", [shellTask("once", `echo run >> ${marks}`)]),
    );
    const done = tasks.get("once")!;
    const before = await auditOf(cluster.client(), done.id);
    const nc = await connect({ servers: process.env.TASKFRAME_TEST_NATS_URL ?? "nats://127.0.0.1:4222" });
    try {
      const queue = await JetStreamWorkQueue.open(nc, { namespace: cluster.namespace });
      const stale = create(WorkItemSchema, {
        taskId: done.id,
        runId: done.runId,
        attempt: 1,
        dispatch: 2, // a re-publication, as the reconciler would send
        spec: create(TaskSpecSchema, {
          name: "once",
          target: { case: "exec", value: { command: "/bin/sh", args: ["-c", `echo run >> ${marks}`] } },
        }),
      });
      await queue.publish([stale]);
      await waitUntil(
        async () => (await queue.queued([{ pool: "default", taskId: done.id }])).size === 0,
        15_000,
        "acked",
      );
      await queue.close();
    } finally {
      await nc.close();
    }
    expect(await readFile(marks, "utf8")).toBe("run\n");
    expect(await auditOf(cluster.client(), done.id)).toEqual(before);
  });
});

interface TestNatsServer extends AsyncDisposable {
  url: string;
  restart(): Promise<void>;
}

/** A nats-server of the test's own (file store in a temp dir, spare port), so that it can be restarted. */
async function startNatsServer(): Promise<TestNatsServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "taskframe-nats-"));
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess;
  const start = async () => {
    child = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
      stdio: "ignore",
    });
    await waitUntil(
      async () => {
        try {
          await (await connect({ servers: url, reconnect: false })).close();
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      "nats-server up",
    );
  };
  const stop = async () => {
    const exited = new Promise((resolve) => child.once("close", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    url,
    async restart() {
      await stop();
      await start();
    },
    async [Symbol.asyncDispose]() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
