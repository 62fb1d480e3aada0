import { isAbsolute, resolve } from "node:path";
import { errorMessage } from "../errors.js";
import { buildMapReduceRun, DEFAULT_WORK_DIR, type MapReduceStep } from "./mapreduce-job.js";
import { type MapReduceFields, mapReduceSchema } from "./mapreduce-schema.js";
import type { Substituter } from "./pipeline-scope.js";
import type { SpecContext } from "./pipeline-task-spec.js";
import { checkMap } from "./schema-check.js";
import { mergeSettings } from "./task-spec.js";

/** A pipeline's `mapreduce:` block, checked and substituted, as the job's run (mapreduce-job.ts). */
export async function compileMapReduce(context: SpecContext, raw: unknown, sub: Substituter) {
  const { source, baseDir } = context;
  const fields = checkMap(source, mapReduceSchema, raw, ["mapreduce"]);
  const at = (...path: (string | number)[]) => ["mapreduce", ...path];
  const argvOf = (words: readonly string[], path: (string | number)[]) => {
    const [command = "", ...args] = sub.words(words, path);
    return [command.includes("/") && !isAbsolute(command) ? resolve(baseDir, command) : command, ...args];
  };
  const step = (written: MapReduceFields["map"], name: "map" | "reduce"): MapReduceStep => {
    if (Array.isArray(written)) return { argv: argvOf(written, at(name)) };
    if ("run" in written) return { argv: argvOf(written.run, at(name, "run")) };
    return { handler: written.handler };
  };
  const output = sub.text(fields.output, at("output"));
  const definition = {
    input:
      typeof fields.input === "string"
        ? { path: resolve(baseDir, sub.text(fields.input, at("input"))) }
        : { keys: fields.input.keys },
    ...(fields.partitions === undefined ? {} : { partitions: fields.partitions }),
    map: step(fields.map, "map"),
    ...(fields.combine ? { combine: argvOf(fields.combine, at("combine")) } : {}),
    reducers: fields.reducers ?? 1,
    reduce: step(fields.reduce, "reduce"),
    output: `${resolve(baseDir, output)}${output.endsWith("/") ? "/" : ""}`,
    work: resolve(baseDir, sub.optional(fields.work, at("work")) ?? DEFAULT_WORK_DIR),
    settings: mergeSettings(context.defaults, {
      ...fields,
      env: sub.map(fields.env, at("env")),
      cwd: sub.optional(fields.cwd, at("cwd")),
      pool: sub.optional(fields.pool, at("pool")),
      labels: sub.map(fields.labels, at("labels")),
    }),
    baseDir,
  };
  sub.check();
  return buildMapReduceRun(definition).catch((error: unknown) =>
    source.fail(at("input"), errorMessage(error)),
  );
}
