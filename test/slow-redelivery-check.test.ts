import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryControlBus, MemoryEventBus } from "../core/event-bus.js";
import { WorkItemSchema } from "../core/gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { MemoryWorkQueue } from "../core/memory-work-queue.js";
import { TaskState } from "../core/states.js";
import { Sidecar } from "../sidecar/sidecar.js";
import { until } from "./helpers/until.js";

/*
 * A sidecar asks the hub whether a redelivered attempt already ended before
 * it runs it. The queue's ack wait runs from the delivery, so the lease must
 * be kept alive while that question is out: a hub slower to answer than the
 * ack wait must not make the queue deliver the work a third time (it ran
 * twice on a loaded CI machine, once per delivery).
 */

const ACK_WAIT_MS = 300;

describe("a redelivered task whose check at the hub outlasts the ack wait", () => {
  let dir: string;
  let queue: MemoryWorkQueue;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-slow-check-"));
    queue = new MemoryWorkQueue({ ackWaitMs: ACK_WAIT_MS });
  });
  afterEach(async () => {
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs once: its lease is extended from the delivery on, not from the start of the run", async () => {
    const marks = join(dir, "runs");
    const item = create(WorkItemSchema, {
      taskId: "t-1",
      runId: "r-1",
      attempt: 1,
      dispatch: 1,
      spec: create(TaskSpecSchema, {
        name: "once",
        target: { case: "exec", value: { command: "/bin/sh", args: ["-c", `echo run >> ${marks}`] } },
      }),
    });
    await queue.publish([item]);
    // a sidecar that leased it and died: the next delivery is a redelivery
    expect(await queue.consumer("default").fetch(1, { maxWaitMs: 1_000 })).toHaveLength(1);

    const checks: number[] = [];
    await using sidecar = new Sidecar({
      queue,
      events: new MemoryEventBus(),
      control: new MemoryControlBus(),
      slots: 2,
      heartbeatMs: ACK_WAIT_MS / 3,
      ackWaitMs: ACK_WAIT_MS,
      host: "rescuer",
      taskStates: async ([taskId]) => {
        checks.push(Date.now());
        await new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS * 2.5));
        return [{ taskId: taskId!, state: TaskState.RUNNING, attempt: 1 }];
      },
    });
    await sidecar.start();
    await until(
      () => queue.queued([{ pool: "default", taskId: "t-1" }]),
      (queued) => queued.size === 0,
      10_000,
    );
    // long enough for a delivery lost during the check to come back and run
    await new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS * 4));
    expect(await readFile(marks, "utf8")).toBe("run\n");
    expect(checks).toHaveLength(1);
  });
});
