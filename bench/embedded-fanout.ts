import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedEngine } from "../embedded/engine.js";
import { peakRssBytes } from "./machine.js";
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
