import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { RunState } from "../core/states.js";
import { EmbeddedEngine } from "../embedded/engine.js";
import { peakRssBytes } from "./machine.js";

export interface FanoutResult {
  tasks: number;
  submitSeconds: number;
  totalSeconds: number;
  tasksPerSecond: number;
  peakRssBytes: number;
  spawnerPeakRssBytes: number | undefined;
  state: string;
}

/**
 * Embedded mode, as `task run` uses it: one root, `count` tasks that each
 * run /bin/true and need the root, one sink that needs them all. Timed from
 * submit to the run's end, with every transition recorded in PGlite.
 */
export async function embeddedFanout(count: number, slots: number): Promise<FanoutResult> {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-"));
  const engine = await EmbeddedEngine.open({ dataDir: dir, slots });
  try {
    const client = engine.client();
    const exec = (name: string, needs: string[]) =>
      create(TaskSpecSchema, {
        name,
        needs,
        target: { case: "exec", value: { command: "/bin/true", cwd: dir } },
      });
    const middle = Array.from({ length: count }, (_, i) => exec(`t${i}`, ["root"]));
    const spec = create(RunSpecSchema, {
      name: "bench-fanout",
      tasks: [
        exec("root", []),
        ...middle,
        exec(
          "sink",
          middle.map((t) => t.name),
        ),
      ],
    });
    const started = performance.now();
    const { run } = await client.submitRun({ run: spec });
    const submitted = performance.now();
    for await (const _ of client.watchRun({ runId: run!.id })) {
      // ends when the run is finished
    }
    const finished = performance.now();
    const final = (await client.getRun({ runId: run!.id })).run!;
    const totalSeconds = (finished - started) / 1000;
    const spawnerPid = engine.spawnerPid;
    return {
      tasks: count + 2,
      submitSeconds: (submitted - started) / 1000,
      totalSeconds,
      tasksPerSecond: (count + 2) / totalSeconds,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      spawnerPeakRssBytes: spawnerPid === undefined ? undefined : peakRssBytes(spawnerPid),
      state: RunState[final.state] ?? String(final.state),
    };
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
