import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Backoff } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { BACKENDS, startBackend, type TestBackend } from "./helpers/backends.js";
import { finishedAt, runSpec, runToEnd, shellTask, startedAt, waitForRun } from "./helpers/engine.js";
import { waitUntilGone } from "./helpers/processes.js";

const names = (tasks: Iterable<{ name: string; state: TaskState }>) =>
  [...tasks].map((t) => `${t.name}:${TaskState[t.state]}`).sort();

describe.each(BACKENDS)("scheduler on %s", (kind) => {
  let harness: TestBackend;

  beforeAll(async () => {
    harness = await startBackend(kind, { slots: 32, logMaxBytes: 2 ** 20 });
  });
  afterAll(async () => {
    await harness?.[Symbol.asyncDispose]();
  });

  it("runs a chain of 1,000 tasks strictly in order", async () => {
    const tasks = Array.from({ length: 1_000 }, (_, i) =>
      shellTask(`c${i}`, "true", { needs: i === 0 ? [] : [`c${i - 1}`] }),
    );
    const { run, tasks: done } = await runToEnd(harness.client, runSpec("chain", tasks));
    expect(run.state).toBe(RunState.SUCCEEDED);
    for (let i = 1; i < 1_000; i++) {
      expect(startedAt(done.get(`c${i}`))).toBeGreaterThanOrEqual(finishedAt(done.get(`c${i - 1}`)));
    }
  });

  it("fans out to 1,000 tasks that run together, then fans in", async () => {
    const middle = Array.from({ length: 1_000 }, (_, i) => shellTask(`m${i}`, "true", { needs: ["root"] }));
    const spec = runSpec("fan", [
      shellTask("root", "true"),
      ...middle,
      shellTask("sink", "true", { needs: middle.map((t) => t.name) }),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(tasks.size).toBe(1_002);
    const lastMiddle = Math.max(...middle.map((t) => finishedAt(tasks.get(t.name))));
    expect(startedAt(tasks.get("sink"))).toBeGreaterThanOrEqual(lastMiddle);
    for (const t of middle)
      expect(startedAt(tasks.get(t.name))).toBeGreaterThanOrEqual(finishedAt(tasks.get("root")));
    expect(maxOverlap([...tasks.values()].filter((t) => t.name.startsWith("m")))).toBeGreaterThan(1);
  });

  it("runs both sides of a diamond at the same time, and the join after both", async () => {
    const spec = runSpec("diamond", [
      shellTask("a", "true"),
      shellTask("b", "sleep 0.4", { needs: ["a"] }),
      shellTask("c", "sleep 0.4", { needs: ["a"] }),
      shellTask("d", "true", { needs: ["b", "c"] }),
    ]);
    const { tasks } = await runToEnd(harness.client, spec);
    const [b, c, d] = [tasks.get("b"), tasks.get("c"), tasks.get("d")];
    expect(startedAt(c)).toBeLessThan(finishedAt(b));
    expect(startedAt(b)).toBeLessThan(finishedAt(c));
    expect(startedAt(d)).toBeGreaterThanOrEqual(Math.max(finishedAt(b), finishedAt(c)));
  });

  it("starts a task the moment its own dependencies succeed, not when its level is done", async () => {
    const spec = runSpec("cousins", [
      shellTask("slow", "sleep 1.5"),
      shellTask("after-slow", "true", { needs: ["slow"] }),
      shellTask("fast", "true"),
      shellTask("after-fast", "true", { needs: ["fast"] }),
    ]);
    const { tasks } = await runToEnd(harness.client, spec);
    expect(finishedAt(tasks.get("after-fast"))).toBeLessThan(finishedAt(tasks.get("slow")));
  });

  it("runs an ordering-only dependent after its predecessor ends, even when it failed", async () => {
    const spec = runSpec("after", [
      shellTask("flaky", "sleep 0.2; exit 5"),
      shellTask("cleanup", "true", { after: ["flaky"] }),
      shellTask("report", "true", { needs: ["flaky"] }),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("cleanup")?.state).toBe(TaskState.SUCCEEDED);
    expect(startedAt(tasks.get("cleanup"))).toBeGreaterThanOrEqual(finishedAt(tasks.get("flaky")));
    expect(tasks.get("report")?.state).toBe(TaskState.SKIPPED);
    expect(tasks.get("cleanup")?.after).toEqual(["flaky"]);
  });

  it("runs dependency checks in order before the command; the first failure is CHECK_FAILED with its output", async () => {
    const spec = runSpec("checks", [
      shellTask("needs-tool", "echo command ran", {
        checks: {
          "check-sh": "command -v sh",
          "check-missing": "echo 'missing-tool: not found' >&2; exit 1",
          never: "exit 0",
        },
        retry: { retries: 1 },
      }),
      shellTask("downstream", "true", { needs: ["needs-tool"] }),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("needs-tool")).toMatchObject({ state: TaskState.CHECK_FAILED, exitCode: 1 });
    expect(tasks.get("needs-tool")?.detail).toMatch(/^check check-missing failed: exit code 1/);
    expect(tasks.get("downstream")?.state).toBe(TaskState.SKIPPED);
    const output: string[] = [];
    for await (const r of harness.client.getLogs({
      task: { taskId: tasks.get("needs-tool")!.id },
      attempt: 2,
    })) {
      output.push(...r.entries.map((e) => Buffer.from(e.data).toString()));
    }
    expect(output.join("")).toContain("/bin/sh\n");
    expect(output.join("")).toContain("missing-tool: not found\n");
    expect(output.join("")).not.toContain("command ran");
  });

  it("skips a task whose condition says not now, without failing the run; other condition failures are CHECK_FAILED", async () => {
    const spec = runSpec("conditions", [
      shellTask("not-now", "echo ran", { condition: "exit 1" }),
      shellTask("after-not-now", "true", { needs: ["not-now"] }),
      shellTask("go", "echo ran", { condition: "exit 0" }),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(tasks.get("not-now")).toMatchObject({ state: TaskState.SKIPPED });
    expect(tasks.get("not-now")?.detail).toMatch(/^condition condition not met/);
    expect(tasks.get("after-not-now")?.state).toBe(TaskState.SKIPPED);
    expect(tasks.get("go")?.state).toBe(TaskState.SUCCEEDED);
    const broken = await runToEnd(
      harness.client,
      runSpec("broken-condition", [shellTask("x", "true", { condition: "exit 3" })]),
    );
    expect(broken.tasks.get("x")).toMatchObject({ state: TaskState.CHECK_FAILED, exitCode: 3 });
  });

  it("rejects a cycle and names its path", async () => {
    const spec = runSpec("cycle", [
      shellTask("a", "true", { needs: ["c"] }),
      shellTask("b", "true", { needs: ["a"] }),
      shellTask("c", "true", { needs: ["b"] }),
    ]);
    const error = await harness.client.submitRun({ run: spec }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toMatch(
      /dependency cycle: (a -> c -> b -> a|b -> a -> c -> b|c -> b -> a -> c)/,
    );
  });

  it("retries a failing task until it succeeds, waiting the retry interval between attempts", async () => {
    const spec = runSpec("retry", [
      shellTask("flaky", 'echo "attempt $TASKFRAME_ATTEMPT"; [ "$TASKFRAME_ATTEMPT" -ge 3 ]', {
        retry: { retries: 4, intervalMs: 300n, backoff: Backoff.FIXED },
      }),
      shellTask("after", "true", { needs: ["flaky"] }),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(tasks.get("flaky")).toMatchObject({ state: TaskState.SUCCEEDED, attempt: 3, maxAttempts: 5 });
    const { events } = await harness.client.getAudit({ task: { taskId: tasks.get("flaky")!.id } });
    const failedAt = events.filter((e) => e.to === TaskState.RETRYING).map((e) => Number(e.atUnixMs));
    const restartedAt = events
      .filter((e) => e.to === TaskState.RUNNING && e.attempt > 1)
      .map((e) => Number(e.atUnixMs));
    expect(failedAt).toHaveLength(2);
    expect(restartedAt).toHaveLength(2);
    for (let i = 0; i < 2; i++) expect(restartedAt[i]! - failedAt[i]!).toBeGreaterThanOrEqual(300);
    expect(events.map((e) => e.attempt).filter((a) => a > 0)).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3]);
  });

  it("fails a task whose retries run out and skips everything downstream, saying why", async () => {
    const spec = runSpec("exhausted", [
      shellTask("broken", "echo boom >&2; exit 3", { retry: { retries: 1, intervalMs: 50n } }),
      shellTask("child", "true", { needs: ["broken"] }),
      shellTask("grandchild", "true", { needs: ["child"] }),
      shellTask("unrelated", "true"),
    ]);
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("broken")).toMatchObject({ state: TaskState.FAILED, attempt: 2, exitCode: 3 });
    expect(tasks.get("child")).toMatchObject({
      state: TaskState.SKIPPED,
      detail: "upstream task broken ended FAILED",
    });
    expect(tasks.get("grandchild")).toMatchObject({
      state: TaskState.SKIPPED,
      detail: "upstream task broken ended FAILED",
    });
    expect(tasks.get("unrelated")?.state).toBe(TaskState.SUCCEEDED);
    const logs: string[] = [];
    for await (const r of harness.client.getLogs({ task: { taskId: tasks.get("broken")!.id } })) {
      logs.push(...r.entries.map((e) => `${e.attempt}:${Buffer.from(e.data).toString()}`));
    }
    expect(logs).toContain("1:boom\n");
    expect(logs).toContain("2:boom\n");
  });

  it("kills the whole process group of a task that ignores SIGTERM when it times out", async () => {
    const pids = join(harness.dir, `pids-${kind}`);
    const script = `trap '' TERM; sh -c 'trap "" TERM; echo $$ > ${pids}.grandchild; sleep 60' & echo $$ > ${pids}.main; wait`;
    const spec = runSpec("timeout", [
      shellTask("stubborn", script, { timeoutMs: 800n }),
      shellTask("after", "true", { needs: ["stubborn"] }),
    ]);
    const began = Date.now();
    const { run, tasks } = await runToEnd(harness.client, spec);
    expect(Date.now() - began).toBeLessThan(10_000);
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("stubborn")?.state).toBe(TaskState.TIMED_OUT);
    expect(tasks.get("after")?.state).toBe(TaskState.SKIPPED);
    for (const file of [`${pids}.main`, `${pids}.grandchild`]) {
      expect(existsSync(file)).toBe(true);
      expect(await waitUntilGone(Number(readFileSync(file, "utf8")))).toBe(true);
    }
  });

  it("keeps a flood of output to the cap without stalling, and records how much was dropped", async () => {
    const spec = runSpec("flood", [shellTask("flood", "head -c 200000000 /dev/zero; echo done >&2")]);
    const { tasks } = await runToEnd(harness.client, spec);
    expect(tasks.get("flood")?.state).toBe(TaskState.SUCCEEDED);
    let stdout = 0;
    const system: string[] = [];
    let dropped = 0n;
    for await (const r of harness.client.getLogs({ task: { taskId: tasks.get("flood")!.id } })) {
      for (const e of r.entries) {
        if (e.stream === 1) stdout += e.data.length;
        if (e.stream === 3) system.push(Buffer.from(e.data).toString());
        dropped += e.droppedBytes;
      }
    }
    expect(stdout).toBe(2 ** 20);
    expect(dropped).toBe(BigInt(200_000_000 + "done\n".length - 2 ** 20));
    expect(system.join("")).toMatch(/output truncated: \d+ bytes dropped after the 1048576-byte cap/);
  });

  it.skipIf(kind === "distributed")(
    "runs a task of any pool: one host serves them all in embedded mode",
    async () => {
      const task = shellTask("gpu-task", "true");
      task.pool = "gpu";
      const { tasks } = await runToEnd(harness.client, runSpec("pools", [task]));
      expect(tasks.get("gpu-task")?.state).toBe(TaskState.SUCCEEDED);
    },
  );

  it("cancels a run: running tasks are stopped, the rest cancelled", async () => {
    const spec = runSpec("cancel", [
      shellTask("long", "sleep 30"),
      shellTask("next", "true", { needs: ["long"] }),
      shellTask("quick", "true"),
    ]);
    const { run } = await harness.client.submitRun({ run: spec });
    const runId = run!.id;
    await waitUntil(async () => {
      const { tasks } = await harness.client.listTasks({ runId });
      const state = (name: string) => tasks.find((t) => t.name === name)?.state;
      return state("long") === TaskState.RUNNING && state("quick") === TaskState.SUCCEEDED;
    });
    const began = Date.now();
    const cancelled = await harness.client.cancelRun({ runId, reason: "test" });
    expect(cancelled.cancelledTasks).toBe(2);
    const { run: final, tasks } = await waitForRun(harness.client, runId);
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(final.state).toBe(RunState.CANCELLED);
    expect(names(tasks.values())).toEqual(["long:CANCELLED", "next:CANCELLED", "quick:SUCCEEDED"]);
    expect(tasks.get("next")?.detail).toBe("cancelled: test");
  });
});

describe.each(BACKENDS)("leases on %s", (kind) => {
  let harness: TestBackend;

  beforeAll(async () => {
    harness = await startBackend(kind, { ackWaitMs: 600 });
  });
  afterAll(async () => {
    await harness?.[Symbol.asyncDispose]();
  });

  it("keeps the lease of a task that runs far longer than the ack wait: no redelivery, one execution", async () => {
    const marks = join(harness.dir, `runs-${kind}`);
    const spec = runSpec("long-lease", [shellTask("slow", `echo run >> ${marks}; sleep 1.5`)]);
    const { tasks } = await runToEnd(harness.client, spec);
    expect(tasks.get("slow")).toMatchObject({ state: TaskState.SUCCEEDED, attempt: 1 });
    expect(readFileSync(marks, "utf8")).toBe("run\n");
    const { events } = await harness.client.getAudit({ task: { taskId: tasks.get("slow")!.id } });
    expect(events.filter((e) => e.to === TaskState.RUNNING)).toHaveLength(1);
    expect(events.some((e) => e.rejected)).toBe(false);
  });
});

/** The largest number of tasks running at the same instant. */
function maxOverlap(tasks: { startedAtUnixMs: bigint; finishedAtUnixMs: bigint }[]): number {
  const edges = tasks.flatMap((t) => [
    [Number(t.startedAtUnixMs), 1],
    [Number(t.finishedAtUnixMs), -1],
  ]);
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let running = 0;
  let most = 0;
  for (const [, delta] of edges) {
    running += delta!;
    most = Math.max(most, running);
  }
  return most;
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
