import { randomBytes } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import { errorMessage } from "../errors.js";
import {
  MapReduceJobSchema,
  MapReduceOutputKind,
  type TaskSpec,
  TaskSpecSchema,
} from "../gen/taskframe/v1/spec_pb.js";
import type { MapDescriptor, ReduceDescriptor } from "../mapreduce/descriptor.js";
import { inputFiles, splitByBytes, splitKeys } from "../mapreduce/input-splits.js";
import { type MapReduceFields, mapReduceSchema } from "./mapreduce-schema.js";
import type { Substituter } from "./pipeline-scope.js";
import type { SpecContext } from "./pipeline-task-spec.js";
import { checkMap } from "./schema-check.js";
import { execTaskSpec, mergeSettings, retryPolicy } from "./task-spec.js";

/** Where jobs stage their files when `work:` is not given: beside the definition. */
export const DEFAULT_WORK_DIR = ".taskframe-staging";

type Step = MapReduceFields["map"];

/**
 * A pipeline's `mapreduce:` block as a run: map-0…, reduce-0… (each needing
 * every map) and commit (needing every reduce), plus the job the hub commits
 * or rolls back. The input is split here, where the pipeline is submitted.
 */
export async function compileMapReduce(
  context: SpecContext,
  raw: unknown,
  sub: Substituter,
): Promise<{ tasks: TaskSpec[]; job: ReturnType<typeof create<typeof MapReduceJobSchema>> }> {
  const { source, baseDir } = context;
  const fields = checkMap(source, mapReduceSchema, raw, ["mapreduce"]);
  const at = (...path: (string | number)[]) => ["mapreduce", ...path];
  const settings = mergeSettings(context.defaults, {
    ...fields,
    env: sub.map(fields.env, at("env")),
    cwd: sub.optional(fields.cwd, at("cwd")),
    pool: sub.optional(fields.pool, at("pool")),
    labels: sub.map(fields.labels, at("labels")),
  });
  const output = resolve(baseDir, sub.text(fields.output, at("output")));
  const outputKind = fields.output.endsWith("/") ? MapReduceOutputKind.DIRECTORY : MapReduceOutputKind.FILE;
  const jobId = `mr-${randomBytes(8).toString("hex")}`;
  const staging = join(resolve(baseDir, sub.optional(fields.work, at("work")) ?? DEFAULT_WORK_DIR), jobId);
  const reducers = fields.reducers ?? 1;
  const argvOf = (step: readonly string[], path: (string | number)[]) => {
    const [command = "", ...args] = sub.words(step, path);
    return [command.includes("/") && !isAbsolute(command) ? resolve(baseDir, command) : command, ...args];
  };
  const combine = fields.combine && argvOf(fields.combine, at("combine"));

  let inputs: Pick<MapDescriptor, "input" | "keys">[];
  if (typeof fields.input === "string") {
    const path = resolve(baseDir, sub.text(fields.input, at("input")));
    const files = await inputFiles(path).catch((error: unknown) =>
      source.fail(at("input"), `cannot read the input ${path}: ${errorMessage(error)}`),
    );
    inputs = splitByBytes(files, fields.partitions).map((ranges) => ({ input: ranges }));
  } else {
    inputs = splitKeys(fields.input.keys, fields.partitions).map((keys) => ({ keys }));
  }
  sub.check();

  const task = (name: string, step: Step, stepPath: string, descriptor: object, needs: string[]) => {
    const json = JSON.stringify(descriptor);
    if (!Array.isArray(step) && "handler" in step) {
      return create(TaskSpecSchema, {
        name,
        target: {
          case: "handler",
          value: {
            handler: step.handler,
            input: new TextEncoder().encode(json),
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
    const argv = argvOf(Array.isArray(step) ? step : step.run, at(stepPath));
    return builtinTask(
      name,
      ["mapreduce", stepPath, JSON.stringify({ ...descriptor, command: argv })],
      needs,
    );
  };
  const builtinTask = (name: string, argv: string[], needs: string[]) => {
    const spec = execTaskSpec({ name, argv, args: [], needs, settings }, baseDir);
    if (spec.target.case === "exec") spec.target.value.builtin = true;
    return spec;
  };

  const common = { job: jobId, staging };
  const maps = inputs.map((input, partition) => {
    const descriptor = {
      phase: "map" as const,
      ...common,
      partition,
      reducers,
      ...input,
      ...(combine ? { combine } : {}),
    };
    return task(
      `map-${partition}`,
      fields.map,
      "map",
      descriptor satisfies Omit<MapDescriptor, "command">,
      [],
    );
  });
  const mapNames = maps.map((m) => m.name);
  const reduces = Array.from({ length: reducers }, (_, partition) => {
    const descriptor = { phase: "reduce" as const, ...common, partition, maps: maps.length };
    return task(
      `reduce-${partition}`,
      fields.reduce,
      "reduce",
      descriptor satisfies Omit<ReduceDescriptor, "command">,
      mapNames,
    );
  });
  const commit = builtinTask(
    "commit",
    ["mapreduce", "commit"],
    reduces.map((r) => r.name),
  );
  // the commit only asks the hub; a hub that is briefly away is waited for
  commit.retry = retryPolicy({ retries: 5, retry_interval: 2_000 });
  commit.timeoutMs = 600_000n;
  const job = create(MapReduceJobSchema, {
    jobId,
    stagingDir: staging,
    output,
    outputKind,
    maps: maps.length,
    reducers,
  });
  return { tasks: [...maps, ...reduces, commit], job };
}
