import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RetryBudget } from "./retry-budget.js";

describe("RetryBudget", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("allows one second's worth at once, then refills at its rate, never above one second's worth", () => {
    const budget = new RetryBudget(10);
    expect(budget.available()).toBe(10);
    budget.spend(10);
    expect(budget.available()).toBe(0);
    expect(budget.waitMs()).toBeCloseTo(100);
    vi.advanceTimersByTime(250);
    expect(budget.available()).toBe(2);
    expect(budget.waitMs()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(budget.available()).toBe(10);
  });

  it("refuses a budget that is not above 0", () => {
    expect(() => new RetryBudget(0)).toThrow("a retry budget must be above 0 per second, got 0");
  });
});
