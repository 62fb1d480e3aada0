import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { readLedger } from "./harness/ledger.js";
import { ownServices, scale, scenario } from "./harness/scenario.js";

// Postgres on a tmpfs of its own, which the scenario fills
const services = ownServices({ postgresDiskBytes: 512 * 2 ** 20 });

describe("disks full (RELIABILITY.md §4.4)", () => {
  scenario(
    "18 Postgres disk full mid-run: no success without a durable row, everything recovers once space is back",
    { fast: false, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("18 Postgres disk full", services, { slots: 8 });
      const count = scale(400, 200);
      await cluster.submitMany("batch", count, { seconds: 0.2 });
      for (let i = 0; i < 300 && (await readLedger(cluster.ledgerDir)).length < count / 4; i++)
        await sleep(100);
      cluster.faults.push(`Postgres's disk filled at ${cluster.t}`);
      await services.postgres.fill();
      await sleep(10_000);
      await services.postgres.unfill();
      cluster.faults.push(`space given back at ${cluster.t}`);
      // a Postgres that panicked on a failed WAL write and could not recover without space stays down: an operator restarts it
      if (!(await services.postgres.running())) {
        cluster.faults.push("Postgres had stopped: restarted");
        await services.postgres.restart();
      }
      await cluster.quiesce(240_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });
      // the fault happened: Postgres failed writes for want of space
      expect(await readFile(services.postgres.logFile, "utf8")).toMatch(/No space left on device/);
    },
  );
});
