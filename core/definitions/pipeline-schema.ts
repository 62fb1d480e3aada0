import { z } from "zod";
import { parseDurationMs } from "./duration.js";
import { describeValue } from "./field-path.js";
import { splitCommandLine } from "./words.js";

/** Zod error option producing "expected WHAT, got VALUE" (or "missing; expected WHAT"). */
const expecting = (what: string) => ({
  error: (issue: { input?: unknown }) =>
    issue.input === undefined
      ? `missing; expected ${what}`
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

const argvWords = z
  .array(scalarText, expecting("a command string or a list of argv words"))
  .min(1, { error: "expected a command string or a non-empty list of argv words, got an empty list" })
  .refine((words) => words[0] !== "", {
    error: "expected the first word to be the command, got an empty string",
  });

/** A run string is split into words here, so every task carries its argv. */
const run = z.union(
  [
    z.string().transform((line, ctx) => {
      try {
        return splitCommandLine(line);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
        return z.NEVER;
      }
    }),
    argvWords,
  ],
  expecting("a command string or a list of argv words"),
);

/** Fields that `defaults:` may set for every task. */
const settingsShape = {
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
  timeout: duration.optional(),
  env: stringMap.optional(),
  cwd: z.string(expecting("a directory path")).min(1, expecting("a directory path")).optional(),
  pool: z.string(expecting("a pool name")).optional(),
  labels: stringMap.optional(),
};

const taskShape = {
  run,
  args: z.array(scalarText, expecting("a list of strings, numbers or booleans")).optional(),
  needs: z
    .union(
      [z.string(), z.array(z.string(expecting("a task name")))],
      expecting("a task name or a list of task names"),
    )
    .optional(),
  ...settingsShape,
};

const MAP = "a map";

export const settingsSchema = z.strictObject(settingsShape, expecting(MAP));
export const taskSchema = z.strictObject(taskShape, expecting("a task: a map with at least `run:`"));
export const stepSchema = z.strictObject(
  { name: taskName.optional(), ...taskShape },
  expecting("a step: a command string, a map with `run:`, or a `parallel:` / `steps:` group"),
);

const stepList = z
  .array(z.unknown(), expecting("a list of steps"))
  .min(1, expecting("a non-empty list of steps"));
export const parallelSchema = z.strictObject({ parallel: stepList }, expecting(MAP));
export const sequenceSchema = z.strictObject({ steps: stepList }, expecting(MAP));

export const pipelineSchema = z.strictObject(
  {
    name: z.string(expecting("a pipeline name")).min(1, expecting("a non-empty pipeline name")).optional(),
    labels: stringMap.optional(),
    defaults: z.unknown().optional(),
    tasks: z.record(z.string(), z.unknown(), expecting("a map from task names to tasks")).optional(),
    steps: z.array(z.unknown(), expecting("a list of steps")).optional(),
  },
  expecting("a map with `tasks:` and/or `steps:` at the top level"),
);

export type TaskSettings = z.output<typeof settingsSchema>;
export type TaskFields = z.output<typeof taskSchema>;
export type StepFields = z.output<typeof stepSchema>;

export const taskNameProblem = (name: string): string =>
  `invalid task name ${JSON.stringify(name)}: expected ${TASK_NAME_RULE}`;
