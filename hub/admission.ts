import { readFileSync } from "node:fs";
import { toBinary } from "@bufbuild/protobuf";
import { parseDocument } from "yaml";
import { z } from "zod";
import { parseSizeBytes } from "../core/definitions/units/size.js";
import { durationSchema } from "../core/duration-schema.js";
import { TaskframeError, TaskframeErrorCode } from "../core/errors.js";
import { forbiddenEnvReason } from "../core/forbidden-env.js";
import { formatBytes } from "../core/format-bytes.js";
import { type RunSpec, type TaskSpec, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";

/*
 * What the hub admits, beyond a well-formed run (validate-run.ts): per pool, the most a task may
 * ask for (memory, disk, processes, CPU, time) and the loader/interpreter variables it may set
 * (core/forbidden-env.ts); and how large one task's spec and one submission may be. Checked
 * before anything is written or queued (SECURITY.md "Hostile input").
 */

/** The most a task of one pool may ask for; undefined: no maximum. */
export interface PoolPolicy {
  readonly maxMemoryBytes?: bigint;
  readonly maxDiskBytes?: bigint;
  readonly maxPids?: number;
  /** Thousandths of a CPU, as ResourceLimits.cpu_millis. */
  readonly maxCpuMillis?: number;
  readonly maxTimeoutMs?: number;
  /** Forbidden variables this pool's tasks may set after all (never TASKFRAME_*). */
  readonly allowEnv: ReadonlySet<string>;
}

export interface Admission {
  /** By pool name; `*` is every pool not named. A pool in neither has no maximums. */
  readonly pools: ReadonlyMap<string, PoolPolicy>;
  /**
   * One task's encoded spec, less its needs, after and a handler's input (those travel apart
   * when its work item is too large for one message). A work item must fit NATS's max_payload
   * (1 MB by default), or it could never be delivered. @default 1 MiB
   */
  readonly maxTaskSpecBytes: number;
  /**
   * One API request (the Connect adapter's readMaxBytes), and all task specs of one submission
   * (or spawn) together, whichever way they came. @default 256 MiB
   */
  readonly maxRequestBytes: number;
  /** A handler task's output staged through PutTaskOutput. @default 64 MiB */
  readonly maxOutputBytes: number;
}

export const DEFAULT_MAX_TASK_SPEC_BYTES = 2 ** 20;
export const DEFAULT_MAX_REQUEST_BYTES = 256 * 2 ** 20;
/** A handler task's output, staged through PutTaskOutput. @default 64 MiB */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 2 ** 20;

export const DEFAULT_ADMISSION: Admission = Object.freeze({
  pools: new Map<string, PoolPolicy>(),
  maxTaskSpecBytes: DEFAULT_MAX_TASK_SPEC_BYTES,
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES,
});

const invalid = (message: string) => new TaskframeError(TaskframeErrorCode.InvalidArgument, message);
const tooLarge = (message: string) => new TaskframeError(TaskframeErrorCode.ResourceExhausted, message);

const size = z.union([z.string(), z.number()]).transform((value, context) => {
  try {
    const bytes = parseSizeBytes(String(value));
    return bytes === 0n ? undefined : bytes;
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

/** `200%` (thousandths: 2000) or a number of CPUs (`1.5`). */
const cpu = z.union([z.string(), z.number()]).transform((value, context) => {
  const text = String(value).trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  const cpus = percent ? Number(percent[1]) / 100 : /^\d+(?:\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(cpus) || cpus <= 0 || cpus > 4096) {
    context.addIssue({
      code: "custom",
      message: `expected a CPU share such as "150%" or a number of CPUs such as 2, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return Math.round(cpus * 1000);
});

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const poolPolicySchema = z.strictObject({
  max_memory: size.optional(),
  max_disk: size.optional(),
  max_pids: z.number().int().positive().max(4_194_304).optional(),
  max_cpu: cpu.optional(),
  max_timeout: durationSchema().optional(),
  allow_env: z
    .array(
      z
        .string()
        .regex(ENV_NAME, "expected a variable name (letters, digits, '_')")
        .refine(
          (name) => !name.startsWith("TASKFRAME_"),
          "TASKFRAME_* are Taskframe's own: no pool may allow them",
        ),
    )
    .default([]),
});

const POOL = /^(\*|[A-Za-z0-9_-]{1,64})$/;

const policyFileSchema = z.strictObject({
  pools: z.record(z.string(), poolPolicySchema),
});

/** Reads `--pool-policy FILE`; throws InvalidArgument naming the file, the field and what was expected. */
export function loadPoolPolicy(file: string): Map<string, PoolPolicy> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw invalid(`cannot read the pool policy ${file}: ${(error as Error).message}`);
  }
  return parsePoolPolicy(text, file);
}

/** The policy file's text into policies by pool; errors as loadPoolPolicy. */
export function parsePoolPolicy(text: string, file: string): Map<string, PoolPolicy> {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const [syntax] = document.errors;
  if (syntax) {
    const line = syntax.linePos?.[0];
    throw invalid(`${file}${line ? `:${line.line}:${line.col}` : ""}: ${syntax.message.split("\n")[0]}`);
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // an alias without its anchor, too many aliases
    throw invalid(`${file}: ${(error as Error).message}`);
  }
  const result = policyFileSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.map(String).join(".");
      if (issue.code === "unrecognized_keys")
        return `${path ? `${path}: ` : ""}unknown field ${issue.keys.map((k) => `'${k}'`).join(", ")} (expected pools: with max_memory, max_disk, max_pids, max_cpu, max_timeout, allow_env)`;
      return `${path || "(top)"}: ${issue.message}`;
    });
    throw invalid(`${file}: ${problems.join("; ")}`);
  }
  const pools = new Map<string, PoolPolicy>();
  for (const [name, raw] of Object.entries(result.data.pools)) {
    if (!POOL.test(name))
      throw invalid(`${file}: pools.${name}: expected a pool name (letters, digits, '_' or '-') or '*'`);
    pools.set(name, {
      ...(raw.max_memory !== undefined ? { maxMemoryBytes: raw.max_memory } : {}),
      ...(raw.max_disk !== undefined ? { maxDiskBytes: raw.max_disk } : {}),
      ...(raw.max_pids !== undefined ? { maxPids: raw.max_pids } : {}),
      ...(raw.max_cpu !== undefined ? { maxCpuMillis: raw.max_cpu } : {}),
      ...(raw.max_timeout !== undefined && raw.max_timeout > 0 ? { maxTimeoutMs: raw.max_timeout } : {}),
      allowEnv: new Set(raw.allow_env),
    });
  }
  return pools;
}

/** Linux's limit on one argument or one NAME=value, less its NUL (32 pages). */
const MAX_ARG_STRLEN = 32 * 4096 - 1;
/** Strings this short (in UTF-16 units) are within it whatever they hold. */
const MAX_ARG_UNITS = Math.floor(MAX_ARG_STRLEN / 3);

const NO_POLICY: PoolPolicy = { allowEnv: new Set() };

export function policyOf(admission: Admission, pool: string): PoolPolicy {
  return admission.pools.get(pool || "default") ?? admission.pools.get("*") ?? NO_POLICY;
}

const where = (task: TaskSpec, index: number, source: string) =>
  `${task.definedAt || source || "the run"}: task '${task.name || `#${index}`}'`;

/**
 * Checks tasks against their pools' policies and the size limits; throws InvalidArgument
 * (a limit or variable) or ResourceExhausted (a size) naming the task, the field, what it asked
 * for and what is allowed. `source` is the run's file, for messages.
 */
export function checkAdmission(tasks: readonly TaskSpec[], admission: Admission, source = ""): void {
  let lower = 0;
  let upper = 0;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!;
    checkTask(task, i, policyOf(admission, task.pool), source);
    const bounds = specBytesBounds(task);
    if (bounds.slimUpper > admission.maxTaskSpecBytes) {
      const slim = slimSpecBytes(task);
      if (slim > admission.maxTaskSpecBytes) {
        throw tooLarge(
          `${where(task, i, source)}: its spec is ${formatBytes(slim)} (${slim} bytes), above the limit of ${formatBytes(admission.maxTaskSpecBytes)} (${admission.maxTaskSpecBytes} bytes) per task (needs, after and a handler's input not counted)`,
        );
      }
    }
    lower += bounds.lower;
    upper += bounds.upper;
  }
  if (upper <= admission.maxRequestBytes) return;
  const total =
    lower > admission.maxRequestBytes
      ? lower
      : tasks.reduce((sum, task) => sum + toBinary(TaskSpecSchema, task).byteLength, 0);
  if (total > admission.maxRequestBytes) {
    throw tooLarge(
      `${source || "the run"}: its ${tasks.length} task specs take ${lower > admission.maxRequestBytes ? "at least " : ""}${formatBytes(total)} (${total} bytes), above the limit of ${formatBytes(admission.maxRequestBytes)} (${admission.maxRequestBytes} bytes) per submission`,
    );
  }
}

/** An attempt's output (PutTaskOutput); throws ResourceExhausted naming the size and the limit. */
export function checkOutputSize(taskId: string, bytes: number, admission: Admission): void {
  if (bytes > admission.maxOutputBytes) {
    throw tooLarge(
      `task ${taskId}: its output is ${formatBytes(bytes)} (${bytes} bytes), above the limit of ${formatBytes(admission.maxOutputBytes)} (${admission.maxOutputBytes} bytes)`,
    );
  }
}

/** A whole run: its tasks, as checkAdmission. */
export const checkRunAdmission = (spec: RunSpec, admission: Admission): void =>
  checkAdmission(spec.tasks, admission, spec.source);

function checkTask(task: TaskSpec, index: number, policy: PoolPolicy, source: string): void {
  const at = () => where(task, index, source);
  if (task.target.case === "exec") {
    const exec = task.target.value;
    for (const name of Object.keys(exec.env)) {
      const reason = forbiddenEnvReason(name, policy.allowEnv);
      if (reason) throw invalid(`${at()}: env ${JSON.stringify(name)} ${reason}`);
    }
    for (const [index, arg] of exec.args.entries()) {
      if (arg.length > MAX_ARG_UNITS && Buffer.byteLength(arg) > MAX_ARG_STRLEN)
        throw invalid(
          `${at()}: exec.args[${index}] is ${Buffer.byteLength(arg)} bytes; Linux passes at most ${MAX_ARG_STRLEN} bytes per argument (MAX_ARG_STRLEN): pass large data in a file`,
        );
    }
    for (const [name, value] of Object.entries(exec.env)) {
      const bytes =
        name.length + value.length + 1 > MAX_ARG_UNITS ? Buffer.byteLength(`${name}=${value}`) : 0;
      if (bytes > MAX_ARG_STRLEN)
        throw invalid(
          `${at()}: env ${JSON.stringify(name)} is ${bytes} bytes with its name; Linux passes at most ${MAX_ARG_STRLEN} bytes per variable (MAX_ARG_STRLEN)`,
        );
    }
    const nul = [exec.command, ...exec.args, ...Object.values(exec.env), exec.cwd].some((s) =>
      s.includes("\0"),
    );
    if (nul)
      throw invalid(
        `${at()}: a command, argument, env value or cwd contains a NUL byte, which execve cannot pass`,
      );
  }
  const exceeds = (
    field: string,
    requested: bigint | number,
    allowed: bigint | number | undefined,
    show: (n: bigint | number) => string,
  ) => {
    if (allowed === undefined) return;
    // 0 asks for no limit (memory, CPU, time): more than any maximum
    const unlimited = requested === 0 || requested === 0n;
    if (!unlimited && requested <= allowed) return;
    throw invalid(
      `${at()}: ${field}: requested ${unlimited ? "no limit" : show(requested)}, the pool '${task.pool || "default"}' allows at most ${show(allowed)}`,
    );
  };
  const limits = task.limits;
  const bytes = (n: bigint | number) => `${formatBytes(Number(n))} (${n} bytes)`;
  exceeds("limits.memory_bytes", limits?.memoryBytes ?? 0n, policy.maxMemoryBytes, bytes);
  // 0: the sidecar's default, which its operator chose
  if (limits?.diskBytes) exceeds("limits.disk_bytes", limits.diskBytes, policy.maxDiskBytes, bytes);
  if (limits?.pids) exceeds("limits.pids", limits.pids, policy.maxPids, String);
  exceeds(
    "limits.cpu_millis",
    limits?.cpuMillis ?? 0,
    policy.maxCpuMillis,
    (n) => `${Number(n) / 10}% of a CPU`,
  );
  exceeds("timeout_ms", Number(task.timeoutMs), policy.maxTimeoutMs, (n) => `${n} ms`);
}

/**
 * Cheap bounds on a task's encoded size, without encoding it: every UTF-16 unit is 1 to 3 UTF-8
 * bytes, plus tags and lengths. Specs with rarer parts (checks, installs, unknown fields) count
 * as large, so the caller encodes them exactly.
 */
function specBytesBounds(task: TaskSpec): { lower: number; upper: number; slimUpper: number } {
  const unknown =
    task.$unknown?.length ||
    task.target.value?.$unknown?.length ||
    task.limits?.$unknown?.length ||
    task.retry?.$unknown?.length;
  if (task.checks.length > 0 || task.condition || task.install || unknown)
    return { lower: 0, upper: Number.POSITIVE_INFINITY, slimUpper: Number.POSITIVE_INFINITY };
  let units = task.name.length + task.pool.length + task.definedAt.length + task.user.length;
  units += task.group.length + task.jail.length;
  let fields = 16;
  let raw = 0;
  let dependencyUnits = 0;
  for (const name of task.needs) dependencyUnits += name.length;
  for (const name of task.after) dependencyUnits += name.length;
  const dependencyFields = task.needs.length + task.after.length;
  for (const [key, value] of Object.entries(task.labels)) units += key.length + value.length;
  fields += 3 * Object.keys(task.labels).length;
  const target = task.target;
  if (target.case === "exec") {
    units += target.value.command.length + target.value.cwd.length;
    for (const arg of target.value.args) units += arg.length;
    fields += target.value.args.length;
    for (const [key, value] of Object.entries(target.value.env)) units += key.length + value.length;
    fields += 3 * Object.keys(target.value.env).length;
  } else if (target.case === "handler") {
    units += target.value.handler.length + target.value.contentType.length;
    raw += target.value.input.byteLength;
  }
  fields += task.retry?.nonRetryableExitCodes?.length ?? 0;
  // a tag and a length prefix of up to 5 bytes per field, and the fixed scalars
  const slimUpper = 3 * units + 6 * fields + 64;
  return {
    lower: units + dependencyUnits + raw,
    upper: slimUpper + 3 * dependencyUnits + 6 * dependencyFields + raw,
    slimUpper,
  };
}

/**
 * A task's encoded size without what travels apart from its work item when that is too large
 * for one message (jetstream-work-queue.ts): its needs and after, and a handler's input.
 */
function slimSpecBytes(task: TaskSpec): number {
  const { needs, after, target } = task;
  const input = target.case === "handler" ? target.value.input : undefined;
  task.needs = [];
  task.after = [];
  if (target.case === "handler") target.value.input = new Uint8Array();
  try {
    return toBinary(TaskSpecSchema, task).byteLength;
  } finally {
    task.needs = needs;
    task.after = after;
    if (target.case === "handler" && input) target.value.input = input;
  }
}

/** `--pool-policy`, `--max-task-spec-bytes`, `--max-request-bytes`, `--max-output-bytes` (0: no limit). */
export function admissionOf(config: {
  "pool-policy"?: string | undefined;
  "max-task-spec-bytes": bigint;
  "max-request-bytes": bigint;
  "max-output-bytes": bigint;
}): Admission {
  const bytes = (n: bigint, unlimited: number) => (n === 0n ? unlimited : Number(n));
  return Object.freeze({
    pools: config["pool-policy"] ? loadPoolPolicy(config["pool-policy"]) : new Map<string, PoolPolicy>(),
    maxTaskSpecBytes: bytes(config["max-task-spec-bytes"], Number.POSITIVE_INFINITY),
    // Connect's own maximum (its readMaxBytes must be a number below 2^32)
    maxRequestBytes: Math.min(bytes(config["max-request-bytes"], 0xffffffff), 0xffffffff),
    maxOutputBytes: bytes(config["max-output-bytes"], Number.POSITIVE_INFINITY),
  });
}
