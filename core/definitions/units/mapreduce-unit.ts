import { resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import { DefinitionError, errorMessage } from "../../errors.js";
import { type RunSpec, RunSpecSchema } from "../../gen/taskframe/v1/spec_pb.js";
import { buildMapReduceRun, DEFAULT_WORK_DIR } from "../mapreduce-job.js";
import type { CompiledUnit } from "./compiled-unit.js";

/** A `[MapReduce]` unit as its job's run: the same job a YAML `mapreduce:` block makes. */
export async function mapReduceUnitRun(unit: CompiledUnit, source: string): Promise<RunSpec> {
  const settings = unit.mapReduce!;
  const at = (field: string) => ({
    file: unit.file,
    line: settings.line,
    column: settings.column,
    path: `MapReduce.${field}`,
  });
  if (unit.requires.length + unit.after.length + unit.wants.length > 0) {
    throw new DefinitionError(
      at("map"),
      "a [MapReduce] unit runs on its own: it cannot require, want or come after other units (its tasks are map-N, reduce-N and commit)",
    );
  }
  if (!settings.output) {
    throw new DefinitionError(
      at("output"),
      "missing `output=`; expected where the job's output goes (a file, or a directory ending in /)",
    );
  }
  const { task } = unit;
  const output = settings.output;
  try {
    const { tasks, job } = await buildMapReduceRun({
      input: { path: resolve(unit.dir, settings.input) },
      ...(settings.partitions === undefined ? {} : { partitions: settings.partitions }),
      map: { argv: settings.map },
      ...(settings.combine ? { combine: settings.combine } : {}),
      reducers: settings.reducers ?? 1,
      reduce: { argv: settings.reduce },
      output: `${resolve(unit.dir, output)}${output.endsWith("/") ? "/" : ""}`,
      work: resolve(unit.dir, settings.work ?? DEFAULT_WORK_DIR),
      settings: {
        retries: task.retries,
        retry_interval: task.retryIntervalMs,
        ...(task.timeoutMs ? { timeout: task.timeoutMs } : {}),
        env: task.env,
        cwd: task.cwd,
      },
      baseDir: unit.dir,
    });
    return create(RunSpecSchema, { name: unit.name, source, tasks, mapreduce: job });
  } catch (error) {
    throw new DefinitionError(at("input"), errorMessage(error), { cause: error });
  }
}
