import { readFile } from "node:fs/promises";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { DefinitionError, DefinitionErrors, errorMessage } from "../errors.js";
import { isPlainMap } from "./field-path.js";
import { splitCommandLine } from "./words.js";
import { parseYamlSource } from "./yaml-source.js";

/** A pool of SDK worker processes that a sidecar starts and keeps running. */
export interface WorkerPoolSpec {
  name: string;
  command: string;
  args: string[];
  /** Processes to keep running. */
  instances: number;
  env: Record<string, string>;
  cwd: string;
}

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const poolSchema = z.strictObject({
  run: z.union([z.string().min(1), z.array(z.string()).min(1)], {
    error: "expected the worker's command: a string (split like a shell) or a list",
  }),
  instances: z.number({ error: "expected a number of processes" }).int().min(1).max(256).default(1),
  env: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  cwd: z.string().min(1).optional(),
});

/**
 * The `workers:` map of a YAML pipeline, if it has one:
 *
 *   workers:
 *     py: { run: python3 worker.py, instances: 2 }
 *
 * A command with a `/` is relative to the file's directory, as `run:` is.
 * Other definition kinds (units, catalogues) declare no workers: [].
 */
export async function loadWorkerPools(path: string): Promise<WorkerPoolSpec[]> {
  if (![".yaml", ".yml"].includes(extname(path))) return [];
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new DefinitionError({ file: path }, `cannot read pipeline file: ${errorMessage(cause)}`, { cause });
  }
  const source = parseYamlSource(text, path);
  const document = source.value;
  if (!isPlainMap(document) || document.workers === undefined) return [];
  const workers = document.workers;
  if (!isPlainMap(workers)) return source.fail(["workers"], "expected a map from pool names to workers");
  const baseDir = dirname(resolve(path));
  const pools: WorkerPoolSpec[] = [];
  const problems: DefinitionError[] = [];
  for (const [name, raw] of Object.entries(workers)) {
    if (!POOL_NAME.test(name)) {
      problems.push(source.problem(["workers", name], `'${name}' is not a valid worker pool name`, "key"));
      continue;
    }
    const parsed = poolSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push(
          source.problem(
            ["workers", name, ...issue.path.map((p) => (typeof p === "number" ? p : String(p)))],
            issue.message,
          ),
        );
      }
      continue;
    }
    let words: string[];
    try {
      words = Array.isArray(parsed.data.run) ? parsed.data.run : splitCommandLine(parsed.data.run);
    } catch (error) {
      problems.push(source.problem(["workers", name, "run"], errorMessage(error)));
      continue;
    }
    const [command = "", ...args] = words;
    pools.push({
      name,
      command: command.includes("/") && !isAbsolute(command) ? resolve(baseDir, command) : command,
      args,
      instances: parsed.data.instances,
      env: parsed.data.env,
      cwd: parsed.data.cwd ? resolve(baseDir, parsed.data.cwd) : baseDir,
    });
  }
  DefinitionErrors.throwIfAny(problems);
  return pools;
}
