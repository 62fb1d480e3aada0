import { z } from "zod";
import { parseDurationMs } from "./duration.js";
import { describeValue } from "./field-path.js";
import { splitCommandTemplate } from "./pipeline-expressions.js";
import {
  cronScheduleProblem,
  instantOf,
  parseCatchUp,
  parseDateTime,
  parseOverlap,
  parseTimeZone,
  type ScheduleSettings,
} from "./schedule-values.js";
import {
  parseArtifactUrl,
  parseCpuMillis,
  parseJail,
  parsePids,
  parseSha256,
} from "./units/jail-settings.js";
import { parseSizeBytes } from "./units/size.js";
import { parseCron, parsePackage } from "./units/unit-values.js";

/** Zod error option producing "expected WHAT, got VALUE" (or "missing; expected WHAT"). */
export const expecting = (what: string, whenMissing = what) => ({
  error: (issue: { input?: unknown }) =>
    issue.input === undefined
      ? `missing; expected ${whenMissing}`
      : `expected ${what}, got ${describeValue(issue.input)}`,
});

export const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TASK_NAME_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit";

const taskName = z
  .string(expecting("a task name"))
  .regex(TASK_NAME, expecting(`a task name of ${TASK_NAME_RULE}`));

const scalarText = z
  .union([z.string(), z.number(), z.boolean()], expecting("a string, number or boolean"))
  .transform((value) => String(value));

const stringMap = z.record(z.string(), scalarText, expecting("a map of names to strings"));

