import { create } from "@bufbuild/protobuf";
import { RunSpecSchema, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../core/package-root.js";
import { startNoopCluster, waitForRun } from "./dag.js";
import { mb, type Scenario } from "./scenario.js";

/** Children per ctx.spawn call. */
const BATCH = 1_000;

export interface SpawnResult {
  children: number;
  batch: number;
  state: string;
  /** The parent's loop of ctx.spawn calls, as the handler timed it. */
  spawnSeconds: number;
  /** SubmitRun to the run's end (the parent and every child). */
  totalSeconds: number;
  hubPeakRssBytes: number;
  sidecarPeakRssBytes: number;
}

export const spawnScenario: Scenario = {
  name: "spawn",
  summary:
    "one handler task spawns N no-op children in batches of 1000 (ctx.spawn) through 1 hub + 1 sidecar\n" +
    "+ a TypeScript worker; the children run while it spawns (default 100000)",
  async run(context) {
    const children = context.tasks ?? 100_000;
    context.progress(`  one parent spawning ${children} children in batches of ${BATCH} ...`);
    await using cluster = await startNoopCluster(context, packagePath("bench/workers/spawner.mjs"));
    const spec = create(RunSpecSchema, {
      name: "bench-spawn",
      tasks: [
        create(TaskSpecSchema, {
          name: "parent",
          target: {
            case: "handler",
            value: {
              handler: "spawner",
              input: new TextEncoder().encode(JSON.stringify({ children, batch: BATCH })),
              contentType: "application/json",
            },
          },
        }),
      ],
    });
    const started = performance.now();
    const { run } = await cluster.client.submitRun({ run: spec });
    const { state } = await waitForRun(cluster.sql, run!.id);
    const totalSeconds = (performance.now() - started) / 1000;
    const [parent] = await cluster.sql<{ output: Uint8Array | null }[]>`
      select output from tasks where run_id = ${run!.id} and name = 'parent'`;
    const output = parent?.output
      ? (JSON.parse(Buffer.from(parent.output).toString("utf8")) as { spawnMs: number })
      : undefined;
    const result: SpawnResult = {
      children,
      batch: BATCH,
      state,
      spawnSeconds: output ? output.spawnMs / 1000 : Number.NaN,
      totalSeconds,
      hubPeakRssBytes: cluster.hubPeakRssBytes(),
      sidecarPeakRssBytes: cluster.sidecarPeakRssBytes(),
    };
    return {
      data: result,
      tables: [
        {
          title: `spawn: one handler spawns ${children} no-op children in batches of ${BATCH}, 1 hub + 1 sidecar + 1 TS worker (concurrency ${context.concurrency})`,
          header: ["children", "spawn s", "spawned/s", "total s", "children/s", "note"],
          rows: [
            [
              String(children),
              result.spawnSeconds.toFixed(2),
              (children / result.spawnSeconds).toFixed(0),
              totalSeconds.toFixed(2),
              (children / totalSeconds).toFixed(0),
              `run ${state}; children run while the parent spawns; peak RSS hub ${mb(result.hubPeakRssBytes)}, sidecar ${mb(result.sidecarPeakRssBytes)}`,
            ],
          ],
        },
      ],
    };
  },
};
