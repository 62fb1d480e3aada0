import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { until } from "../helpers/until.js";
import { ChaosCluster, QUEUE_REFUSAL, violationsOf } from "./harness/chaos-cluster.js";
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
    "11 JetStream's store full mid-run: hubs push back (503) instead of queueing, nothing recorded is lost, everything drains once space is back",
    { fast: false, timeoutMs: 300_000 },
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
      // the first runs submitted now wait in the outbox; then the hubs refuse new ones and the submitter retries
      const during = cluster.submitMany("during", count / 2, { seconds: 0.2 });
      await until(
        () => cluster.unreadiness(),
        (problems) => problems.some((p) => QUEUE_REFUSAL.test(p)),
        60_000,
      );
      await sleep(10_000);
      await services.nats.unfill();
      cluster.faults.push(`space given back at ${cluster.t}`);
      // nats-server 2.9 deadlocks a stream's file store on a failed write (its goroutines wait on the
      // store's lock in writeMsgRecord): its JetStream never answers again. The hubs' /readyz says so,
      // and an operator restarts it; a nats-server that recovers by itself needs nothing.
      const recovered = await until(
        () => cluster.unreadiness(),
        (problems) => problems.length === 0,
        20_000,
      ).then(
        () => true,
        () => false,
      );
      if (!recovered) {
        cluster.faults.push(`the hubs still pushed back at ${cluster.t}: nats-server killed and restarted`);
        await services.nats.kill("SIGKILL");
        await services.nats.restart();
      }
      await during;
      await cluster.quiesce(120_000);
      cluster.faults.push(
        `${cluster.refusedSubmissions} submissions refused with Unavailable (503), then retried`,
      );
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });
      // callers were pushed back while the store was full, and every run they retried was taken
      expect(cluster.refusedSubmissions).toBeGreaterThan(0);
    },
  );
});
