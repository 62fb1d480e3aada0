import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { create, equals } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { type WorkItem, WorkItemSchema } from "../../core/gen/taskframe/v1/messages_pb.js";
import { leaseEpoch } from "../../core/lease-epoch.js";
import type { DeadLetter, Lease, WorkConsumer, WorkQueue, WorkQueueOptions } from "../../core/work-queue.js";

/*
 * The WorkQueue contract, shared by every implementation (in-memory, NATS
 * JetStream). It asserts only what JetStream can provide too: at-least-once
 * delivery, ack / nak(delay) / in-progress extension, redelivery after
 * ackWait, MaxDeliver -> dead letter, Nats-Msg-Id style dedupe, pull consumers
 * sharing a pool, batch fetch with max and wait.
 *
 * Timing runs on a noisy shared machine: upper bounds are generous; exact lower
 * bounds are asserted only where the contract guarantees them (nak delay,
 * ackWait, extend, maxWaitMs). Pool names and task ids are unique per test, as
 * a JetStream implementation's tests may share a server (and its dedupe window).
 */

const FAST: WorkQueueOptions = { ackWaitMs: 300, maxDeliveries: 3, dedupeWindowMs: 5_000 };
// For cases that are not about lease expiry: a stall of the machine must not cause a redelivery.
const LONG_LEASES: WorkQueueOptions = { ...FAST, ackWaitMs: 10_000 };
/** Added to upper bounds of "promptly". */
const SLACK_MS = 3_000;
/** setTimeout may fire a millisecond or so before Date.now() reaches its target. */
const TIMER_JITTER_MS = 25;

const uniquePool = (label: string): string => `${label}-${randomUUID().slice(0, 8)}`;

