import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryControlBus, MemoryEventBus } from "../core/event-bus.js";
import type { WorkItem } from "../core/gen/taskframe/v1/messages_pb.js";
import { MemoryWorkQueue } from "../core/memory-work-queue.js";
import { TaskState } from "../core/states.js";
import { toConnectError } from "../hub/api/errors.js";
import { Hub } from "../hub/hub.js";
import { HubStore } from "../hub/store/hub-store.js";
import { Sidecar } from "../sidecar/sidecar.js";
import { runSpec, shellTask } from "./helpers/engine.js";
import { until } from "./helpers/until.js";

/*
 * The hub's own recovery paths, with the real store and the in-process
 * queue: work items that run out of deliveries, and work items the queue
 * loses (JetStream can lose acknowledged messages on a crash).
 */

/** The in-process queue, except that it silently drops the first publication of the tasks named. */
class LossyQueue extends MemoryWorkQueue {
  constructor(
    private readonly lose: Set<string>,
    options: ConstructorParameters<typeof MemoryWorkQueue>[0],
  ) {
    super(options);
  }
  override async publish(items: readonly WorkItem[]): Promise<void> {
    const kept = items.filter((item) => !(item.dispatch === 1 && this.lose.has(item.spec?.name ?? "")));
    await super.publish(kept);
  }
}

/** The in-process queue, refusing every publication while `full` is set, as JetStream does with a full store. */
class FillableQueue extends MemoryWorkQueue {
  full = false;
  override async publish(items: readonly WorkItem[]): Promise<void> {
    if (this.full) throw new Error("insufficient storage resources available");
    await super.publish(items);
  }
}

describe("hub recovery", () => {
  let dir: string;
  let store: HubStore;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-recovery-"));
    store = await HubStore.open({ kind: "pglite", dataDir: join(dir, "db") });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(
    queue: MemoryWorkQueue,
    options: { reconcile?: boolean; sidecar?: boolean; backpressure?: boolean } = {},
  ) {
    const events = new MemoryEventBus();
    const control = new MemoryControlBus();
    const hub = new Hub({
      store,
      queue,
      events,
      control,
      ...(options.reconcile ? { reconcile: { everyMs: 100, staleAfterMs: 300 } } : {}),
      ...(options.backpressure ? { backpressure: { minRetryMs: 100, maxRetryMs: 400 } } : {}),
    });
    hub.start();
    closers.push(() => hub.stop());
    if (options.sidecar) {
      const sidecar = new Sidecar({ queue, events, control, slots: 4, heartbeatMs: 100, host: "only" });
      await sidecar.start();
      closers.push(() => sidecar.stop());
    }
    closers.push(() => queue.close());
    return hub;
  }

  async function waitForTask(runId: string, name: string, done: (state: TaskState) => boolean) {
    for (let i = 0; i < 200; i++) {
      const task = (await store.listTasks(runId)).find((t) => t.name === name)!;
      if (done(task.state)) return task;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${name} never got there`);
  }

  it("fails an attempt for good when its work item runs out of deliveries", async () => {
    const queue = new MemoryWorkQueue({ ackWaitMs: 100, maxDeliveries: 2 });
    const hub = await start(queue);
    const { run } = await hub.submit(
      runSpec("doomed", [
        shellTask("doomed", "true", { retry: { retries: 3 } }),
        shellTask("after", "true", { needs: ["doomed"] }),
      ]),
    );
    // a sidecar that leases the work and dies every time, twice
    const consumer = queue.consumer("default");
    for (let i = 0; i < 2; i++) expect(await consumer.fetch(1, { maxWaitMs: 2_000 })).toHaveLength(1);
    const task = await waitForTask(run.id, "doomed", (s) => s !== TaskState.PENDING);
    expect(task.state).toBe(TaskState.FAILED);
    expect(task.detail).toMatch(/^dead letter: delivered 2 times without a result/);
    expect((await waitForTask(run.id, "after", (s) => s === TaskState.SKIPPED)).state).toBe(
      TaskState.SKIPPED,
    );
  });

  it("publishes again a dispatched task whose work item the queue lost, and the run completes", async () => {
    const queue = new LossyQueue(new Set(["lost"]), { ackWaitMs: 1_000 });
    const hub = await start(queue, { reconcile: true, sidecar: true });
    const { run } = await hub.submit(
      runSpec("lossy", [shellTask("lost", "true"), shellTask("kept", "true")]),
    );
    const lost = await waitForTask(run.id, "lost", (s) => s === TaskState.SUCCEEDED);
    const audit = await store.readAudit(lost.id);
    expect(audit.map((e) => e.detail)).toContain(
      "published again (dispatch 2): its work item was no longer in the queue",
    );
    expect(audit.filter((e) => e.to === TaskState.RUNNING)).toHaveLength(1);
    const kept = await waitForTask(run.id, "kept", (s) => s === TaskState.SUCCEEDED);
    expect((await store.readAudit(kept.id)).some((e) => e.detail.startsWith("published again"))).toBe(false);
  });

  it("refuses new runs with Unavailable while the queue stores nothing, keeps what it recorded, and takes runs again once it stores", async () => {
    const queue = new FillableQueue({ ackWaitMs: 1_000 });
    const hub = await start(queue, { backpressure: true });
    queue.full = true;
    // the first run after the store filled up is recorded: its work waits in the outbox
    const { run: recorded } = await hub.submit(runSpec("recorded", [shellTask("waits", "true")]));
    expect(hub.queueRefusal).toMatch(
      /^the work queue has not stored work since \S+ \(insufficient storage resources available\); nothing was recorded, retry later$/,
    );
    const refused = await hub
      .submit(runSpec("refused", [shellTask("never", "true")]))
      .catch((e: unknown) => e);
    expect(toConnectError(refused).code).toBe(Code.Unavailable);
    expect(toConnectError(refused).rawMessage).toBe(hub.queueRefusal);
    expect((await store.listRuns(10)).map((r) => r.name)).toEqual(["recorded"]);

    queue.full = false;
    const [waits] = await store.listTasks(recorded.id);
    await until(
      () => queue.queued([{ pool: "default", taskId: waits!.id }]),
      (queued) => queued.size === 1,
      5_000,
    );
    expect(hub.queueRefusal).toBeUndefined();
    const { run: accepted } = await hub.submit(runSpec("accepted", [shellTask("runs", "true")]));
    const [runs] = await store.listTasks(accepted.id);
    expect((await queue.queued([{ pool: "default", taskId: runs!.id }])).size).toBe(1);
  });
});
