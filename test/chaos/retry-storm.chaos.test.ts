import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { until } from "../helpers/until.js";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { readLedger } from "./harness/ledger.js";
import { ownServices, scenario } from "./harness/scenario.js";

const services = ownServices();

const TASKS = 1_000;
const DOWN_MS = 20_000;
/** `task hub --retry-budget`: retries released per second by all hubs together. */
const BUDGET = 50;

/**
 * Retries the budget lets through in any `windowMs`: one second's burst, then
 * BUDGET a second. Releases are stamped on Postgres's clock when their
 * transaction starts, up to STAMP_SKEW_MS after the hub took the tokens.
 */
const STAMP_SKEW_MS = 250;
const allowed = (windowMs: number) => BUDGET * (1 + (windowMs + STAMP_SKEW_MS) / 1_000);

/** A service the tasks call: 503 until `recover()`, then 200. Records when each call arrived. */
class FakeDependency implements AsyncDisposable {
  readonly arrivals: number[] = [];
  upAt = Number.POSITIVE_INFINITY;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeDependency> {
    let dependency: FakeDependency | undefined;
    const server = createServer((_request, response) => {
      const now = Date.now();
      dependency!.arrivals.push(now);
      response.writeHead(now >= dependency!.upAt ? 200 : 503).end();
    });
    dependency = new FakeDependency(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return dependency;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  recover(): void {
    this.upAt = Date.now();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The most events in any window of `windowMs` starting at an event. */
function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

describe("retry storm (RELIABILITY.md §4.8)", () => {
  scenario(
    `37 ${TASKS} tasks call a dependency that answers 503 for ${DOWN_MS / 1000} s: retries stay within the budget, arrivals after recovery are smooth, and all succeed`,
    { fast: false, timeoutMs: 300_000 },
    async () => {
      await using dependency = await FakeDependency.start();
      await using cluster = await ChaosCluster.start("37 retry storm", services, {
        hubFlags: ["--retry-budget", String(BUDGET)],
      });
      await cluster.submitMany("calls", TASKS, {
        mode: "call",
        url: dependency.url,
        retries: 100,
        intervalMs: 1_000,
        jitter: 1,
      });
      await until(
        async () => dependency.arrivals.length,
        (n) => n > 0,
        30_000,
      );
      cluster.faults.push(`the dependency answers 503 from ${cluster.t}`);
      await sleep(DOWN_MS);
      dependency.recover();
      cluster.faults.push(`the dependency recovered at ${cluster.t}`);
      await cluster.quiesce(240_000);
      // retries released (queued again), on Postgres's clock
      const retries = (
        await cluster.query(
          (sql) => sql<{ ms: number }[]>`
            select (extract(epoch from at) * 1000)::float8 as ms from task_events
            where detail like 'attempt % queued'`,
        )
      ).map((r) => r.ms);
      const retried = (await readLedger(cluster.ledgerDir)).filter((e) => e.attempt > 1);
      const after = dependency.arrivals.filter((t) => t >= dependency.upAt);
      const drainMs = Math.max(1_000, after.at(-1)! - dependency.upAt);
      const meanPerSecond = (after.length / drainMs) * 1_000;
      const busiestAfter = busiestWindow(after, 1_000);
      cluster.faults.push(
        `${retries.length} retries, at most ${busiestWindow(retries, 1_000)} released in a second ` +
          `and ${busiestWindow(retries, 10_000)} in 10 s; ` +
          `after recovery ${after.length} calls in ${(drainMs / 1000).toFixed(1)} s, ` +
          `mean ${meanPerSecond.toFixed(0)}/s, busiest second ${busiestAfter}`,
      );
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: TASKS });
      expect(retries).toHaveLength(retried.length);
      expect(retries.length).toBeGreaterThan(TASKS / 2);
      // the budget: one second's burst, then BUDGET a second, over short and long windows alike
      for (const windowMs of [1_000, 10_000])
        expect(busiestWindow(retries, windowMs), `in ${windowMs} ms`).toBeLessThanOrEqual(allowed(windowMs));
      // after recovery: no second busier than twice the mean rate while the backlog drained
      expect(busiestAfter).toBeLessThanOrEqual(2 * meanPerSecond);
    },
  );
});
