import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { ChaosCluster, violationsOf } from "./harness/chaos-cluster.js";
import { readLedger } from "./harness/ledger.js";
import { NetnsHost } from "./harness/netns-host.js";
import { ownServices, scenario } from "./harness/scenario.js";

// sidecars on other hosts reach this file's nats-server over their veth
const services = ownServices({ natsBind: "0.0.0.0" });

let host: NetnsHost | undefined;
beforeAll(async () => {
  if (await NetnsHost.available()) host = await NetnsHost.create(1);
});
afterAll(async () => {
  await host?.[Symbol.asyncDispose]();
});

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
      for (
        let i = 0;
        i < 100 && !(await readLedger(cluster.ledgerDir)).some((e) => e.host === "sidecar-2");
        i++
      )
        await sleep(200);
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
});