function workItem(pool: string, n: number, fields: { attempt?: number; dispatch?: number } = {}): WorkItem {
  return create(WorkItemSchema, {
    taskId: `${pool}-task-${n}`,
    runId: `${pool}-run`,
    attempt: fields.attempt ?? 1,
    dispatch: fields.dispatch ?? 1,
    spec: { pool },
  });
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const taskIds = (leases: readonly Lease[]): string[] => leases.map((lease) => lease.item.taskId);
const publication = (item: WorkItem): string => `${item.taskId}:${item.attempt}:${item.dispatch}`;

async function ackAll(leases: readonly Lease[]): Promise<void> {
  await Promise.all(leases.map((lease) => lease.ack()));
}

/** Fetches until `count` leases arrived (or `timeoutMs` passed), checking every batch against `max`. */
async function fetchCount(
  consumer: WorkConsumer,
  count: number,
  { max = count, timeoutMs = 10_000 }: { max?: number; timeoutMs?: number } = {},
): Promise<Lease[]> {
  const leases: Lease[] = [];
  const deadline = Date.now() + timeoutMs;
  while (leases.length < count && Date.now() < deadline) {
    const batch = await consumer.fetch(max, { maxWaitMs: Math.max(1, deadline - Date.now()) });
    expect(batch.length).toBeLessThanOrEqual(max);
    leases.push(...batch);
  }
  return leases;
}

/** Fetches (and acks) until a fetch waits `quietMs` without getting anything. */
async function drain(consumer: WorkConsumer, quietMs = 1_000): Promise<Lease[]> {
  const leases: Lease[] = [];
  for (;;) {
    const batch = await consumer.fetch(100, { maxWaitMs: quietMs });
    if (batch.length === 0) return leases;
    await ackAll(batch);
    leases.push(...batch);
  }
}

/** Asserts that nothing is delivered to `consumer` for `forMs`. */
async function expectNothingFor(consumer: WorkConsumer, forMs: number): Promise<void> {
  const delivered: Lease[] = [];
  const deadline = Date.now() + forMs;
  while (Date.now() < deadline) {
    delivered.push(...(await consumer.fetch(100, { maxWaitMs: Math.max(1, deadline - Date.now()) })));
  }
  expect(delivered.map((lease) => `${lease.item.taskId} (delivery ${lease.delivery})`)).toEqual([]);
}

/** Collects dead letters from the moment it is called until stop(). */
function collectDeadLetters(queue: WorkQueue): { letters: DeadLetter[]; stop(): Promise<void> } {
  const controller = new AbortController();
  const letters: DeadLetter[] = [];
  const done = (async () => {
    for await (const letter of queue.deadLetters(controller.signal)) letters.push(letter);
  })();
  return {
    letters,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

async function waitFor(condition: () => boolean, timeoutMs: number, whileWaiting: () => Promise<void>) {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await whileWaiting();
  return condition();
}

export function describeWorkQueueContract(
  name: string,
  makeQueue: (options: WorkQueueOptions) => Promise<WorkQueue>,
): void {
  describe(`WorkQueue contract: ${name}`, () => {
    const opened: WorkQueue[] = [];

    async function openQueue(options: WorkQueueOptions): Promise<WorkQueue> {
      const queue = await makeQueue(options);
      opened.push(queue);
      return queue;
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((queue) => queue.close()));
    });

    describe("fetch", () => {
      it("delivers a pool's items in publish order, each first as delivery 1", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("fifo");
        const items = range(10).map((n) => workItem(pool, n, { attempt: 2, dispatch: 3 }));
        await queue.publish(items);

        const leases = await fetchCount(queue.consumer(pool), items.length);
        expect(taskIds(leases)).toEqual(items.map((item) => item.taskId));
        for (const [i, lease] of leases.entries()) {
          expect(equals(WorkItemSchema, lease.item, items[i]!)).toBe(true);
          expect(lease.delivery).toBe(1);
          expect(lease.epoch).toBe(leaseEpoch(3, 1));
        }
        await ackAll(leases);
      });

      it("returns at most `max` items", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("max");
        await queue.publish(range(10).map((n) => workItem(pool, n)));
        const consumer = queue.consumer(pool);

        const first = await consumer.fetch(3, { maxWaitMs: 5_000 });
        expect(first.length).toBeGreaterThanOrEqual(1);
        expect(first.length).toBeLessThanOrEqual(3);
        const rest = await fetchCount(consumer, 10 - first.length, { max: 4 });
        expect(new Set(taskIds([...first, ...rest])).size).toBe(10);
        await ackAll([...first, ...rest]);
      });

      it("waits for an item published after it started, and returns soon after the publish", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("wait");
        const maxWaitMs = 20_000;
        const fetching = queue.consumer(pool).fetch(10, { maxWaitMs });
        await sleep(200);
        const publishedAt = Date.now();
        await queue.publish([workItem(pool, 1)]);

        const leases = await fetching;
        expect(taskIds(leases)).toEqual([`${pool}-task-1`]);
        // fetch must not hold on to fill `max`
        expect(Date.now() - publishedAt).toBeLessThan(SLACK_MS);
        await ackAll(leases);
      });

      it("returns [] after maxWaitMs when the pool stays empty", async () => {
        const queue = await openQueue(LONG_LEASES);
        const maxWaitMs = 500;
        const startedAt = Date.now();
        const leases = await queue.consumer(uniquePool("empty")).fetch(10, { maxWaitMs });
        const elapsed = Date.now() - startedAt;
        expect(leases).toEqual([]);
        expect(elapsed).toBeGreaterThanOrEqual(maxWaitMs - TIMER_JITTER_MS);
        expect(elapsed).toBeLessThan(maxWaitMs + SLACK_MS);
      });

      it("returns [] promptly when its signal aborts", async () => {
        const queue = await openQueue(LONG_LEASES);
        const consumer = queue.consumer(uniquePool("abort"));

        const controller = new AbortController();
        const startedAt = Date.now();
        const fetching = consumer.fetch(10, { signal: controller.signal, maxWaitMs: 30_000 });
        await sleep(100);
        controller.abort();
        expect(await fetching).toEqual([]);
        expect(Date.now() - startedAt).toBeLessThan(100 + SLACK_MS);

        const startedAborted = Date.now();
        expect(await consumer.fetch(10, { signal: AbortSignal.abort(), maxWaitMs: 30_000 })).toEqual([]);
        expect(Date.now() - startedAborted).toBeLessThan(SLACK_MS);
      });

      it("does not lose an item published after an aborted fetch", async () => {
        // FAST leases: an implementation may lease the item to the abandoned fetch; it must come back.
        const queue = await openQueue(FAST);
        const pool = uniquePool("abandoned");
        const consumer = queue.consumer(pool);
        const controller = new AbortController();
        const fetching = consumer.fetch(10, { signal: controller.signal, maxWaitMs: 30_000 });
        await sleep(100);
        controller.abort();
        expect(await fetching).toEqual([]);

        await queue.publish([workItem(pool, 1)]);
        const leases = await fetchCount(consumer, 1, { timeoutMs: 5 * FAST.ackWaitMs + SLACK_MS });
        expect(taskIds(leases)).toEqual([`${pool}-task-1`]);
        await ackAll(leases);
      });
    });

    describe("dedupe", () => {
      it("drops a publication seen within the window, but delivers another dispatch of the same attempt", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("dedupe");
        const first = workItem(pool, 1);
        await queue.publish([first]);
        await queue.publish([
          workItem(pool, 1), // same task, attempt and dispatch: a duplicate
          workItem(pool, 1, { dispatch: 2 }), // the hub re-published the attempt
          workItem(pool, 2),
          workItem(pool, 2), // a duplicate within one publish call
        ]);

        const leases = await drain(queue.consumer(pool));
        expect(leases.map((lease) => publication(lease.item)).sort()).toEqual(
          [`${pool}-task-1:1:1`, `${pool}-task-1:1:2`, `${pool}-task-2:1:1`].sort(),
        );
        const redispatched = leases.find((lease) => lease.item.dispatch === 2)!;
        expect(redispatched.delivery).toBe(1);
        expect(redispatched.epoch).toBe(leaseEpoch(2, 1));
      });

      it("still drops a publication within the window after it was acked", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("dedupe-acked");
        const consumer = queue.consumer(pool);
        await queue.publish([workItem(pool, 1)]);
        const leases = await fetchCount(consumer, 1);
        expect(leases).toHaveLength(1);
        await ackAll(leases);

        await queue.publish([workItem(pool, 1)]);
        await expectNothingFor(consumer, 1_000);
      });
    });

    describe("leases", () => {
      it("does not redeliver an acked item", async () => {
        // a little longer than FAST, so that a stall between fetch and ack does not redeliver
        const ackWaitMs = 500;
        const queue = await openQueue({ ...FAST, ackWaitMs });
        const pool = uniquePool("acked");
        const consumer = queue.consumer(pool);
        await queue.publish([workItem(pool, 1)]);
        const leases = await fetchCount(consumer, 1);
        expect(leases).toHaveLength(1);
        await ackAll(leases);
        await expectNothingFor(consumer, 4 * ackWaitMs);
      });

      it("redelivers an unacked item after ackWait, with delivery 2 and a higher epoch", async () => {
        const queue = await openQueue(FAST);
        const pool = uniquePool("expired");
        const consumer = queue.consumer(pool);
        await queue.publish([workItem(pool, 1)]);

        const fetchedAt = Date.now();
        const [first] = await fetchCount(consumer, 1);
        expect(first?.delivery).toBe(1);
        const [second] = await fetchCount(consumer, 1, { timeoutMs: 5 * FAST.ackWaitMs + SLACK_MS });
        // measured from before the first fetch: the lease cannot have started earlier
        expect(Date.now() - fetchedAt).toBeGreaterThanOrEqual(FAST.ackWaitMs);
        expect(second?.item.taskId).toBe(`${pool}-task-1`);
        expect(second?.delivery).toBe(2);
        expect(second!.epoch).toBeGreaterThan(first!.epoch);
        await second!.ack();
      });

      it("keeps a lease that is extended every ackWait/3 (the heartbeat), and redelivers once it stops", async () => {
        const ackWaitMs = 600;
        const queue = await openQueue({ ...FAST, ackWaitMs });
        const pool = uniquePool("heartbeat");
        await queue.publish([workItem(pool, 1)]);
        const [lease] = await fetchCount(queue.consumer(pool), 1);
        expect(lease?.delivery).toBe(1);

        const failures: unknown[] = [];
        let beat = Promise.resolve();
        const heartbeat = setInterval(() => {
          beat = lease!.extend().catch((error: unknown) => {
            failures.push(error);
          });
        }, ackWaitMs / 3);
        try {
          await expectNothingFor(queue.consumer(pool), 3 * ackWaitMs);
        } finally {
          clearInterval(heartbeat);
          await beat;
        }
        expect(failures).toEqual([]);

        const [redelivered] = await fetchCount(queue.consumer(pool), 1, {
          timeoutMs: 5 * ackWaitMs + SLACK_MS,
        });
        expect(redelivered?.delivery).toBe(2);
        await redelivered!.ack();
      });

      it("redelivers a nak(delay)ed item not before the delay, then promptly", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("nak-delay");
        const consumer = queue.consumer(pool);
        await queue.publish([workItem(pool, 1)]);
        const [first] = await fetchCount(consumer, 1);

        const delayMs = 800;
        const nakedAt = Date.now();
        await first!.nak(delayMs);
        const [second] = await fetchCount(consumer, 1, { timeoutMs: delayMs + SLACK_MS });
        const elapsed = Date.now() - nakedAt;
        expect(second?.item.taskId).toBe(`${pool}-task-1`);
        expect(elapsed).toBeGreaterThanOrEqual(delayMs);
        expect(elapsed).toBeLessThan(delayMs + SLACK_MS);
        expect(second?.delivery).toBe(2);
        expect(second!.epoch).toBeGreaterThan(first!.epoch);
        await second!.ack();
      });

      it("redelivers a nak()ed item promptly, long before ackWait", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("nak");
        const consumer = queue.consumer(pool);
        await queue.publish([workItem(pool, 1)]);
        const [first] = await fetchCount(consumer, 1);

        const nakedAt = Date.now();
        await first!.nak();
        const [second] = await fetchCount(consumer, 1, { timeoutMs: SLACK_MS });
        expect(Date.now() - nakedAt).toBeLessThan(SLACK_MS);
        expect(second?.delivery).toBe(2);
        await second!.ack();
      });

      it("accepts a late ack from an expired lease without throwing", async () => {
        const queue = await openQueue(FAST);
        const pool = uniquePool("late-ack");
        const consumer = queue.consumer(pool);
        await queue.publish([workItem(pool, 1)]);
        const [expired] = await fetchCount(consumer, 1);
        const [current] = await fetchCount(consumer, 1, { timeoutMs: 5 * FAST.ackWaitMs + SLACK_MS });
        expect(current?.delivery).toBe(2);

        // What the late ack does to the current lease is unspecified: the store's epoch fence decides.
        await expect(expired!.ack()).resolves.toBeUndefined();
        await expect(current!.ack()).resolves.toBeUndefined();
      });
    });

    describe("dead letters", () => {
      /** Expects `item` to arrive exactly once on `collector`, and never again on `consumer`. */
      async function expectDeadLetter(
        consumer: WorkConsumer,
        item: WorkItem,
        collector: ReturnType<typeof collectDeadLetters>,
        { pollMs, maxDeliveries }: { pollMs: number; maxDeliveries: number },
      ): Promise<void> {
        const ours = () => collector.letters.filter((letter) => letter.item.taskId === item.taskId);
        // keep a fetch open meanwhile: JetStream notices MaxDeliver when it tries to deliver again
        const redelivered: Lease[] = [];
        const arrived = await waitFor(
          () => ours().length > 0,
          10 * pollMs + SLACK_MS,
          async () => {
            redelivered.push(...(await consumer.fetch(10, { maxWaitMs: pollMs })));
          },
        );
        expect(taskIds(redelivered)).toEqual([]);
        expect(arrived).toBe(true);

        await expectNothingFor(consumer, 2 * pollMs);
        const letters = ours();
        expect(letters).toHaveLength(1);
        expect(letters[0]?.deliveries).toBe(maxDeliveries);
        expect(equals(WorkItemSchema, letters[0]!.item, item)).toBe(true);
      }

      it("turns an item into one dead letter after maxDeliveries unacked deliveries", async () => {
        const queue = await openQueue(FAST);
        const collector = collectDeadLetters(queue);
        try {
          const pool = uniquePool("dead");
          const consumer = queue.consumer(pool);
          const item = workItem(pool, 1);
          await queue.publish([item]);
          for (let delivery = 1; delivery <= FAST.maxDeliveries; delivery++) {
            const [lease] = await fetchCount(consumer, 1, { timeoutMs: 5 * FAST.ackWaitMs + SLACK_MS });
            expect(lease?.delivery).toBe(delivery);
          }
          await expectDeadLetter(consumer, item, collector, {
            pollMs: FAST.ackWaitMs,
            maxDeliveries: FAST.maxDeliveries,
          });
        } finally {
          await collector.stop();
        }
      });

      it("counts nak()ed deliveries too, including a nak(delay) of the last one", async () => {
        const queue = await openQueue(LONG_LEASES);
        const collector = collectDeadLetters(queue);
        try {
          const pool = uniquePool("dead-nak");
          const consumer = queue.consumer(pool);
          const item = workItem(pool, 1);
          await queue.publish([item]);
          for (let delivery = 1; delivery <= LONG_LEASES.maxDeliveries; delivery++) {
            const [lease] = await fetchCount(consumer, 1);
            expect(lease?.delivery).toBe(delivery);
            await lease!.nak(delivery === LONG_LEASES.maxDeliveries ? 200 : 0);
          }
          await expectDeadLetter(consumer, item, collector, {
            pollMs: FAST.ackWaitMs,
            maxDeliveries: LONG_LEASES.maxDeliveries,
          });
        } finally {
          await collector.stop();
        }
      });
    });

    describe("pools and consumers", () => {
      it("keeps pools isolated", async () => {
        const queue = await openQueue(LONG_LEASES);
        const [a, b, c] = [uniquePool("iso-a"), uniquePool("iso-b"), uniquePool("iso-c")];
        await queue.publish([workItem(a, 1), workItem(b, 1), workItem(a, 2)]);

        expect(taskIds(await drain(queue.consumer(b)))).toEqual([`${b}-task-1`]);
        expect(taskIds(await drain(queue.consumer(a)))).toEqual([`${a}-task-1`, `${a}-task-2`]);
        expect(await queue.consumer(c).fetch(10, { maxWaitMs: 500 })).toEqual([]);
      });

      it("gives each handler of a pool a lane of its own, apart from the pool's executables", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("lanes");
        const handlerItem = (n: number, handler: string) =>
          create(WorkItemSchema, {
            taskId: `${pool}-task-${n}`,
            runId: `${pool}-run`,
            attempt: 1,
            dispatch: 1,
            spec: { pool, target: { case: "handler", value: { handler } } },
          });
        await queue.publish([
          workItem(pool, 1),
          handlerItem(2, "resize"),
          handlerItem(3, "pkg.thumb"),
          handlerItem(4, "resize"),
        ]);
        expect(taskIds(await drain(queue.consumer(pool, "pkg.thumb")))).toEqual([`${pool}-task-3`]);
        expect(taskIds(await drain(queue.consumer(pool, "resize")))).toEqual([
          `${pool}-task-2`,
          `${pool}-task-4`,
        ]);
        expect(taskIds(await drain(queue.consumer(pool)))).toEqual([`${pool}-task-1`]);
        expect(await queue.consumer(pool, "unknown").fetch(10, { maxWaitMs: 300 })).toEqual([]);
      });

      it("shares a pool's items between consumers fetching concurrently: disjoint, and all of them", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("shared");
        const items = range(50).map((n) => workItem(pool, n));
        const received = new Set<string>();
        const deadline = Date.now() + 20_000;

        let largestBatch = 0;
        const consume = async (consumer: WorkConsumer): Promise<string[]> => {
          const ids: string[] = [];
          while (received.size < items.length && Date.now() < deadline) {
            const batch = await consumer.fetch(7, { maxWaitMs: 500 });
            largestBatch = Math.max(largestBatch, batch.length);
            await ackAll(batch);
            for (const id of taskIds(batch)) received.add(id);
            ids.push(...taskIds(batch));
          }
          return ids;
        };
        const consuming = [consume(queue.consumer(pool)), consume(queue.consumer(pool))];
        await sleep(100);
        await queue.publish(items);
        const [one, two] = await Promise.all(consuming);

        expect(largestBatch).toBeLessThanOrEqual(7);
        expect(one!.filter((id) => two!.includes(id))).toEqual([]);
        expect([...one!, ...two!].sort()).toEqual(items.map((item) => item.taskId).sort());
      });

      it("delivers a batch of 5,000 exactly once to two consumers fetching 500 at a time", async () => {
        const ackWaitMs = 2_000;
        const queue = await openQueue({ ...FAST, ackWaitMs });
        const pool = uniquePool("bulk");
        const items = range(5_000).map((n) => workItem(pool, n));
        await queue.publish(items);

        const counts = new Map<string, number>();
        const deliveries = new Set<number>();
        let largestBatch = 0;
        const deadline = Date.now() + 40_000;
        const consume = async (consumer: WorkConsumer): Promise<void> => {
          while (counts.size < items.length && Date.now() < deadline) {
            const batch = await consumer.fetch(500, { maxWaitMs: 1_000 });
            largestBatch = Math.max(largestBatch, batch.length);
            await ackAll(batch);
            for (const lease of batch) {
              counts.set(lease.item.taskId, (counts.get(lease.item.taskId) ?? 0) + 1);
              deliveries.add(lease.delivery);
            }
          }
        };
        const [one, two] = [queue.consumer(pool), queue.consumer(pool)];
        await Promise.all([consume(one), consume(two)]);

        expect(largestBatch).toBeLessThanOrEqual(500);
        expect(counts.size).toBe(items.length);
        expect([...counts].filter(([, count]) => count !== 1)).toEqual([]);
        expect([...deliveries]).toEqual([1]);
        await Promise.all([expectNothingFor(one, 2 * ackWaitMs), expectNothingFor(two, 2 * ackWaitMs)]);
      });
    });

    describe("queued", () => {
      it("tells which tasks still have a work item: waiting, leased, or delayed, but not acked", async () => {
        const queue = await openQueue(LONG_LEASES);
        const pool = uniquePool("queued");
        const [a, b, c] = [workItem(pool, 1), workItem(pool, 2), workItem(pool, 3)];
        await queue.publish([a, b, c]);
        const ask = () =>
          queue.queued([
            ...[a, b, c].map((i) => ({ pool, taskId: i.taskId })),
            { pool, taskId: `${pool}-task-404` },
          ]);
        expect(await ask()).toEqual(new Set([a.taskId, b.taskId, c.taskId]));
        const consumer = queue.consumer(pool);
        const leased = await fetchCount(consumer, 2, { max: 2 });
        expect(await ask()).toEqual(new Set([a.taskId, b.taskId, c.taskId]));
        await leased[0]!.ack();
        await leased[1]!.nak(5_000);
        // an ack may take a moment to reach the server
        let queued = await ask();
        await waitFor(
          () => !queued.has(leased[0]!.item.taskId),
          5_000,
          async () => {
            await sleep(50);
            queued = await ask();
          },
        );
        expect(queued).toEqual(new Set([leased[1]!.item.taskId, c.taskId]));
      });
    });

    describe("close", () => {
      it("can be closed twice", async () => {
        const queue = await makeQueue(FAST);
        await queue.publish([workItem(uniquePool("close"), 1)]);
        await expect(queue.close()).resolves.toBeUndefined();
        await expect(queue.close()).resolves.toBeUndefined();
        await expect(queue[Symbol.asyncDispose]()).resolves.toBeUndefined();
      });
    });
  });
}
