import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { workConsumers } from "./harness/invariants.js";
import { ownServices, scale, scenario } from "./harness/scenario.js";

const services = ownServices();

describe("JetStream and Postgres faults (RELIABILITY.md §4.3, §4.4)", () => {
  scenario(
    "9 nats-server SIGTERM then SIGKILL mid-run: no task lost, delivery resumes",
    { fast: true, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("9 nats-server restart and crash", services, {
        slots: 8,
      });
      const count = scale(600, 200);
      await cluster.submitMany("batch", count, { seconds: 0.2 });
      for (const [fraction, signal] of [
        [0.25, "SIGTERM"],
        [0.5, "SIGKILL"],
      ] as const) {
        await cluster.untilLedger((e) => e.length >= Math.floor(count * fraction));
        cluster.faults.push(`${signal} nats-server at ${cluster.t}`);
        await services.nats.kill(signal);
        await sleep(3_000);
        await services.nats.restart();
      }
      await cluster.quiesce(240_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });
    },
  );

  scenario(
    "14 a task longer than AckWait: in-progress acks keep its lease, it runs once",
    { fast: false, timeoutMs: 120_000 },
    async () => {
      await using cluster = await ChaosCluster.start("14 task longer than AckWait", services, {
        hubs: 1,
        sidecars: 2,
        ackWait: "3s",
      });
      await cluster.submit("long", [cluster.ledgerTask("long", { seconds: 10 })]);
      await cluster.quiesce(60_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.executions).toBe(1);
      expect(report.duplicates).toEqual([]);
      const consumers = await workConsumers(services.nats.url, cluster.namespace);
      expect(consumers.length).toBeGreaterThan(0);
      expect(consumers.map((c) => c.num_redelivered)).toEqual(consumers.map(() => 0));
    },
  );

  scenario(
    "17 Postgres immediate shutdown twice mid-run: everything reconnects, no transition applied twice",
    { fast: false, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("17 Postgres immediate shutdown", services, {
        slots: 8,
      });
      const count = scale(500, 200);
      await cluster.submitMany("batch", count, { seconds: 0.2 });
      for (const [fraction, downMs] of [
        [0.2, 5_000],
        [0.5, 15_000],
      ] as const) {
        await cluster.untilLedger((e) => e.length >= Math.floor(count * fraction));
        cluster.faults.push(`pg_ctl stop -m immediate at ${cluster.t}, down ${downMs / 1000} s`);
        await services.postgres.stopImmediately();
        await sleep(downMs);
        await services.postgres.restart();
      }
      await cluster.quiesce(240_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });
    },
  );
});

describe("a hub crash between the queue's PubAck and clearing the outbox (RELIABILITY.md test 12)", () => {
  scenario(
    "12 failpoint hub.publish.after_puback=exit: the outbox publishes again, the queue drops the duplicates, each task runs once",
    { fast: true, timeoutMs: 180_000 },
    async () => {
      await using cluster = await ChaosCluster.start("12 crash after PubAck", services, {
        hubs: 1,
        reconcileEvery: "1s",
        reconcileAfter: "3s",
        hubEnv: { TASKFRAME_FAILPOINTS: "hub.publish.after_puback=exit" },
      });
      const hub = cluster.local.hubs[0]!;
      const submitted = cluster.submit(
        "published-twice",
        Array.from({ length: 50 }, (_, i) => cluster.ledgerTask(`t${i}`, { seconds: 0.5 })),
      );
      await hub.exited;
      cluster.faults.push(`hub-0 exited at the failpoint at ${cluster.t}`);
      await cluster.restartHub(0);
      await submitted;
      await cluster.quiesce(120_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: 50 });
      expect(report.executions).toBe(50);
      expect(report.duplicates).toEqual([]);
    },
  );
});
