import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { describe, expect } from "vitest";
import { FireCause, OverlapPolicy, ScheduleSpecSchema } from "../../core/gen/taskframe/v1/schedule_pb.js";
import { RunSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { FakeClock, LIBFAKETIME } from "./harness/fake-clock.js";
import { readLedger } from "./harness/ledger.js";
import { ownServices, scenario } from "./harness/scenario.js";

// Postgres and NATS keep real time: the hosts whose clocks jump are the hubs' and the sidecars'
const services = ownServices();

const RETRY_MS = 4_000;
const TIMEOUT_MS = 3_000;
const AFTER_TIMEOUT_MS = 2_000;
/** RELIABILITY.md test 24: nothing fires more than 1 s early or late. */
const TOLERANCE_MS = 1_000;

describe("wall-clock jumps (RELIABILITY.md §4.6)", () => {
  scenario(
    "24 the hubs' and sidecars' clocks jump +1 h, then -1 h: retries, timeouts and a 1-second cron keep real time",
    { fast: false, timeoutMs: 180_000 },
    async () => {
      if (!FakeClock.available)
        throw new Error(`${LIBFAKETIME} is missing: install Debian's faketime (sdks/install-toolchains.sh)`);
      const clockDir = await mkdtemp(join(tmpdir(), "taskframe-clock-"));
      try {
        const clock = await FakeClock.create(clockDir);
        await using cluster = await ChaosCluster.start("24 wall-clock jumps", services, {
          hubEnv: clock.env,
          sidecarEnv: clock.env,
        });
        // a 1-second cron for 24 s; the harness's clock is real, like Postgres's
        const startMs = Math.ceil((Date.now() + 2_000) / 1_000) * 1_000;
        await cluster.client().putSchedules({
          schedules: [
            create(ScheduleSpecSchema, {
              name: "beat",
              run: create(RunSpecSchema, { name: "beat", tasks: [cluster.ledgerTask("beat")] }),
              trigger: { case: "cron", value: { expression: "* * * * * *" } },
              policy: {
                overlap: OverlapPolicy.ALLOW,
                startUnixMs: BigInt(startMs),
                endUnixMs: BigInt(startMs + 24_000),
              },
            }),
          ],
        });
        await cluster.submit("timing", [
          ...Array.from({ length: 10 }, (_, i) =>
            cluster.ledgerTask(`fails-${i}`, { exitCode: 1, retries: 3, intervalMs: RETRY_MS }),
          ),
          ...Array.from({ length: 5 }, (_, i) =>
            cluster.ledgerTask(`hangs-${i}`, {
              seconds: 30,
              timeoutMs: TIMEOUT_MS,
              retries: 3,
              intervalMs: AFTER_TIMEOUT_MS,
            }),
          ),
        ]);
        // the jumps land while retries wait and attempts run towards their timeouts
        await sleep(5_000);
        await clock.set("+1h");
        cluster.faults.push(`hub and sidecar clocks +1 h at ${cluster.t}`);
        await sleep(7_000);
        await clock.set("-1h");
        cluster.faults.push(`hub and sidecar clocks -1 h (2 h back) at ${cluster.t}`);
        await sleep(7_000);
        await clock.set("+0");
        cluster.faults.push(`hub and sidecar clocks back to real time at ${cluster.t}`);
        await sleep(Math.max(0, startMs + 26_000 - Date.now()));
        await cluster.quiesce(120_000);
        const report = await cluster.check();
        expect(violationsOf(report)).toEqual([]);

        const tasks = await cluster.query(
          (sql) => sql<{ id: string; name: string; attempt: number }[]>`
            select t.id, t.name, t.attempt from tasks t join runs r on r.id = t.run_id where r.name = 'timing'`,
        );
        expect(tasks.map((t) => t.attempt)).toEqual(tasks.map(() => 4));
        const ledger = await readLedger(cluster.ledgerDir);
        const ms = (ns: bigint) => Number(ns) / 1e6;
        for (const task of tasks) {
          const runs = ledger.filter((e) => e.taskId === task.id).sort((a, b) => a.attempt - b.attempt);
          expect(runs.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
          const hangs = task.name.startsWith("hangs");
          const interval = hangs ? AFTER_TIMEOUT_MS : RETRY_MS;
          for (const [i, run] of runs.entries()) {
            const attempt = `${task.name} attempt ${i + 1}`;
            // a timeout: stopped (its SIGTERM recorded) TIMEOUT_MS after it started
            if (hangs)
              expect(Math.abs(ms(run.endNs! - run.startNs) - TIMEOUT_MS), attempt).toBeLessThanOrEqual(
                TOLERANCE_MS,
              );
            if (i === 0) continue;
            // a retry: from the end of the attempt before to this start, at least the interval (counted from
            // when the hub recorded that end), and not more than TOLERANCE_MS later
            const gapMs = ms(run.startNs - runs[i - 1]!.endNs!);
            expect(gapMs, attempt).toBeGreaterThanOrEqual(interval);
            expect(gapMs, attempt).toBeLessThanOrEqual(interval + TOLERANCE_MS);
          }
        }

        // every slot fired once and on time: no burst after +1 h, nothing fired again after -1 h
        const { fires } = await cluster.client().getScheduleHistory({ name: "beat", limit: 100 });
        const slots = fires.map((f) => Number(f.slotUnixMs)).sort((a, b) => a - b);
        expect(slots).toEqual(Array.from({ length: 24 }, (_, k) => startMs + k * 1_000));
        expect(fires.filter((f) => f.cause !== FireCause.SCHEDULE)).toEqual([]);
        expect(new Set(fires.map((f) => f.runId)).size).toBe(24);
      } finally {
        await rm(clockDir, { recursive: true, force: true });
      }
    },
  );
});
