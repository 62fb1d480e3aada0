import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StateTransitionSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import {
  type RunSpec,
  RunSpecSchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../core/gen/taskframe/v1/spec_pb.js";
import { leaseEpoch } from "../core/lease-epoch.js";
import { RunState, TaskState } from "../core/states.js";
import { HubStore } from "../hub/store/hub-store.js";
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from "./helpers/databases.js";

const task = (name: string, needs: string[] = [], extra: MessageInitShape<typeof TaskSpecSchema> = {}) =>
  create(TaskSpecSchema, { name, needs, target: { case: "exec", value: { command: "true" } }, ...extra });

const run = (...tasks: TaskSpec[]): RunSpec => create(RunSpecSchema, { name: "t", tasks });

const EPOCH = leaseEpoch(1, 1);

const transition = (
  taskId: string,
  runId: string,
  to: TaskState,
  extra: { attempt?: number; epoch?: number; at?: number; exitCode?: number } = {},
) =>
  create(StateTransitionSchema, {
    taskId,
    runId,
    attempt: extra.attempt ?? 1,
    leaseEpoch: BigInt(extra.epoch ?? EPOCH),
    to,
    atUnixMs: BigInt(extra.at ?? Date.now()),
    host: "h1",
    ...(extra.exitCode !== undefined ? { exitCode: extra.exitCode } : {}),
  });

describe.each(DATABASE_KINDS)("HubStore on %s", (kind) => {
  let database: TestDatabase;
  let store: HubStore;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    store = await HubStore.open(database.target);
  });
  afterAll(async () => {
    await store?.close();
    await database?.[Symbol.asyncDispose]();
  });

  it("inserts a run with roots ready and the rest waiting", async () => {
    const inserted = await store.insertRun(run(task("a"), task("b", ["a"]), task("c", ["a", "b"])));
    expect(inserted.ready.map((r) => r.item.spec?.name)).toEqual(["a"]);
    expect(inserted.ready[0]?.outboxId).toBeGreaterThan(0);
    const tasks = await store.listTasks(inserted.runId);
    expect(tasks.map((t) => [t.name, TaskState[t.state], t.needs])).toEqual([
      ["a", "PENDING", []],
      ["b", "CREATED", ["a"]],
      ["c", "CREATED", ["a", "b"]],
    ]);
  });

  it("returns the first run for a repeated idempotency key", async () => {
    const first = await store.insertRun(run(task("x")), "key-1");
    const second = await store.insertRun(run(task("x")), "key-1");
    expect(second).toMatchObject({ runId: first.runId, existing: true });
  });

  it("releases a dependent only when its last dependency succeeds", async () => {
    const { runId, ready } = await store.insertRun(run(task("a"), task("b"), task("c", ["a", "b"])));
    const [a, b] = ready.map((r) => r.item.taskId) as [string, string];
    const first = await store.recordEvents(
      [transition(a, runId, TaskState.RUNNING), transition(a, runId, TaskState.SUCCEEDED, { exitCode: 0 })],
      [],
    );
    expect(first.ready).toEqual([]);
    const second = await store.recordEvents(
      [transition(b, runId, TaskState.RUNNING), transition(b, runId, TaskState.SUCCEEDED, { exitCode: 0 })],
      [],
    );
    expect(second.ready.map((r) => r.item.spec?.name)).toEqual(["c"]);
    const c = second.ready[0]!.item.taskId;
    const third = await store.recordEvents(
      [transition(c, runId, TaskState.RUNNING), transition(c, runId, TaskState.SUCCEEDED, { exitCode: 0 })],
      [],
    );
    expect(third.finishedRuns).toEqual([{ runId, state: RunState.SUCCEEDED }]);
    const audit = await store.readAudit(c);
    expect(audit.map((e) => `${TaskState[e.from]}>${TaskState[e.to]}`)).toEqual([
      "UNSPECIFIED>CREATED",
      "CREATED>PENDING",
      "PENDING>RUNNING",
      "RUNNING>SUCCEEDED",
    ]);
  });

  it("rejects a result with a stale lease epoch and records it", async () => {
    const { runId, ready } = await store.insertRun(run(task("a")));
    const a = ready[0]!.item.taskId;
    const redelivered = leaseEpoch(1, 2);
    await store.recordEvents([transition(a, runId, TaskState.RUNNING)], []);
    await store.recordEvents([transition(a, runId, TaskState.RUNNING, { epoch: redelivered })], []);
    const late = await store.recordEvents([transition(a, runId, TaskState.SUCCEEDED, { exitCode: 0 })], []);
    expect(late.finishedRuns).toEqual([]);
    const done = await store.recordEvents(
      [transition(a, runId, TaskState.FAILED, { epoch: redelivered, exitCode: 3 })],
      [],
    );
    expect(done.finishedRuns).toEqual([{ runId, state: RunState.FAILED }]);
    const audit = await store.readAudit(a);
    const rejected = audit.filter((e) => e.rejected);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.detail).toMatch(/stale lease/);
    expect(audit.some((e) => e.detail.startsWith("redelivered to h1"))).toBe(true);
    expect((await store.findTask({ taskId: a })).exitCode).toBe(3);
  });

  it("retries a failed attempt after its interval, then skips downstream when retries run out", async () => {
    const { runId, ready } = await store.insertRun(
      run(task("a", [], { retry: { retries: 1, intervalMs: 200n } }), task("b", ["a"]), task("c", ["b"])),
    );
    const a = ready[0]!.item.taskId;
    const t0 = Date.now();
    await store.recordEvents([transition(a, runId, TaskState.RUNNING)], []);
    const failed = await store.recordEvents(
      [transition(a, runId, TaskState.FAILED, { exitCode: 1 })],
      [],
      t0,
    );
    expect(failed.nextRetryInMs).toBe(200);
    expect((await store.releaseDueRetries(t0 + 100)).ready).toEqual([]);
    const released = await store.releaseDueRetries(t0 + 250);
    expect(released.ready.map((r) => [r.item.taskId, r.item.attempt])).toEqual([[a, 2]]);
    await store.recordEvents([transition(a, runId, TaskState.RUNNING, { attempt: 2 })], []);
    const final = await store.recordEvents(
      [transition(a, runId, TaskState.FAILED, { attempt: 2, exitCode: 1 })],
      [],
    );
    expect(final.finishedRuns).toEqual([{ runId, state: RunState.FAILED }]);
    const tasks = await store.listTasks(runId);
    expect(tasks.map((t) => [t.name, TaskState[t.state], t.detail])).toEqual([
      ["a", "FAILED", "failed: exit code 1 (attempt 2 of 2)"],
      ["b", "SKIPPED", "upstream task a ended FAILED"],
      ["c", "SKIPPED", "upstream task a ended FAILED"],
    ]);
  });

  it("cancels waiting tasks at once and asks running ones to stop", async () => {
    const { runId, ready } = await store.insertRun(run(task("a"), task("b", ["a"])));
    const a = ready[0]!.item.taskId;
    await store.recordEvents([transition(a, runId, TaskState.RUNNING)], []);
    const cancelled = await store.cancelRun(runId, "by test");
    expect(cancelled.stopping).toEqual([a]);
    expect(cancelled.changes.map((c) => TaskState[c.state])).toEqual(["CANCELLED"]);
    const stopped = await store.recordEvents([transition(a, runId, TaskState.FAILED, { exitCode: 143 })], []);
    expect(stopped.finishedRuns).toEqual([{ runId, state: RunState.CANCELLED }]);
    expect((await store.getRun(runId)).state).toBe(RunState.CANCELLED);
  });

  it("stores log bytes exactly and ignores a chunk recorded twice", async () => {
    const { runId, ready } = await store.insertRun(run(task("a")));
    const a = ready[0]!.item.taskId;
    const chunk = {
      $typeName: "taskframe.v1.LogChunk" as const,
      taskId: a,
      runId,
      attempt: 1,
      stream: 1,
      seq: 0,
      atUnixMs: BigInt(Date.now()),
      data: new Uint8Array([0xff, 0xfe, 0x00, 0x41, 0x0a]),
      droppedBytes: 0n,
    };
    await store.recordEvents([], [chunk]);
    await store.recordEvents([], [chunk]);
    const logs = await store.readLogs(a);
    expect(logs).toHaveLength(1);
    expect(Buffer.from(logs[0]!.data).toString("hex")).toBe("fffe00410a");
  });

  it("finds tasks by name in the newest run and resolves run prefixes", async () => {
    const { runId } = await store.insertRun(run(task("unique-name")));
    const found = await store.findTask({ name: "unique-name" });
    expect(found.runId).toBe(runId);
    expect(await store.resolveRunId(runId.slice(0, 8))).toBe(runId);
    await expect(store.resolveRunId("zz")).rejects.toThrow(/not a run id/);
  });
});
