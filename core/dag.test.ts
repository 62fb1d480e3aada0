import { describe, expect, it } from "vitest";
import { findCycle, topologicalOrder } from "./dag.js";

const chain = (length: number) =>
  Array.from({ length }, (_, i) => ({ name: `t${i}`, needs: i === 0 ? [] : [`t${i - 1}`] }));

describe("findCycle", () => {
  it("returns undefined for a DAG", () => {
    const tasks = [
      { name: "a", needs: [] },
      { name: "b", needs: ["a"] },
      { name: "c", needs: ["a", "b"] },
      { name: "d", needs: ["b", "c"] },
    ];
    expect(findCycle(tasks)).toBeUndefined();
    expect(findCycle([])).toBeUndefined();
  });

  it("returns the cycle along needs edges with the first name repeated at the end", () => {
    const tasks = [
      { name: "x", needs: ["a"] },
      { name: "a", needs: ["b"] },
      { name: "b", needs: ["c"] },
      { name: "c", needs: ["a"] },
    ];
    expect(findCycle(tasks)).toEqual(["a", "b", "c", "a"]);
  });

  it("finds a self-need", () => {
    expect(findCycle([{ name: "a", needs: ["a"] }])).toEqual(["a", "a"]);
  });

  it("ignores needs that name no task", () => {
    expect(findCycle([{ name: "a", needs: ["ghost"] }])).toBeUndefined();
  });

  it("does not mistake a diamond for a cycle", () => {
    const tasks = [
      { name: "top", needs: ["l", "r"] },
      { name: "l", needs: ["base"] },
      { name: "r", needs: ["base"] },
      { name: "base", needs: [] },
    ];
    expect(findCycle(tasks)).toBeUndefined();
  });

  it("handles a 200,000-long chain quickly and without recursion", () => {
    const tasks = chain(200_000);
    const started = performance.now();
    expect(findCycle(tasks)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("finds a cycle closing a 200,000-long chain", () => {
    const tasks = chain(200_000);
    tasks[0] = { name: "t0", needs: ["t199999"] };
    const cycle = findCycle(tasks);
    expect(cycle).toHaveLength(200_001);
    expect(cycle?.[0]).toBe(cycle?.at(-1));
  });

  it("handles a 1,000,000-long chain", () => {
    expect(findCycle(chain(1_000_000))).toBeUndefined();
  });
});

describe("topologicalOrder", () => {
  it("puts every task after the tasks it needs, keeping input order for ties", () => {
    const tasks = [
      { name: "load", needs: ["transform"] },
      { name: "extract", needs: [] },
      { name: "transform", needs: ["extract", "lookup"] },
      { name: "lookup", needs: [] },
    ];
    expect(topologicalOrder(tasks)).toEqual(["extract", "lookup", "transform", "load"]);
  });

  it("returns undefined for a cyclic graph", () => {
    expect(
      topologicalOrder([
        { name: "a", needs: ["b"] },
        { name: "b", needs: ["a"] },
      ]),
    ).toBeUndefined();
  });

  it("orders a long chain given in reverse", () => {
    const order = topologicalOrder(chain(100_000).reverse());
    expect(order?.[0]).toBe("t0");
    expect(order?.at(-1)).toBe("t99999");
  });
});
