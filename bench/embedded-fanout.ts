import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedEngine } from "../embedded/engine.js";
import { peakRssBytes } from "./machine.js";
import { shellPeerRows } from "./peers.js";
import { mb, type Scenario, throughputTable } from "./scenario.js";
import { type Shape, submitAndWait, type Timed, trueTasks } from "./workloads.js";

export interface EmbeddedResult extends Timed {
  peakRssBytes: number;
  spawnerPeakRssBytes: number | undefined;
}

/** Embedded mode, as `task run` uses it, with every transition recorded in PGlite. */
export async function embeddedRun(count: number, shape: Shape, slots: number): Promise<EmbeddedResult> {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const engine = await EmbeddedEngine.open({ dataDir: dir, slots });
  try {
    const timed = await submitAndWait(engine.client(), trueTasks(count, shape, dir));
    const spawnerPid = engine.spawnerPid;
    return {
      ...timed,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      spawnerPeakRssBytes: spawnerPid === undefined ? undefined : peakRssBytes(spawnerPid),
    };
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const fanoutScenario: Scenario = {
  inAll: false,
  name: "fanout",
  summary:
    "a fan-out of N /bin/true tasks between a root and a sink in embedded mode (task run),\nbeside xargs -P and make -j (default 10000)",
  async run({ tasks = 10_000, slots, progress }) {
    progress("  taskframe embedded ...");
    const embedded = await embeddedRun(tasks, "fanout", slots);
    return {
      data: embedded,
      tables: [
        throughputTable(`fanout: ${tasks} tasks, ${slots} at once`, [
          {
            runner: "taskframe embedded (task run)",
            tasks: embedded.tasks,
            seconds: embedded.totalSeconds,
            peakRss: `${mb(embedded.peakRssBytes)} + spawner ${mb(embedded.spawnerPeakRssBytes)}`,
            note: `run ${embedded.state}; submit ${embedded.submitSeconds.toFixed(2)}s; every transition recorded`,
          },
          ...shellPeerRows(tasks, slots, progress),
        ]),
      ],
    };
  },
};
