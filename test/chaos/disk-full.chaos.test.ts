import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { ownServices, scale, scenario } from "./harness/scenario.js";

// Postgres and the JetStream store on tmpfs mounts of their own, which the scenarios fill
const services = ownServices({ postgresDiskBytes: 512 * 2 ** 20, natsDiskBytes: 64 * 2 ** 20 });

describe("disks full (RELIABILITY.md §4.4)", () => {
  scenario(
    "18 Postgres disk full mid-run: no success without a durable row, everything recovers once space is back",
    { fast: false, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("18 Postgres disk full", services, { slots: 8 });
      const count = scale(400, 200);
      await cluster.submitMany("batch", count, { seconds: 0.2 });
      await cluster.untilLedger((e) => e.length >= count / 4, 30_000);
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

  scenario(
    "11 JetStream's store full mid-run: nothing queued without its PubAck is lost, everything drains once space is back",
    {
      fast: false,
      timeoutMs: 300_000,
      knownFailure:
        "after 10 s of a full store, work stops flowing once space is back: published tasks stay PENDING and the outbox is never drained",
    },
    async () => {
      await using cluster = await ChaosCluster.start("11 JetStream store full", services, {
        slots: 8,
        reconcileEvery: "1s",
        reconcileAfter: "3s",
      });
      const count = scale(400, 200);
      await cluster.submitMany("before", count / 2, { seconds: 0.2 });
      await cluster.untilLedger((e) => e.length >= count / 8, 30_000);
      cluster.faults.push(`JetStream's store filled at ${cluster.t}`);
      await services.nats.fill();
      // submitted while the store is full: Postgres has them, the outbox publishes them once it can
      await cluster.submitMany("during", count / 2, { seconds: 0.2 });
      await sleep(10_000);
      await services.nats.unfill();
      cluster.faults.push(`space given back at ${cluster.t}`);
      // nats-server 2.9 turns JetStream off when its store cannot write; an operator restarts it
      if (/disabl/i.test(services.nats.log)) {
        cluster.faults.push("JetStream had disabled itself: nats-server restarted");
        await services.nats.kill("SIGTERM");
        await services.nats.restart();
      }
      await cluster.quiesce(120_000).catch((error: Error) => {
        throw new Error(`${error.message}\nnats-server's log ends:\n${services.nats.log.slice(-3_000)}`);
      });
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });
      expect(services.nats.log).toMatch(/no space left on device|insufficient (storage )?resources|disk/i);
    },
  );
});
