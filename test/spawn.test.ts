import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import type { Task } from "../core/gen/taskframe/v1/hub_pb.js";
import { ChildSpecSchema, RunnerService } from "../core/gen/taskframe/v1/runner_pb.js";
import { TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../core/states.js";
import { NonRetryableError } from "../sdks/ts/index.js";
import { BACKENDS } from "./helpers/backends.js";
import { runSpec, runToEnd } from "./helpers/engine.js";
import { useWorkerBackend } from "./helpers/worker-backend.js";

/*
 * Dynamic subtasks: running handler tasks spawn children (to any depth),
 * on every backend. Children are named `<parent>/<key>`; what needs a task
 * waits for its whole subtree.
 */

function handlerTask(name: string, handler: string, input: unknown = {}, needs: string[] = [], retries = 0) {
  return create(TaskSpecSchema, {
    name,
    target: {
      case: "handler",
      value: { handler, input: Buffer.from(JSON.stringify(input)), contentType: "application/json" },
    },
    needs,
    retry: { retries, intervalMs: 20n },
  });
}

const ms = (at: bigint) => Number(at);

describe.each(BACKENDS)("spawned subtasks on %s", (kind) => {
  const harness = useWorkerBackend(kind, { workerName: "spawn-test", concurrency: 16 });
  const { startWorker } = harness;

  it("runs children in topological order, and what needs the parent waits for its whole subtree", async () => {
    startWorker({
      fan: async (ctx) => {
        const spawned = await ctx.spawn([
          { key: "extract", handler: "work", input: { ms: 150 } },
          { key: "transform", handler: "work", input: { ms: 50 }, needs: ["extract"] },
          { key: "load", handler: "work", input: { ms: 50 }, needs: ["transform"] },
        ]);
        return spawned.map((c) => c.name);
      },
      work: async (ctx) => {
        await new Promise((resolve) => setTimeout(resolve, ctx.json<{ ms: number }>().ms));
        return "done";
      },
    });
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("fan", [handlerTask("parent", "fan"), handlerTask("report", "work", { ms: 0 }, ["parent"])]),
    );
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(run.totalTasks).toBe(5);
    const get = (name: string) => tasks.get(name) as Task;
    expect([...tasks.keys()].sort()).toEqual([
      "parent",
      "parent/extract",
      "parent/load",
      "parent/transform",
      "report",
    ]);
    expect(ms(get("parent/transform").startedAtUnixMs)).toBeGreaterThanOrEqual(
      ms(get("parent/extract").finishedAtUnixMs),
    );
    expect(ms(get("parent/load").startedAtUnixMs)).toBeGreaterThanOrEqual(
      ms(get("parent/transform").finishedAtUnixMs),
    );
    // the parent itself finished long before its subtree; report still waited for all of it
    expect(ms(get("parent").finishedAtUnixMs)).toBeLessThan(ms(get("parent/load").finishedAtUnixMs));
    expect(ms(get("report").startedAtUnixMs)).toBeGreaterThanOrEqual(ms(get("parent/load").finishedAtUnixMs));
    const { task } = await harness.client.getTask({ task: { taskId: get("parent").id } });
    expect(JSON.parse(Buffer.from(task!.output).toString())).toEqual([
      "parent/extract",
      "parent/transform",
      "parent/load",
    ]);
  });

  it("a parent awaits its children's results, and fails (for good) if one of them fails", async () => {
    startWorker({
      sum: async (ctx) => {
        const { parts, bad } = ctx.json<{ parts: number; bad?: number }>();
        await ctx.spawn(
          Array.from({ length: parts }, (_, i) => ({
            key: `p${i}`,
            handler: "square",
            input: { n: i, bad: i === bad },
          })),
        );
        const children = await ctx.awaitChildren();
        return children.reduce((total, c) => total + Number(Buffer.from(c.output).toString()), 0);
      },
      square: async (ctx) => {
        const { n, bad } = ctx.json<{ n: number; bad: boolean }>();
        await new Promise((resolve) => setTimeout(resolve, 20 * n));
        if (bad) throw new NonRetryableError(`cannot square ${n}`);
        return String(n * n);
      },
    });
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("await", [
        handlerTask("good", "sum", { parts: 5 }),
        handlerTask("broken", "sum", { parts: 3, bad: 1 }, [], 2),
      ]),
    );
    expect(run.state).toBe(RunState.FAILED);
    const good = tasks.get("good") as Task;
    expect(good.state).toBe(TaskState.SUCCEEDED);
    const { task } = await harness.client.getTask({ task: { taskId: good.id } });
    expect(JSON.parse(Buffer.from(task!.output).toString())).toBe(0 + 1 + 4 + 9 + 16);
    // its own attempt is not retried: the child's failure would not change
    expect(tasks.get("broken")).toMatchObject({
      state: TaskState.FAILED,
      attempt: 1,
      detail:
        "failed: ChildFailedError: a child did not succeed: broken/p1 FAILED (failed: NonRetryableError: cannot square 1 (not retryable)) (not retryable)",
    });
  });

  it("spawns a chain 100 levels deep", async () => {
    startWorker({
      deeper: async (ctx) => {
        const { depth } = ctx.json<{ depth: number }>();
        if (depth > 1) await ctx.spawn([{ key: "next", handler: "deeper", input: { depth: depth - 1 } }]);
        return depth;
      },
      work: () => "after",
    });
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("deep", [
        handlerTask("root", "deeper", { depth: 100 }),
        handlerTask("after", "work", {}, ["root"]),
      ]),
    );
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(run.totalTasks).toBe(101);
    const deepest = ["root", ...Array.from({ length: 99 }, () => "next")].join("/");
    const leaf = tasks.get(deepest) as Task;
    expect(leaf.state).toBe(TaskState.SUCCEEDED);
    expect(ms((tasks.get("after") as Task).startedAtUnixMs)).toBeGreaterThanOrEqual(
      ms(leaf.finishedAtUnixMs),
    );
  }, 120_000);

  // PGlite runs the same scenario smaller: it records ~90 tasks/s on this machine (see bench/)
  const batchesOf = kind === "embedded-pglite" ? 200 : 1_000;

  it(`spawns ${10 * batchesOf} children in batches, and a retried parent creates none twice`, async () => {
    const responses: { fresh: number; existing: number }[] = [];
    startWorker(
      {
        many: async (ctx) => {
          // attempt 1 dies after 4 of its 10 batches; attempt 2 spawns all 10
          const batches = ctx.attempt === 1 ? 4 : 10;
          for (let b = 0; b < batches; b++) {
            const spawned = await ctx.spawn(
              Array.from({ length: batchesOf }, (_, i) => ({
                key: `c${b * batchesOf + i}`,
                handler: "noop",
              })),
            );
            responses.push({
              fresh: spawned.filter((c) => !c.existing).length,
              existing: spawned.filter((c) => c.existing).length,
            });
          }
          if (ctx.attempt === 1) throw new Error("killed half-way through spawning");
          return "spawned";
        },
        noop: () => undefined,
      },
      64,
    );
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("many", [handlerTask("parent", "many", {}, [], 1)]),
    );
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(run.totalTasks).toBe(10 * batchesOf + 1);
    expect(tasks.size).toBe(10 * batchesOf + 1);
    expect([...tasks.values()].every((t) => t.state === TaskState.SUCCEEDED)).toBe(true);
    expect((tasks.get("parent") as Task).attempt).toBe(2);
    const total = (field: "fresh" | "existing") => responses.reduce((sum, r) => sum + r[field], 0);
    expect(total("fresh")).toBe(10 * batchesOf);
    expect(total("existing")).toBe(4 * batchesOf);
  }, 240_000);

  it("a parent that fails skips its unstarted subtree and stops the running part; what needs it is skipped", async () => {
    let releaseBlocker: () => void = () => {};
    const blockerStarted = new Promise<void>((started) => {
      startWorker({
        doomed: async (ctx) => {
          await ctx.spawn([
            { key: "blocker", handler: "block" },
            { key: "waiting", handler: "block", needs: ["blocker"] },
          ]);
          await blockerRunning;
          throw new NonRetryableError("the parent gives up");
        },
        block: (ctx) =>
          new Promise((_, reject) => {
            started();
            releaseBlocker = () => reject(new Error("released"));
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
          }),
        work: () => "never",
      });
    });
    const blockerRunning = blockerStarted;
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("doomed", [handlerTask("parent", "doomed"), handlerTask("after", "work", {}, ["parent"])]),
    );
    releaseBlocker();
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("parent")).toMatchObject({ state: TaskState.FAILED });
    expect(tasks.get("parent/blocker")).toMatchObject({ state: TaskState.CANCELLED });
    expect(tasks.get("parent/waiting")).toMatchObject({
      state: TaskState.SKIPPED,
      detail: "parent task parent ended FAILED",
    });
    expect(tasks.get("after")).toMatchObject({ state: TaskState.SKIPPED });
  });

  it("a child that fails leaves its parent SUCCEEDED but skips what needs the parent, saying why", async () => {
    startWorker({
      parent: async (ctx) => {
        await ctx.spawn([{ key: "bad", handler: "bad" }]);
        return "fine";
      },
      bad: () => {
        throw new NonRetryableError("child failure");
      },
      work: () => "never",
    });
    const { run, tasks } = await runToEnd(
      harness.client,
      runSpec("child-fails", [handlerTask("parent", "parent"), handlerTask("after", "work", {}, ["parent"])]),
    );
    expect(run.state).toBe(RunState.FAILED);
    expect(tasks.get("parent")).toMatchObject({ state: TaskState.SUCCEEDED });
    expect(tasks.get("parent/bad")).toMatchObject({ state: TaskState.FAILED });
    expect(tasks.get("after")).toMatchObject({
      state: TaskState.SKIPPED,
      detail: "upstream task parent succeeded, but a task it spawned did not",
    });
  });

  it("refuses a spawn from a worker that does not hold the task, and malformed children, with clear errors", async () => {
    const errors: Record<string, ConnectError> = {};
    const runner = createClient(
      RunnerService,
      createConnectTransport({
        baseUrl: "http://sidecar",
        httpVersion: "1.1",
        nodeOptions: { socketPath: harness.runnerSocket },
      }),
    );
    const child = (key: string, needs: string[] = []) =>
      create(ChildSpecSchema, {
        key,
        spec: { target: { case: "handler", value: { handler: "noop" } }, needs },
      });
    startWorker({
      probe: async (ctx) => {
        const attempt = async (name: string, spawn: () => Promise<unknown>) => {
          try {
            await spawn();
          } catch (error) {
            errors[name] = ConnectError.from(error);
          }
        };
        const stranger = await runner.register({ language: "test", handlers: ["unused"] });
        const identity = { taskId: ctx.taskId, attempt: ctx.attempt, leaseEpoch: 0n };
        await attempt("stranger", () =>
          runner.spawn({ workerId: stranger.workerId, ...identity, children: [child("x")] }),
        );
        await attempt("unknownSibling", () => ctx.spawn([{ key: "a", handler: "noop", needs: ["nope"] }]));
        await attempt("cycle", () =>
          ctx.spawn([
            { key: "a", handler: "noop", needs: ["b"] },
            { key: "b", handler: "noop", needs: ["a"] },
          ]),
        );
        await attempt("badKey", () => ctx.spawn([{ key: "a/b", handler: "noop" }]));
        return "probed";
      },
      noop: () => undefined,
    });
    const { run, tasks } = await runToEnd(harness.client, runSpec("probe", [handlerTask("probe", "probe")]));
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect(tasks.size).toBe(1);
    expect(errors.stranger?.code).toBe(Code.FailedPrecondition);
    expect(errors.stranger?.rawMessage).toMatch(/is not assigned to this worker/);
    expect(errors.unknownSibling?.code).toBe(Code.InvalidArgument);
    expect(errors.unknownSibling?.rawMessage).toBe(
      "child 'a' needs 'nope', which is not a child of this task",
    );
    expect(errors.cycle?.rawMessage).toMatch(/children form a cycle: a -> b -> a/);
    expect(errors.badKey?.rawMessage).toMatch(/key 'a\/b' is not valid/);
    // through the hub API, a stale attempt is refused too
    const parent = tasks.get("probe") as Task;
    await expect(
      harness.client.spawnTasks({ parentTaskId: parent.id, attempt: 1, children: [child("late")] }),
    ).rejects.toThrow(/cannot spawn: attempt 1 \(lease 0\) is not running; the task is SUCCEEDED/);
  });
});
