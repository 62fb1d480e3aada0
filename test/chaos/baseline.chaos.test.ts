import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { checkInvariants } from "./harness/invariants.js";
import { readLedger } from "./harness/ledger.js";
import { ownServices, scale, scenario } from "./harness/scenario.js";

const services = ownServices();

describe("baseline (RELIABILITY.md §4.1, test 4)", () => {
  scenario(
    "1 fault-free soak: every task once, zero duplicates",
    { fast: true, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("1 fault-free soak", services, { slots: 16 });
      const count = scale(5_000, 1_000);
      const started = Date.now();
      await cluster.submitMany("soak", count, { logLines: 2 });
      await cluster.quiesce(240_000);
      const seconds = (Date.now() - started) / 1000;
      const report = await cluster.check({ tasksPerSecond: Math.round(count / seconds) });
      expect(violationsOf(report)).toEqual([]);
      expect(report.tasks).toBe(count);
      expect(report.duplicates).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });

      // the oracle can fail: an execution nobody recorded a cause for, and a success nobody ran, are caught
      const [first] = await readLedger(cluster.ledgerDir);
      const forged = `start ${first!.taskId} ${first!.attempt} ${first!.leaseEpoch} elsewhere 1 ${first!.startNs}\n`;
      await appendFile(join(cluster.ledgerDir, "elsewhere.log"), forged);
      const tampered = await checkInvariants({
        dbUrl: cluster.dbUrl,
        natsUrl: cluster.nats.url,
        namespace: cluster.namespace,
        ledgerDir: cluster.ledgerDir,
      });
      expect(tampered.violations.I2).toEqual([expect.stringMatching(/ran 2 times with 0 recorded cause/)]);
      expect(tampered.violations.I3).toEqual([expect.stringMatching(/overlapped with no recorded cause/)]);
    },
  );

  scenario(
    "4 exit-code policy: declared codes fail at once, others use every retry, gaps follow the interval",
    { fast: true, timeoutMs: 120_000 },
    async () => {
      await using cluster = await ChaosCluster.start("4 exit-code policy", services, {
        hubs: 1,
        sidecars: 2,
      });
      const retry = { retries: 2, intervalMs: 1_000, jitter: 0.5, nonRetryableExitCodes: [42] };
      const codes = { ok: 0, one: 1, fortyTwo: 42, sigkillCode: 137 } as const;
      const tasks = Object.entries(codes).map(([name, exitCode]) =>
        cluster.ledgerTask(name, { exitCode, ...retry }),
      );
      tasks.push(cluster.ledgerTask("segv", { mode: "segv", ...retry }));
      await cluster.submit("exit-codes", tasks);
      await cluster.quiesce(60_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);

      const rows = await cluster.query(
        (sql) => sql<{ id: string; name: string; attempt: number; detail: string }[]>`
          select id, name, attempt, detail from tasks`,
      );
      const attempts = Object.fromEntries(rows.map((r) => [r.name, r.attempt]));
      expect(attempts).toEqual({ ok: 1, one: 3, fortyTwo: 1, sigkillCode: 3, segv: 3 });
      expect(rows.find((r) => r.name === "fortyTwo")?.detail).toContain("not retryable");

      const ledger = await readLedger(cluster.ledgerDir);
      for (const row of rows) {
        const starts = ledger
          .filter((e) => e.taskId === row.id)
          .sort((a, b) => a.attempt - b.attempt)
          .map((e) => e.startNs);
        // attempts numbered without gaps, one execution each
        expect(
          ledger
            .filter((e) => e.taskId === row.id)
            .map((e) => e.attempt)
            .sort(),
        ).toEqual(Array.from({ length: row.attempt }, (_, i) => i + 1));
        for (let i = 1; i < starts.length; i++) {
          const gapMs = Number(starts[i]! - starts[i - 1]!) / 1e6;
          // [interval, interval × (1 + jitter)] ± 1 s, plus the start-up of a shell
          expect(gapMs, `${row.name}: gap before attempt ${i + 1}`).toBeGreaterThanOrEqual(1_000);
          expect(gapMs, `${row.name}: gap before attempt ${i + 1}`).toBeLessThanOrEqual(1_500 + 1_000);
        }
      }
    },
  );
});
