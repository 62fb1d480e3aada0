import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { DefinitionError, DefinitionErrors, errorMessage } from "../errors.js";
import { isPlainMap } from "./field-path.js";
import { parseIni } from "./units/ini-parser.js";
import { parseCpuMillis, parsePids } from "./units/jail-settings.js";
import { parseSizeBytes } from "./units/size.js";
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
  /** The account its workers run as (the sidecar's jail default when empty). */
  user?: string;
  group?: string;
  /** Per worker process, enforced by the sidecar's jail like a task's. */
  limits?: WorkerLimits;
}

export interface WorkerLimits {
  memoryBytes: bigint;
  diskBytes: bigint;
  pids: number;
  cpuMillis: number;
}

const NO_LIMITS: WorkerLimits = { memoryBytes: 0n, diskBytes: 0n, pids: 0, cpuMillis: 0 };

/** A zod field from one of the definitions' own parsers, so that pools and tasks say the same things. */
const parsedBy = <T>(parse: (text: string) => T) =>
  z.union([z.string(), z.number()]).transform((value, context) => {
    try {
      return parse(String(value));
    } catch (error) {
      context.addIssue({ code: "custom", message: errorMessage(error) });
      return z.NEVER;
    }
  });

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const poolSchema = z.strictObject({
  run: z.union([z.string().min(1), z.array(z.string()).min(1)], {
    error: "expected the worker's command: a string (split like a shell) or a list",
  }),
  instances: z.number({ error: "expected a number of processes" }).int().min(1).max(256).default(1),
  env: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  cwd: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  group: z.string().min(1).optional(),
  limits: z
    .strictObject({
      memory: parsedBy(parseSizeBytes).optional(),
      disk: parsedBy(parseSizeBytes).optional(),
      pids: parsedBy(parsePids).optional(),
      cpu: parsedBy((text) => parseCpuMillis(text)).optional(),
    })
    .optional(),
});

/**
 * The `workers:` map of a YAML pipeline, if it has one:
 *
 *   workers:
 *     py: { run: python3 worker.py, instances: 2 }
 *
 * A command with a `/` is relative to the file's directory, as `run:` is.
 * An INI `.worker` unit declares one pool (see loadWorkerUnit); a directory
 * of units, every `.worker` unit in it; other definitions declare none.
 */
export async function loadWorkerPools(path: string): Promise<WorkerPoolSpec[]> {
  if (extname(path) === ".worker") return [await loadWorkerUnit(path)];
  if (await isDirectory(path)) {
    const files = (await readdir(path)).filter((f) => f.endsWith(".worker")).sort();
    return Promise.all(files.map((f) => loadWorkerUnit(join(path, f))));
  }
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
      user: parsed.data.user ?? "",
      group: parsed.data.group ?? "",
      limits: {
        memoryBytes: parsed.data.limits?.memory ?? 0n,
        diskBytes: parsed.data.limits?.disk ?? 0n,
        pids: parsed.data.limits?.pids ?? 0,
        cpuMillis: parsed.data.limits?.cpu ?? 0,
      },
    });
  }
  DefinitionErrors.throwIfAny(problems);
  return pools;
}

const isDirectory = (path: string) =>
  stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );

const WORKER_KEYS = [
  "Command",
  "Instances",
  "Environment",
  "WorkingDirectory",
  "User",
  "Group",
  "LimitMem",
  "LimitDisk",
  "LimitPids",
  "LimitCPU",
] as const;

/** `[Worker]` keys that take a limit, with the parser the task units use for them. */
const LIMIT_KEYS: [string, keyof WorkerLimits, (text: string) => bigint | number][] = [
  ["LimitMem", "memoryBytes", parseSizeBytes],
  ["LimitDisk", "diskBytes", parseSizeBytes],
  ["LimitPids", "pids", parsePids],
  ["LimitCPU", "cpuMillis", (text) => parseCpuMillis(text)],
];

/**
 * A worker pool as an INI unit, `NAME.worker` (the pool is NAME):
 *
 *   [Worker]
 *   Command=python3 worker.py
 *   Instances=4
 *   Environment=PYTHONPATH=../sdks/python LOG_LEVEL=info
 *   WorkingDirectory=.
 *   User=worker            # the jail and limits work as for tasks
 *   LimitMem=2G
 */
export async function loadWorkerUnit(path: string): Promise<WorkerPoolSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new DefinitionError({ file: path }, `cannot read worker unit: ${errorMessage(cause)}`, { cause });
  }
  const name = basename(path, ".worker");
  const document = parseIni(text, path);
  const problems = [...document.problems];
  const at = (line: number, column: number, problem: string) =>
    problems.push(new DefinitionError({ file: path, line, column }, problem));
  if (!POOL_NAME.test(name))
    at(1, 1, `'${name}' is not a valid worker pool name (the file's name is the pool's)`);
  const values = new Map<string, { text: string; line: number; column: number }[]>();
  for (const section of document.sections) {
    if (section.name !== "Worker") {
      at(
        section.line,
        section.column,
        `unknown section [${section.name}]: a .worker unit has one [Worker] section`,
      );
      continue;
    }
    for (const entry of section.entries) {
      if (!(WORKER_KEYS as readonly string[]).includes(entry.key)) {
        at(
          entry.line,
          entry.column,
          `unknown key ${entry.key}= in [Worker]: expected one of ${WORKER_KEYS.join(", ")}`,
        );
        continue;
      }
      const list = values.get(entry.key) ?? [];
      list.push({ text: entry.value.text, line: entry.value.line, column: entry.value.column });
      values.set(entry.key, list);
    }
  }
  const last = (key: string) => values.get(key)?.at(-1);
  const baseDir = dirname(resolve(path));
  let words: string[] = [];
  const command = last("Command");
  if (!command?.text) at(1, 1, "[Worker] needs Command=, the worker's command line");
  else {
    try {
      words = splitCommandLine(command.text);
    } catch (error) {
      at(command.line, command.column, errorMessage(error));
    }
  }
  let instances = 1;
  const count = last("Instances");
  if (count) {
    instances = Number(count.text);
    if (!Number.isInteger(instances) || instances < 1 || instances > 256) {
      at(count.line, count.column, `Instances=${count.text}: expected a number of processes from 1 to 256`);
    }
  }
  const env: Record<string, string> = {};
  for (const value of values.get("Environment") ?? []) {
    let assignments: string[] = [];
    try {
      assignments = splitCommandLine(value.text);
    } catch (error) {
      at(value.line, value.column, errorMessage(error));
    }
    for (const assignment of assignments) {
      const eq = assignment.indexOf("=");
      if (eq <= 0) at(value.line, value.column, `Environment: '${assignment}' is not NAME=VALUE`);
      else env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  const limits: WorkerLimits = { ...NO_LIMITS };
  for (const [key, field, parse] of LIMIT_KEYS) {
    const value = last(key);
    if (!value) continue;
    try {
      (limits as unknown as Record<string, bigint | number>)[field] = parse(value.text);
    } catch (error) {
      at(value.line, value.column, `${key}=${value.text}: ${errorMessage(error)}`);
    }
  }
  DefinitionErrors.throwIfAny(problems);
  const [program = "", ...args] = words;
  const cwd = last("WorkingDirectory")?.text;
  return {
    name,
    command: program.includes("/") && !isAbsolute(program) ? resolve(baseDir, program) : program,
    args,
    instances,
    env,
    cwd: cwd ? resolve(baseDir, cwd) : baseDir,
    user: last("User")?.text ?? "",
    group: last("Group")?.text ?? "",
    limits,
  };
}
