import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect } from "vitest";
import { isTerminal } from "../../core/states.js";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { groupBy } from "./harness/invariants.js";
import { readLedger } from "./harness/ledger.js";
import { ownServices, scale, scenario } from "./harness/scenario.js";

const services = ownServices();

/** A DAG of `width` independent chains: n0 <- n1 <- ... (each node needs the one before). */
function chainDag(cluster: ChaosCluster, nodes: number, seconds: number) {
  return Array.from({ length: nodes }, (_, i) =>
    cluster.ledgerTask(`n${i}`, {
      seconds,
      needs: i >= 2 ? [`n${i - 1}`, `n${i - 2}`] : i === 1 ? ["n0"] : [],
    }),
  );
}

describe("process crashes and pauses (RELIABILITY.md §4.2)", () => {
  scenario(
    "2 sidecar SIGKILL mid-task: re-run within lease + AckWait + 5 s, one extra execution per crash",
    { fast: true, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("2 sidecar SIGKILL mid-task", services, {
        hubs: 1,
        ackWait: "4s",
        slots: 8,
      });
      const count = scale(120, 48);
      await cluster.submit(
        "sleepers",
        Array.from({ length: count }, (_, i) => cluster.ledgerTask(`s${i}`, { seconds: 3 })),
      );
      const kills = scale(3, 1);
      for (let k = 0; k < kills; k++) {
        await sleep(2_000);
        const victim = k % 3;
        await cluster.signalSidecar(victim, "SIGKILL");
        await sleep(2_000);
        await cluster.restartSidecar(victim);
      }
      await cluster.quiesce(240_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: count });
      // every duplicate is a redelivery after a lost lease, at most one per crash it was caught in
      for (const duplicate of report.duplicates) {
        expect(duplicate.reason).toMatch(/^redelivered to .* expired/);
        expect(duplicate.executions).toBeLessThanOrEqual(1 + kills);
      }

      // each re-run started within lease (AckWait) + 5 s of the crash that interrupted it
      const ledger = await readLedger(cluster.ledgerDir);
      for (const runs of groupBy(ledger, (e) => `${e.taskId}:${e.attempt}`).values()) {
        if (runs.length < 2) continue;
        runs.sort((a, b) => Number(a.startNs - b.startNs));
        for (let i = 1; i < runs.length; i++) {
          const killedAt = runs[i - 1]!.startNs;
          const delayMs = Number(runs[i]!.startNs - killedAt) / 1e6;
          expect(delayMs).toBeLessThanOrEqual(3_000 + 4_000 + 5_000 + 2_000);
        }
      }
    },
  );

  scenario(
    "3 hub SIGKILL loop: every DAG completes, no node scheduled twice",
    { fast: false, timeoutMs: 300_000 },
    async () => {
      await using cluster = await ChaosCluster.start("3 hub SIGKILL loop", services, { hubs: 2, slots: 8 });
      const dags = scale(12, 3);
      for (let d = 0; d < dags; d++) await cluster.submit(`dag-${d}`, chainDag(cluster, 20, 0.2));
      for (let k = 0; k < scale(4, 1); k++) {
        await sleep(5_000);
        const victim = k % 2;
        await cluster.killHub(victim);
        await sleep(1_500);
        await cluster.restartHub(victim);
      }
      await cluster.quiesce(240_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: dags * 20 });
    },
  );

  scenario(
    "6 sidecar SIGSTOP beyond its lease: re-leased elsewhere, the zombie's late result fenced",
    { fast: true, timeoutMs: 180_000 },
    async () => {
      await using cluster = await ChaosCluster.start("6 sidecar SIGSTOP beyond the lease", services, {
        hubs: 1,
        sidecars: 2,
        slots: 1,
        ackWait: "3s",
      });
      // sidecar-0 takes the first task: sidecar-1 is stopped until then
      await cluster.signalSidecar(1, "SIGSTOP");
      await cluster.submit("zombie", [cluster.ledgerTask("long", { seconds: 12 })]);
      await cluster.untilLedger((e) => e.length >= 1, 30_000);
      await cluster.signalSidecar(1, "SIGCONT");
      await sleep(1_000);
      await cluster.signalSidecar(0, "SIGSTOP");
      await sleep(3 * 3_000 + 1_000);
      await cluster.signalSidecar(0, "SIGCONT");
      await cluster.quiesce(90_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: 1 });
      expect(report.duplicates).toHaveLength(1);
      expect(report.duplicates[0]!.reason).toMatch(/redelivered to sidecar-1 .*expired/);

      const events = await cluster.query(
        (sql) => sql<{ host: string; rejected: boolean; to_state: number }[]>`
          select host, rejected, to_state from task_events order by id`,
      );
      // one accepted outcome, from the sidecar that held the lease; the zombie's, if it reported, was rejected
      const outcomes = events.filter((e) => isTerminal(e.to_state));
      expect(outcomes.filter((e) => !e.rejected).map((e) => e.host)).toEqual(["sidecar-1"]);
      expect(outcomes.filter((e) => e.rejected).every((e) => e.host === "sidecar-0")).toBe(true);
    },
  );

  scenario(
    "7 task SIGSTOPs itself beyond its time limit: killed on the sidecar's clock, TIMED_OUT",
    { fast: true, timeoutMs: 120_000 },
    async () => {
      await using cluster = await ChaosCluster.start("7 task SIGSTOP beyond its time limit", services, {
        hubs: 1,
        sidecars: 1,
      });
      await cluster.submit("stopped", [
        cluster.ledgerTask("frozen", { seconds: 30, mode: "stop-self", timeoutMs: 3_000 }),
      ]);
      await cluster.quiesce(60_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ TIMED_OUT: 1 });
      const [row] = await cluster.query(
        (sql) => sql<{ ms: number }[]>`
          select extract(epoch from finished_at - started_at) * 1000 as ms from tasks`,
      );
      // timeout + kill grace (0.5 s) + reporting
      expect(Number(row!.ms)).toBeGreaterThanOrEqual(3_000);
      expect(Number(row!.ms)).toBeLessThanOrEqual(3_000 + 2_000);
    },
  );

  scenario(
    "33 process-tree escape: a jailed task that leaves a detached process behind leaves nothing running",
    { fast: false, timeoutMs: 120_000 },
    async () => {
      // the jail's cgroup is what catches a process that left the task's session; unjailed tasks have none
      await using cluster = await ChaosCluster.start("33 process-tree escape", services, {
        hubs: 1,
        sidecars: 1,
        jail: "standard",
      });
      await cluster.submit("orphans", [cluster.ledgerTask("escaper", { mode: "orphan" })]);
      await cluster.quiesce(60_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      const ledger = await readLedger(cluster.ledgerDir);
      expect(report.states).toEqual({ SUCCEEDED: 1 });
      expect(ledger).toHaveLength(1);
      expect(await sleepersOf(join(cluster.dir, "work"))).toEqual([]);
    },
  );
});

/** `sleep 300` processes started from the scenario's directory (the ledger task's orphans). */
async function sleepersOf(dir: string): Promise<number[]> {
  const { readdir, readFile, readlink } = await import("node:fs/promises");
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (cmdline === "sleep\u0000300\u0000" && cwd === dir) found.push(Number(entry));
  }
  return found;
}
