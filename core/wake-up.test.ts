import { describe, expect, it } from "vitest";
import { WakeUp } from "./wake-up.js";

describe("WakeUp", () => {
  it("wakes every waiter with one notify", async () => {
    const wakeUp = new WakeUp();
    const woken: number[] = [];
    const waits = [1, 2, 3].map((n) => wakeUp.wait({ maxWaitMs: 10_000 }).then(() => woken.push(n)));
    wakeUp.notify();
    await Promise.all(waits);
    expect(woken.sort()).toEqual([1, 2, 3]);
  });

  it("gives up after maxWaitMs, on abort, and at once when closed", async () => {
    const wakeUp = new WakeUp();
    const started = performance.now();
    await wakeUp.wait({ maxWaitMs: 50 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    const abort = new AbortController();
    const aborted = wakeUp.wait({ signal: abort.signal, maxWaitMs: 10_000 });
    abort.abort();
    await aborted;
    wakeUp.close();
    await wakeUp.wait({ maxWaitMs: 10_000 });
  });
});
