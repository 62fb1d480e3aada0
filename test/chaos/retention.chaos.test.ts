import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { ownServices, scenario } from "./harness/scenario.js";

// autovacuum looks every second; a lock waited on for a whole second is logged
const services = ownServices({
  postgresSettings: { autovacuum_naptime: "1s", log_lock_waits: "on", deadlock_timeout: "1s" },
});

const WINDOW_S = 20;
const EVERY_S = 5;
const LOAD_S = 80;
const TASKS_PER_SECOND = 40;
/** ~64 KB of stdout per task (52 bytes a line): log chunks stored out of line (TOAST), compressed. */
const LOG_LINES = 1_250;
const TABLES = ["runs", "tasks", "task_edges", "task_events", "log_chunks", "task_outputs", "outbox"];

const percentile = (values: readonly number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
};

describe("history and retention (RELIABILITY.md §4.4)", () => {
  scenario(
    `20 retention under load: ${TASKS_PER_SECOND} tasks/s writing 64 KB each for ${LOAD_S} s, a ${WINDOW_S} s window pruned every ${EVERY_S} s: the store stops growing, no lock waits a second, the API stays fast, vacuum keeps up`,
    { fast: false, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("20 retention under load", services, {
        hubFlags: ["--retention", `${WINDOW_S}s`, "--retention-every", `${EVERY_S}s`],
      });
      const size = async () =>
        cluster.query(async (sql) => {
          const [row] = await sql<{ bytes: string }[]>`
            select sum(pg_total_relation_size(t::regclass))::text as bytes from unnest(${TABLES}::text[]) t`;
          return Number(row!.bytes);
        });
      const runsLeft = () =>
        cluster.query(async (sql) => (await sql<{ n: number }[]>`select count(*)::int as n from runs`)[0]!.n);

      // the API's latency, sampled all along
      const latencies: { at: number; ms: number }[] = [];
      const sampling = new AbortController();
      const sampler = (async () => {
        const client = cluster.client();
        while (!sampling.signal.aborted) {
          const started = performance.now();
          await client.listRuns({ limit: 20 });
          latencies.push({ at: Date.now(), ms: performance.now() - started });
          await sleep(100);
        }
      })();

      const sizes: { at: number; bytes: number }[] = [];
      let submitted = 0;
      let firstPruneAt: number | undefined;
      const loadStarted = Date.now();
      for (let second = 0; second < LOAD_S; second++) {
        const tick = sleep(1_000);
        await cluster.submit(
          `load-${second}`,
          Array.from({ length: TASKS_PER_SECOND }, (_, i) =>
            cluster.ledgerTask(`t${i}`, { logLines: LOG_LINES }),
          ),
        );
        submitted++;
        if (firstPruneAt === undefined && (await runsLeft()) < submitted) firstPruneAt = Date.now();
        if (second % EVERY_S === 0) sizes.push({ at: Date.now(), bytes: await size() });
        await tick;
      }
      const loadEnded = Date.now();
      cluster.faults.push(
        `retention first deleted runs ${((firstPruneAt! - loadStarted) / 1000).toFixed(0)} s in`,
      );
      await cluster.quiesce(120_000);
      sampling.abort();
      await sampler;

      // steady state: after the second cycle that deleted runs, the store grows by at most 20 %
      const afterSecondCycle = sizes.filter((s) => s.at >= firstPruneAt! + EVERY_S * 1_000);
      const reference = afterSecondCycle[0]!.bytes;
      const largest = Math.max(...afterSecondCycle.map((s) => s.bytes));
      // the API while retention runs, against before it first deleted anything
      const baseline = latencies.filter((l) => l.at < firstPruneAt!).map((l) => l.ms);
      const during = latencies.filter((l) => l.at >= firstPruneAt! && l.at < loadEnded).map((l) => l.ms);
      // dead tuples once autovacuum has been by
      let deadShare = 1;
      for (let i = 0; i < 60 && deadShare >= 0.2; i++) {
        await sleep(1_000);
        deadShare = await cluster.query(async (sql) => {
          const rows = await sql<{ live: number; dead: number }[]>`
            select n_live_tup::float8 as live, n_dead_tup::float8 as dead from pg_stat_user_tables
            where relname = any(${TABLES}::text[])`;
          const live = rows.reduce((n, r) => n + r.live, 0);
          const dead = rows.reduce((n, r) => n + r.dead, 0);
          return dead / Math.max(1, live + dead);
        });
      }
      const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
      cluster.faults.push(
        `store ${mb(reference)} after the second pruning cycle, at most ${mb(largest)} after; ` +
          `API p99 ${percentile(baseline, 99).toFixed(0)} ms before retention, ${percentile(during, 99).toFixed(0)} ms during; ` +
          `dead tuples ${(deadShare * 100).toFixed(0)} % after autovacuum`,
      );
      // a task may be gone only if it ended before the window
      const report = await cluster.check({}, { prunedBefore: Date.now() - WINDOW_S * 1_000 });
      expect(violationsOf(report)).toEqual([]);
      expect(await runsLeft()).toBeLessThan(submitted);
      expect(afterSecondCycle.length).toBeGreaterThanOrEqual(3);
      expect(largest).toBeLessThanOrEqual(1.2 * reference);
      expect(baseline.length).toBeGreaterThan(50);
      expect(during.length).toBeGreaterThan(50);
      expect(percentile(during, 99)).toBeLessThanOrEqual(2 * percentile(baseline, 99));
      expect(deadShare).toBeLessThan(0.2);
      // no statement waited a whole second for a lock retention held (log_lock_waits)
      expect(await readFile(services.postgres.logFile, "utf8")).not.toMatch(/still waiting for/);
    },
  );
});
