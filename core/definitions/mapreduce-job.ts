import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  type MapReduceJob,
  MapReduceJobSchema,
  MapReduceOutputKind,
  type TaskSpec,
  TaskSpecSchema,
} from "../gen/taskframe/v1/spec_pb.js";
import type { MapDescriptor, ReduceDescriptor } from "../mapreduce/descriptor.js";
import { inputFiles, splitByBytes, splitKeys } from "../mapreduce/input-splits.js";
import type { TaskSettings } from "./pipeline-schema.js";
import { execTaskSpec, retryPolicy } from "./task-spec.js";

/** Where jobs stage their files when `work:` is not given: beside the definition. */
export const DEFAULT_WORK_DIR = ".taskframe-staging";

/** A map or reduce: a command (its first word resolved already), or an SDK handler. */
export type MapReduceStep = { argv: string[] } | { handler: string };

/** A job as YAML pipelines and `[MapReduce]` units both describe it, paths absolute. */
export interface MapReduceDefinition {
  input: { path: string } | { keys: string[] };
  partitions?: number;
  map: MapReduceStep;
  combine?: string[];
  reducers: number;
  reduce: MapReduceStep;
  /** A trailing `/` asks for a directory of part files. */
  output: string;
  work: string;
  /** Retries, timeout, env, cwd, pool and labels of every map and reduce. */
  settings: TaskSettings;
  baseDir: string;
}

export class MapReduceInputError extends Error {}

/**
 * The job as a run: map-0…, reduce-0… (each needing every map) and commit
 * (needing every reduce), plus the job the hub commits or rolls back. The
 * input is split here, where the definition is submitted.
 */
export async function buildMapReduceRun(
  definition: MapReduceDefinition,
): Promise<{ tasks: TaskSpec[]; job: MapReduceJob }> {
  const { settings, baseDir, reducers } = definition;
  const jobId = `mr-${randomBytes(8).toString("hex")}`;
  const staging = join(definition.work, jobId);
  const inputs = await splitInput(definition);

  const task = (
    name: string,
    step: MapReduceStep,
    descriptor: MapDescriptor | ReduceDescriptor,
    needs: string[],
  ) => {
    if ("handler" in step) {
      return create(TaskSpecSchema, {
        name,
        target: {
          case: "handler",
          value: {
            handler: step.handler,
            input: new TextEncoder().encode(JSON.stringify(descriptor)),
            contentType: "application/json",
          },
        },
        needs,
        retry: retryPolicy(settings),
        timeoutMs: BigInt(settings.timeout ?? 0),
        labels: settings.labels ?? {},
        pool: settings.pool ?? "",
      });
    }
    const withCommand = { ...descriptor, command: step.argv };
    return builtinTask(name, ["mapreduce", descriptor.phase, JSON.stringify(withCommand)], needs);
  };
  const builtinTask = (name: string, argv: string[], needs: string[]) => {
    const spec = execTaskSpec({ name, argv, args: [], needs, settings }, baseDir);
    if (spec.target.case === "exec") spec.target.value.builtin = true;
    return spec;
  };

  const common = { job: jobId, staging };
  const combine = definition.combine ? { combine: definition.combine } : {};
  const maps = inputs.map((input, partition) =>
    task(
      `map-${partition}`,
      definition.map,
      { phase: "map", ...common, partition, reducers, ...input, ...combine },
      [],
    ),
  );
  const mapNames = maps.map((m) => m.name);
  const reduces = Array.from({ length: reducers }, (_, partition) =>
    task(
      `reduce-${partition}`,
      definition.reduce,
      { phase: "reduce", ...common, partition, maps: maps.length },
      mapNames,
    ),
  );
  const commit = builtinTask(
    "commit",
    ["mapreduce", "commit"],
    reduces.map((r) => r.name),
  );
  // the commit only asks the hub; a hub that is briefly away is waited for
  commit.retry = retryPolicy({ retries: 5, retry_interval: 2_000 });
  commit.timeoutMs = 600_000n;
  const directory = definition.output.endsWith("/");
  const job = create(MapReduceJobSchema, {
    jobId,
    stagingDir: staging,
    output: directory ? definition.output.replace(/\/+$/, "") : definition.output,
    outputKind: directory ? MapReduceOutputKind.DIRECTORY : MapReduceOutputKind.FILE,
    maps: maps.length,
    reducers,
  });
  return { tasks: [...maps, ...reduces, commit], job };
}

async function splitInput(definition: MapReduceDefinition): Promise<Pick<MapDescriptor, "input" | "keys">[]> {
  const { input, partitions } = definition;
  if ("keys" in input) return splitKeys(input.keys, partitions).map((keys) => ({ keys }));
  const files = await inputFiles(input.path).catch((error: unknown) => {
    throw new MapReduceInputError(`cannot read the input ${input.path}: ${(error as Error).message}`);
  });
  return splitByBytes(files, partitions).map((ranges) => ({ input: ranges }));
}
