import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { startLocalCluster } from "../embedded/local-cluster.js";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import { embeddedRun } from "./embedded-fanout.js";
import { peakRssBytes } from "./machine.js";
import { shellPeerRows } from "./peers.js";
import { mb, type Scenario, throughputTable } from "./scenario.js";
import { type Shape, submitAndWait, type Timed, trueTasks } from "./workloads.js";

export interface DistributedResult extends Timed {
  hubPeakRssBytes: number[];
  sidecarPeakRssBytes: number[];
}

/**
 * The distributed mode on this machine: `task hub` and `task sidecar`
 * processes over the Postgres at `dbUrl` (a scratch database is created
 * and dropped) and the NATS at `natsUrl` (a scratch namespace).
 */
export async function distributedRun(
  count: number,
  shape: Shape,
  options: { dbUrl: string; natsUrl: string; hubs: number; sidecars: number; slots: number },
): Promise<DistributedResult> {
  const suffix = randomBytes(4).toString("hex");
  await using database = await createScratchDatabase(options.dbUrl, "taskframe_bench");
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const cluster = await startLocalCluster({
    dbUrl: database.url,
    natsUrl: options.natsUrl,
    namespace: `bench${suffix}`,
    dir,
    hubs: options.hubs,
    sidecars: options.sidecars,
    slots: options.slots,
    logLevel: "error",
  });
  try {
    const client = createClient(
      HubService,
      createConnectTransport({ baseUrl: cluster.hubUrls[0]!, httpVersion: "1.1" }),
    );
    const timed = await submitAndWait(client, trueTasks(count, shape, dir));
    const rss = (pids: (number | undefined)[]) =>
      pids.map((pid) => (pid === undefined ? 0 : (peakRssBytes(pid) ?? 0)));
    return {
      ...timed,
      hubPeakRssBytes: rss(cluster.hubs.map((h) => h.child.pid)),
      sidecarPeakRssBytes: rss(cluster.sidecars.map((s) => s.child.pid)),
    };
  } finally {
    await cluster.stop();
    await cluster.deleteStreams().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

export const distributedScenario: Scenario = {
  inAll: false,
  name: "distributed",
  summary:
    "N independent /bin/true tasks through 1 hub + 2 sidecars (processes, over Postgres and NATS),\nthe same through embedded mode, and xargs -P / make -j (default 20000)",
  async run({ tasks = 20_000, slots, db, nats, progress }) {
    progress("  taskframe: 1 hub + 2 sidecars ...");
    const cluster = await distributedRun(tasks, "independent", {
      dbUrl: db,
      natsUrl: nats,
      hubs: 1,
      sidecars: 2,
      slots,
    });
    progress("  taskframe embedded ...");
    const embedded = await embeddedRun(tasks, "independent", 2 * slots);
    return {
      data: { cluster, embedded },
      tables: [
        throughputTable(`distributed: ${tasks} independent tasks, ${slots} slots per sidecar`, [
          {
            runner: "taskframe 1 hub + 2 sidecars",
            tasks: cluster.tasks,
            seconds: cluster.totalSeconds,
            peakRss: `hub ${cluster.hubPeakRssBytes.map(mb).join(", ")}; sidecars ${cluster.sidecarPeakRssBytes.map(mb).join(", ")}`,
            note: `run ${cluster.state}; submit ${cluster.submitSeconds.toFixed(2)}s; Postgres + NATS on this box`,
          },
          {
            runner: `taskframe embedded (${2 * slots} slots)`,
            tasks: embedded.tasks,
            seconds: embedded.totalSeconds,
            peakRss: `${mb(embedded.peakRssBytes)} + spawner ${mb(embedded.spawnerPeakRssBytes)}`,
            note: `run ${embedded.state}; submit ${embedded.submitSeconds.toFixed(2)}s`,
          },
          ...shellPeerRows(tasks, 2 * slots, progress),
        ]),
      ],
    };
  },
};