const duration = z
  .union([z.string(), z.number()], expecting('a duration such as "30s" or "10m", or a number of seconds'))
  .transform((value, ctx) => {
    try {
      return parseDurationMs(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
  });

/** A zod transform that reads a value with one of the parsers shared with INI units. */
const parsedBy =
  <In, Out>(parse: (value: In) => Out) =>
  (value: In, ctx: z.core.$RefinementCtx<In>): Out => {
    try {
      return parse(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
  };

const size = z
  .union(
    [z.string(), z.number()],
    expecting('a size such as "512M" or "8G" (powers of 1024), a number of bytes, or "infinity"'),
  )
  .transform(parsedBy((value: string | number) => parseSizeBytes(String(value))));

/** `limits:` of a `run:` task (or of `defaults:`); each as the INI unit key of the same limit. */
const limits = z.strictObject(
  {
    memory: size.optional(),
    disk: size.optional(),
    pids: z
      .union([z.string(), z.number()], expecting('a number of processes, or "infinity"'))
      .transform(parsedBy(parsePids))
      .optional(),
    cpu: z
      .union([z.string(), z.number()], expecting('a percentage of one CPU such as "150%", or "infinity"'))
      .transform(parsedBy((value: string | number) => parseCpuMillis(value)))
      .optional(),
  },
  expecting("a map of limits: memory, disk, pids, cpu"),
);

const packageList = z.array(
  z.string(expecting("a package name")).transform(parsedBy(parsePackage)),
  expecting("a list of package names, such as [jq, curl]"),
);

const artifact = z.strictObject(
  {
    url: z
      .string(
        expecting("an absolute path, a file:// URL or an http(s):// URL", "the `url:` to fetch it from"),
      )
      .transform(parsedBy(parseArtifactUrl)),
    sha256: z
      .string({
        error: (issue: { input?: unknown }) =>
          issue.input === undefined
            ? "missing; expected the file's `sha256:` (64 hex digits): an artifact is pinned by its checksum"
            : typeof issue.input === "number"
              ? "expected 64 hex digits, got a number: quote the sha256 so that YAML reads it as text"
              : `expected 64 hex digits, got ${describeValue(issue.input)}`,
      })
      .transform(parsedBy(parseSha256)),
  },
  expecting("an artifact: { url, sha256 }"),
);

/** `install:` of a `run:` task; as an INI unit's [Install]. */
const install = z.strictObject(
  {
    pip: packageList.optional(),
    npm: packageList.optional(),
    apt: packageList.optional(),
    from: z.string(expecting("a file path")).min(1, expecting("a file path")).optional(),
    artifacts: z.array(artifact, expecting("a list of artifacts: { url, sha256 }")).optional(),
  },
  expecting("a map of what to install: pip, npm, apt, from, artifacts"),
);

const argvWords = z
  .array(scalarText, expecting("a command string or a list of argv words"))
  .min(1, { error: "expected a command string or a non-empty list of argv words, got an empty list" })
  .refine((words) => words[0] !== "", {
    error: "expected the first word to be the command, got an empty string",
  });

/**
 * A command string is split into words here, before `${{ ... }}` is substituted in each word, so
 * a substituted value never becomes several arguments.
 */
export const commandOf = (whenMissing?: string) =>
  z.union(
    [
      z.string().transform((line, ctx) => {
        try {
          return splitCommandTemplate(line);
        } catch (error) {
          ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
          return z.NEVER;
        }
      }),
      argvWords,
    ],
    expecting("a command string or a list of argv words", whenMissing),
  );
const command = commandOf();

const ACCOUNT = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\$?$/;
const account = (what: string) =>
  z.string(expecting(`${what} name or id`)).regex(ACCOUNT, expecting(`${what} name or numeric id`));

const nameList = z.union(
  [z.string(), z.array(z.string(expecting("a task name")))],
  expecting("a task name or a list of task names"),
);

/** Settings of any task that `defaults:` may set. */
const policyShape = {
  retries: z
    .int(expecting("a non-negative integer"))
    .min(0, expecting("a non-negative integer"))
    .max(4_294_967_295, expecting("a non-negative integer up to 4294967295"))
    .optional(),
  retry_interval: duration.optional(),
  retry_backoff: z.enum(["fixed", "exponential"], expecting('"fixed" or "exponential"')).optional(),
  retry_max_interval: duration.optional(),
  retry_jitter: z
    .number(expecting("a number from 0 to 1"))
    .min(0, expecting("a number from 0 to 1"))
    .max(1, expecting("a number from 0 to 1"))
    .optional(),
  retry_prevent_exit_codes: z
    .array(
      z
        .int(expecting("an exit code from 0 to 255"))
        .min(0, expecting("an exit code from 0 to 255"))
        .max(255, expecting("an exit code from 0 to 255")),
      expecting("a list of exit codes such as [2, 42]"),
    )
    .optional(),
  timeout: duration.optional(),
  pool: z.string(expecting("a pool name")).optional(),
  labels: stringMap.optional(),
};

/** Settings that only mean something for a command (`run:`). */
const execShape = {
  env: stringMap.optional(),
  cwd: z.string(expecting("a directory path")).min(1, expecting("a directory path")).optional(),
};

const accountShape = { user: account("a user").optional(), group: account("a group").optional() };

/** What a `run:` task (or `defaults:`) asks of the sidecar's jail. */
const jailShape = {
  limits: limits.optional(),
  private_network: z.boolean(expecting("true or false")).optional(),
  jail: z.string(expecting('"standard" or "strict"')).transform(parsedBy(parseJail)).optional(),
};

const edgesShape = {
  needs: nameList.optional(),
  after: nameList.optional(),
  continue_on_error: z.boolean(expecting("true or false")).optional(),
};

const forEach = z.union(
  [
    z.array(z.unknown()),
    z.strictObject({
      file: z.string(expecting("a file path")).min(1, expecting("a file path")),
    }),
  ],
  expecting("a list of items, or { file: PATH } for one item per line"),
);

const check = z.union(
  [
    command,
    z.strictObject(
      {
        name: z
          .string()
          .regex(TASK_NAME, expecting(`a check name of ${TASK_NAME_RULE}`))
          .optional(),
        run: command,
      },
      expecting("a check: a command string, a list of argv words or { name, run }"),
    ),
  ],
  expecting("a check: a command string, a list of argv words or { name, run }"),
);

export const HANDLER_NAME = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*$/;
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(?:\s*;.*)?$/;

const runTaskShape = {
  run: commandOf(
    "`run:` with a command string or a list of argv words (or `handler:` for an SDK handler, or `unit:` for a unit file)",
  ),
  args: z.array(scalarText, expecting("a list of strings, numbers or booleans")).optional(),
  ...execShape,
  ...edgesShape,
  for_each: forEach.optional(),
  condition: command.optional(),
  checks: z.array(check, expecting("a list of check commands")).optional(),
  ...policyShape,
  ...accountShape,
  ...jailShape,
  install: install.optional(),
};

const handlerTaskShape = {
  handler: z
    .string(expecting("a handler name"))
    .max(256, expecting("a handler name of at most 256 characters"))
    .regex(HANDLER_NAME, expecting("a handler name such as resize-image or pkg.module.fn")),
  input: z.unknown().optional(),
  content_type: z
    .string(expecting("a media type"))
    .regex(MEDIA_TYPE, expecting('a media type such as "application/json" or "text/plain"'))
    .optional(),
  ...edgesShape,
  for_each: forEach.optional(),
  ...policyShape,
};

const unitTaskShape = {
  unit: z.string(expecting("a unit file path")).min(1, expecting("a unit file path")),
  ...edgesShape,
};

const stepName = { name: taskName.optional() };
const TASK = "a task: a map with `run:`, `handler:` or `unit:`";

export const settingsSchema = z.strictObject({ ...policyShape, ...execShape }, expecting("a map"));
export const defaultsSchema = z.strictObject(
  { ...policyShape, ...execShape, ...accountShape, ...jailShape },
  expecting("a map of settings for every task"),
);
export const runTaskSchema = z.strictObject(runTaskShape, expecting(TASK));
export const handlerTaskSchema = z.strictObject(handlerTaskShape, expecting(TASK));
export const unitTaskSchema = z.strictObject(unitTaskShape, expecting(TASK));
export const runStepSchema = z.strictObject({ ...stepName, ...runTaskShape }, expecting(TASK));
export const handlerStepSchema = z.strictObject({ ...stepName, ...handlerTaskShape }, expecting(TASK));
export const unitStepSchema = z.strictObject({ ...stepName, ...unitTaskShape }, expecting(TASK));

/** The keys of each kind of task, to tell which kind a misplaced key belongs to. */
export const KIND_KEYS = {
  run: Object.keys(runTaskShape),
  handler: Object.keys(handlerTaskShape),
  unit: Object.keys(unitTaskShape),
} as const;

const stepList = z
  .array(z.unknown(), expecting("a list of steps"))
  .min(1, expecting("a non-empty list of steps"));
export const parallelSchema = z.strictObject({ parallel: stepList }, expecting("a map"));
export const sequenceSchema = z.strictObject({ steps: stepList }, expecting("a map"));

const dateTime = z
  .string(expecting("an ISO 8601 date or date-time such as 2026-12-01 or 2026-12-01T08:00"))
  .transform(parsedBy(parseDateTime));

/** A pipeline's `schedule:`: when to start a run of it. */
export interface PipelineSchedule extends ScheduleSettings {
  cron: string;
}

/** `schedule:` of a pipeline, the same settings as a unit's `[RunIf]` cron=, TimeZone=, Overlap= ... */
export const scheduleSchema = z
  .strictObject(
    {
      cron: z
        .string(
          expecting(
            'a cron expression such as "0 2 * * *"',
            '`cron:` with a cron expression such as "0 2 * * *" (5 fields, 6 with seconds first, or @daily)',
          ),
        )
        .transform(parsedBy(parseCron)),
      timezone: z
        .string(expecting("an IANA time zone such as Europe/Berlin or UTC"))
        .transform(parsedBy(parseTimeZone))
        .optional(),
      overlap: z
        .string(expecting('"skip", "queue", "allow" or "cancel-previous"'))
        .transform(parsedBy(parseOverlap))
        .optional(),
      catch_up: z
        .string(expecting('"skip", "latest", "backfill" or "backfill(max=N)"'))
        .transform(parsedBy(parseCatchUp))
        .optional(),
      jitter: duration.optional(),
      start: dateTime.optional(),
      end: dateTime.optional(),
    },
    expecting(
      "a map with `cron:` and optionally `timezone`, `overlap`, `catch_up`, `jitter`, `start`, `end`",
    ),
  )
  .transform((fields, ctx): PipelineSchedule => {
    const zone = fields.timezone ?? "UTC";
    const problem = cronScheduleProblem(fields.cron, zone);
    if (problem) ctx.addIssue({ code: "custom", path: ["cron"], message: problem });
    const startMs = fields.start && instantOf(fields.start, zone);
    const endMs = fields.end && instantOf(fields.end, zone);
    if (startMs !== undefined && endMs !== undefined && endMs <= startMs) {
      ctx.addIssue({
        code: "custom",
        path: ["end"],
        message: `expected \`end:\` after \`start:\`, got ${fields.end!.text}, which is not after ${fields.start!.text}`,
      });
    }
    const schedule: PipelineSchedule = { cron: fields.cron };
    if (fields.timezone !== undefined) schedule.timezone = fields.timezone;
    if (fields.overlap !== undefined) schedule.overlap = fields.overlap;
    if (fields.catch_up !== undefined) schedule.catchUp = fields.catch_up;
    if (fields.jitter !== undefined) schedule.jitterMs = fields.jitter;
    if (startMs !== undefined) schedule.startMs = startMs;
    if (endMs !== undefined) schedule.endMs = endMs;
    return schedule;
  });

export const pipelineSchema = z.strictObject(
  {
    name: z.string(expecting("a pipeline name")).min(1, expecting("a non-empty pipeline name")).optional(),
    labels: stringMap.optional(),
    params: z.unknown().optional(),
    defaults: z.unknown().optional(),
    tasks: z.record(z.string(), z.unknown(), expecting("a map from task names to tasks")).optional(),
    steps: z.array(z.unknown(), expecting("a list of steps")).optional(),
    // SDK worker pools to start for the run; read by worker-pools.ts, not by the task compiler
    workers: z.unknown().optional(),
    // when to start runs of the pipeline (scheduleSchema); not part of the run
    schedule: z.unknown().optional(),
    // a MapReduce job instead of tasks (mapReduceSchema)
    mapreduce: z.unknown().optional(),
  },
  expecting("a map with `tasks:` and/or `steps:` (or `mapreduce:`) at the top level"),
);

export type TaskSettings = z.output<typeof settingsSchema>;
export type DefaultSettings = z.output<typeof defaultsSchema>;
export type RunTaskFields = z.output<typeof runTaskSchema>;
export type HandlerTaskFields = z.output<typeof handlerTaskSchema>;
export type UnitTaskFields = z.output<typeof unitTaskSchema>;
export type LimitFields = z.output<typeof limits>;
export type InstallFields = z.output<typeof install>;
export type CheckFields = z.output<typeof check>;
export type ForEachFields = z.output<typeof forEach>;

export const taskNameProblem = (name: string): string =>
  `invalid task name ${JSON.stringify(name)}: expected ${TASK_NAME_RULE}`;
