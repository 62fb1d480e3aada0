import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { until } from "../helpers/until.js";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { readLedger } from "./harness/ledger.js";
import { NetnsHost } from "./harness/netns-host.js";
import { ownServices, scenario } from "./harness/scenario.js";

// hubs and sidecars on other hosts reach this file's nats-server and Postgres over their veth
const services = ownServices({ natsBind: "0.0.0.0", postgresForOtherHosts: true });

let host: NetnsHost | undefined;
let hubHost: NetnsHost | undefined;
beforeAll(async () => {
  if (!(await NetnsHost.available())) return;
  host = await NetnsHost.create(1);
  hubHost = await NetnsHost.create(2);
});
afterAll(async () => {
  await host?.[Symbol.asyncDispose]();
  await hubHost?.[Symbol.asyncDispose]();
});

/** Whether the hub at `url` says it leads (`/healthz`); false when it does not answer. */
async function leads(url: string): Promise<boolean> {
  const body = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })
    .then((r) => r.text())
    .catch(() => "");
  return body.includes("leader: yes");
}

describe("network partitions (RELIABILITY.md §4.5)", () => {
  scenario(
    "21 a sidecar's host cut off for 2 × AckWait: its work re-leased elsewhere, its late results fenced, it rejoins",
    { fast: false, timeoutMs: 240_000 },
    async () => {
      if (!host) throw new Error("this machine cannot make network namespaces (needs root and iproute2)");
      const netnsHost = host;
      await using cluster = await ChaosCluster.start("21 sidecar host partitioned", services, {
        hubs: 1,
        sidecars: 2,
        slots: 4,
        ackWait: "3s",
      });
      await cluster.startSidecarOn(netnsHost, 2);
      await cluster.submit(
        "before",
        Array.from({ length: 24 }, (_, i) => cluster.ledgerTask(`b${i}`, { seconds: 5 })),
      );
      // cut it off once it holds work
      await cluster.untilLedger((e) => e.some((execution) => execution.host === "sidecar-2"), 20_000);
      await cluster.partition(netnsHost, "sidecar-2's host");
      await sleep(2 * 3_000 + 2_000);
      await cluster.heal(netnsHost, "sidecar-2's host");
      const healedAt = BigInt(Date.now()) * 1_000_000n;
      await cluster.submit(
        "after",
        Array.from({ length: 24 }, (_, i) => cluster.ledgerTask(`a${i}`, { seconds: 1 })),
      );
      await cluster.quiesce(180_000);
      const report = await cluster.check();
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: 48 });
      const ledger = await readLedger(cluster.ledgerDir);
      // what it held ran again elsewhere, and it rejoined: it ran work submitted after the heal
      expect(report.duplicates.some((d) => /lease held by sidecar-2 expired/.test(d.reason))).toBe(true);
      expect(ledger.some((e) => e.host === "sidecar-2" && e.startNs > healedAt)).toBe(true);
    },
  );

  scenario(
    "22 the leading hub's host cut off: the other hub takes the lead, one leader after the heal, every DAG completes",
    { fast: false, timeoutMs: 240_000 },
    async () => {
      if (!hubHost) throw new Error("this machine cannot make network namespaces (needs root and iproute2)");
      const leaderHost = hubHost;
      await using cluster = await ChaosCluster.start("22 leading hub partitioned", services, {
        hubs: 1,
        sidecars: 2,
        slots: 4,
      });
      const away = await cluster.startHubOn(leaderHost);
      const awayUrl = `http://${leaderHost.insideIp}:${new URL(cluster.local.hubUrls[away]!).port}`;
      // the hub over there leads once hub 0 (which led first) has gone and come back
      await cluster.killHub(0);
      await until(() => leads(awayUrl), Boolean, 15_000);
      await cluster.restartHub(0);
      const homeUrl = cluster.local.hubUrls[0]!;
      for (let d = 0; d < 4; d++) {
        await cluster.submit(
          `dag-${d}`,
          Array.from({ length: 20 }, (_, i) =>
            cluster.ledgerTask(`n${i}`, { seconds: 0.3, needs: i > 0 ? [`n${i - 1}`] : [] }),
          ),
        );
      }
      await cluster.partition(leaderHost, "the leading hub's host");
      const partitionedAt = Date.now();
      await until(() => leads(homeUrl), Boolean, 30_000);
      const takeoverMs = Date.now() - partitionedAt;
      cluster.faults.push(`hub 0 led ${(takeoverMs / 1000).toFixed(1)} s after the partition`);
      await sleep(Math.max(0, 20_000 - takeoverMs));
      await cluster.heal(leaderHost, "the leading hub's host");
      await cluster.quiesce(180_000);
      const report = await cluster.check({ takeoverSeconds: Math.round(takeoverMs / 100) / 10 });
      expect(violationsOf(report)).toEqual([]);
      expect(report.states).toEqual({ SUCCEEDED: 80 });
      expect(report.duplicates).toEqual([]);
      // after the heal, the old leader has let go: one leader
      await sleep(3_000);
      expect([await leads(homeUrl), await leads(awayUrl)]).toEqual([true, false]);
    },
  );
});
