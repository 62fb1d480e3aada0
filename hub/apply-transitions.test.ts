import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { StateTransitionSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { RetryPolicySchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { leaseEpoch } from "../core/lease-epoch.js";
import { TaskState } from "../core/states.js";
import { applyTransitions, type TaskRow } from "./apply-transitions.js";

const E1 = leaseEpoch(1, 1);
const E2 = leaseEpoch(1, 2);

function row(fields: Partial<TaskRow> = {}): TaskRow {
  return {
    id: "t1",
    runId: "r1",
    name: "task",
    state: TaskState.PENDING,
    attempt: 1,
    maxAttempts: 1,
    leaseEpoch: 0,
    cancelRequested: false,
    host: null,
    exitCode: null,
    detail: null,
    retryAtMs: null,
    startedAtMs: null,
    finishedAtMs: null,
    retryPolicy: () => create(RetryPolicySchema, { retries: 2, intervalMs: 1000n }),
    ...fields,
  };
}

const t = (
  to: TaskState,
  epoch = E1,
  extra: { attempt?: number; at?: number; exitCode?: number; host?: string } = {},
) =>
  create(StateTransitionSchema, {
    taskId: "t1",
    runId: "r1",
    attempt: extra.attempt ?? 1,
    leaseEpoch: BigInt(epoch),
    to,
    atUnixMs: BigInt(extra.at ?? 1_000),
    host: extra.host ?? "h1",
    ...(extra.exitCode === undefined ? {} : { exitCode: extra.exitCode }),
  });

const apply = (task: TaskRow, ...transitions: ReturnType<typeof t>[]) =>
  applyTransitions(new Map([[task.id, task]]), transitions, 5_000, () => 0);

const trail = (result: ReturnType<typeof apply>) =>
  result.events.map((e) => `${TaskState[e.from]}>${TaskState[e.to]}${e.rejected ? "!" : ""}`);

describe("applyTransitions", () => {
  it("runs a task to success and releases its dependents", () => {
    const task = row();
    const result = apply(task, t(TaskState.RUNNING), t(TaskState.SUCCEEDED, E1, { at: 2_000, exitCode: 0 }));
    expect(trail(result)).toEqual(["PENDING>RUNNING", "RUNNING>SUCCEEDED"]);
    expect(task).toMatchObject({
      state: TaskState.SUCCEEDED,
      leaseEpoch: E1,
      startedAtMs: 1_000,
      finishedAtMs: 2_000,
    });
    expect(result.succeeded).toEqual([task]);
  });

  it("records an outcome that carries its start as RUNNING at that time, then the outcome", () => {
    const task = row();
    const folded = t(TaskState.SUCCEEDED, E1, { at: 2_000, exitCode: 0 });
    folded.startedAtUnixMs = 1_500n;
    const result = apply(task, folded);
    expect(trail(result)).toEqual(["PENDING>RUNNING", "RUNNING>SUCCEEDED"]);
    expect(result.events.map((e) => [e.atMs, e.exitCode])).toEqual([
      [1_500, null],
      [2_000, 0],
    ]);
    expect(task).toMatchObject({ state: TaskState.SUCCEEDED, startedAtMs: 1_500, finishedAtMs: 2_000 });
  });

  it("records the same transitions twice as once", () => {
    const task = row();
    apply(task, t(TaskState.RUNNING), t(TaskState.SUCCEEDED, E1, { at: 2_000 }));
    const again = apply(task, t(TaskState.RUNNING), t(TaskState.SUCCEEDED, E1, { at: 2_000 }));
    expect(again.events).toEqual([]);
    expect(again.succeeded).toEqual([]);
  });

  it("accepts an outcome that overtook its RUNNING, and then ignores the late RUNNING", () => {
    const task = row({ maxAttempts: 3 });
    const first = apply(task, t(TaskState.FAILED, E1, { at: 2_000, exitCode: 1 }));
    expect(trail(first)).toEqual(["PENDING>RUNNING", "RUNNING>RETRYING"]);
    expect(task).toMatchObject({ state: TaskState.RETRYING, retryAtMs: 6_000, startedAtMs: null });
    const late = apply(task, t(TaskState.RUNNING, E1, { at: 1_000 }));
    expect(late.events).toEqual([]);
    expect(late.stop).toEqual([]);
    expect(task.startedAtMs).toBe(1_000);
  });

  it("fences a result from an older lease and stops that copy", () => {
    const task = row();
    apply(task, t(TaskState.RUNNING, E1), t(TaskState.RUNNING, E2, { host: "h2" }));
    expect(task).toMatchObject({ leaseEpoch: E2, host: "h2" });
    const late = apply(task, t(TaskState.SUCCEEDED, E1, { at: 3_000 }));
    expect(trail(late)).toEqual(["RUNNING>SUCCEEDED!"]);
    expect(late.events[0]?.detail).toMatch(/^rejected: stale lease/);
    expect(task.state).toBe(TaskState.RUNNING);
  });

  it("explains a redelivery in the audit", () => {
    const task = row({ state: TaskState.RUNNING, leaseEpoch: E1, host: "h1" });
    const result = apply(task, t(TaskState.RUNNING, E2, { host: "h2" }));
    expect(result.events[0]?.detail).toMatch(
      /^redelivered to h2 \(dispatch 1, delivery 2\): the lease held by h1 expired/,
    );
  });

  it("stops a delivery of a task that already ended", () => {
    const task = row({ state: TaskState.SUCCEEDED, leaseEpoch: E1 });
    const result = apply(task, t(TaskState.RUNNING, E2, { host: "h2" }));
    expect(trail(result)).toEqual(["SUCCEEDED>RUNNING!"]);
    // the audit says why the work ran again: the queue redelivered it after its result was recorded
    expect(result.stop).toEqual([
      {
        taskId: "t1",
        runId: "r1",
        attempt: 1,
        leaseEpoch: E2,
        reason: expect.stringMatching(
          /^the task is already SUCCEEDED: a redelivery \(dispatch 1, delivery 2\) after its result/,
        ),
      },
    ]);
  });

  it("fences a second host holding the same lease epoch (the queue lost its delivery counts)", () => {
    const task = row();
    const result = apply(
      task,
      t(TaskState.RUNNING, E1, { host: "h1" }),
      t(TaskState.RUNNING, E1, { host: "h2" }),
      t(TaskState.SUCCEEDED, E1, { host: "h2", at: 2_000, exitCode: 0 }),
      t(TaskState.SUCCEEDED, E1, { host: "h1", at: 3_000, exitCode: 0 }),
    );
    expect(trail(result)).toEqual([
      "PENDING>RUNNING",
      "RUNNING>RUNNING!",
      "RUNNING>SUCCEEDED!",
      "RUNNING>SUCCEEDED",
    ]);
    expect(result.events[1]?.detail).toMatch(
      /^rejected: a second delivery of the lease .* reached h2 while h1 holds it/,
    );
    // only h2's copy is stopped: h1's, under the same epoch, keeps running
    expect(result.stop).toEqual([expect.objectContaining({ leaseEpoch: E1, host: "h2" })]);
    expect(task).toMatchObject({ state: TaskState.SUCCEEDED, host: "h1" });
  });

  it("explains a second run of the same lease on the same host after its result (the queue lost its delivery counts)", () => {
    const task = row();
    const result = apply(
      task,
      t(TaskState.RUNNING, E1),
      t(TaskState.SUCCEEDED, E1, { at: 2_000, exitCode: 0 }),
      // the same delivery again, to the same host: its RUNNING is indistinguishable from a reordered duplicate
      t(TaskState.RUNNING, E1, { at: 3_000 }),
      t(TaskState.SUCCEEDED, E1, { at: 4_000, exitCode: 0 }),
    );
    expect(trail(result)).toEqual(["PENDING>RUNNING", "RUNNING>SUCCEEDED", "SUCCEEDED>SUCCEEDED!"]);
    expect(result.events[2]?.detail).toMatch(
      /^rejected: the task is already SUCCEEDED: a redelivery \(dispatch 1, delivery 1\) after its result was recorded, under the same lease: the queue lost its delivery counts$/,
    );
    expect(task).toMatchObject({ state: TaskState.SUCCEEDED, finishedAtMs: 2_000 });
  });

  it("fails for good after the last attempt, and cancels instead when a cancel was asked", () => {
    const last = row({ state: TaskState.RUNNING, leaseEpoch: E1, attempt: 3, maxAttempts: 3 });
    const failed = apply(last, t(TaskState.FAILED, E1, { attempt: 3, exitCode: 2 }));
    expect(last).toMatchObject({ state: TaskState.FAILED, detail: "failed: exit code 2 (attempt 3 of 3)" });
    expect(failed.unsuccessful).toEqual([last]);
    const cancelling = row({
      state: TaskState.RUNNING,
      leaseEpoch: E1,
      maxAttempts: 3,
      cancelRequested: true,
    });
    apply(cancelling, t(TaskState.FAILED, E1, { exitCode: 143 }));
    expect(cancelling.state).toBe(TaskState.CANCELLED);
  });

  it("applies a hub verdict to a task that is still pending or running", () => {
    const task = row({ state: TaskState.RUNNING, leaseEpoch: E1 });
    const result = applyTransitions(new Map([[task.id, task]]), [], 5_000, Math.random, [
      { taskId: "t1", attempt: 1, to: TaskState.FAILED, detail: "dead letter" },
    ]);
    expect(trail(result)).toEqual(["RUNNING>FAILED"]);
    expect(result.stop[0]).toMatchObject({ taskId: "t1", attempt: 1, leaseEpoch: 0 });
  });
});
