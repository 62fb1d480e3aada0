import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AsyncQueue } from "./async-queue.js";

describe("AsyncQueue", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("returns what is queued, in order, up to max", async () => {
    const queue = new AsyncQueue<number>();
    for (const n of [1, 2, 3, 4, 5]) queue.push(n);
    expect(await queue.take(2)).toEqual([1, 2]);
    expect(await queue.take()).toEqual([3, 4, 5]);
    expect(queue.size).toBe(0);
  });

  it("hands items pushed later to several waiting consumers, each item once", async () => {
    const queue = new AsyncQueue<number>();
    const takes = [queue.take(2), queue.take(2), queue.take(2)];
    await sleep(10);
    for (const n of [1, 2, 3, 4, 5, 6]) queue.push(n);
    const batches = await Promise.all(takes);
    expect(batches.map((batch) => batch?.length)).toEqual([2, 2, 2]);
    expect(batches.flatMap((batch) => batch ?? [])).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("keeps a consumer waiting when another took the item that woke it", async () => {
    const queue = new AsyncQueue<number>();
    const first = queue.take(1);
    const second = queue.take(1);
    await sleep(10);
    queue.push(1);
    expect(await first).toEqual([1]);
    await sleep(10);
    queue.push(2);
    expect(await second).toEqual([2]);
  });

  it("respects maxWaitMs overall, across wake-ups that found nothing left", async () => {
    const queue = new AsyncQueue<number>();
    const startedAt = Date.now();
    const starved = queue.take(1, { maxWaitMs: 300 });
    // each push wakes `starved`, but a take that needs no wait splices the item away first
    const greedy = (async () => {
      while (Date.now() - startedAt < 250) {
        queue.push(0);
        expect(await queue.take(1)).toEqual([0]);
        await sleep(20);
      }
    })();
    expect(await starved).toEqual([]);
    const elapsed = Date.now() - startedAt;
    await greedy;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("returns [] after maxWaitMs, and what arrived if something did", async () => {
    const queue = new AsyncQueue<string>();
    const startedAt = Date.now();
    expect(await queue.take(10, { maxWaitMs: 100 })).toEqual([]);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(95);

    const taking = queue.take(10, { maxWaitMs: 5_000 });
    setTimeout(() => queue.push("late"), 50);
    expect(await taking).toEqual(["late"]);
  });

  it("does not spin on a wait longer than a timer can hold", async () => {
    const warn = vi.spyOn(process, "emitWarning");
    const queue = new AsyncQueue<number>();
    const controller = new AbortController();
    const infinite = queue.take(1, { signal: controller.signal, maxWaitMs: Number.POSITIVE_INFINITY });
    const huge = queue.take(1, { signal: controller.signal, maxWaitMs: 2 ** 40 });
    await sleep(50);
    controller.abort();
    expect(await Promise.all([infinite, huge])).toEqual([[], []]);
    expect(warn).not.toHaveBeenCalled();
  });

  it("returns [] when the signal aborts, and takes nothing with an aborted signal", async () => {
    const queue = new AsyncQueue<number>();
    const controller = new AbortController();
    const taking = queue.take(10, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(await taking).toEqual([]);

    queue.push(1);
    expect(await queue.take(10, { signal: AbortSignal.abort() })).toEqual([]);
    expect(await queue.take(10)).toEqual([1]);
  });

  it("ends waiting and future takes on close, after handing out what is left", async () => {
    const queue = new AsyncQueue<number>();
    const waiting = [queue.take(), queue.take(5, { maxWaitMs: 10_000 })];
    await sleep(10);
    queue.close();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);

    const draining = new AsyncQueue<number>();
    draining.push(1);
    draining.close();
    draining.push(2);
    expect(draining.closed).toBe(true);
    expect(await draining.take()).toEqual([1]);
    expect(await draining.take()).toBeUndefined();
  });
});
