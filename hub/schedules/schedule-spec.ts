import { clone, create, equals } from "@bufbuild/protobuf";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import {
  CatchUpPolicy,
  OverlapPolicy,
  SchedulePolicySchema,
  type ScheduleSpec,
  ScheduleSpecSchema,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import { type RunSpec, RunSpecSchema, TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { CronSchedule, ScheduleError } from "../../core/schedules/cron-schedule.js";
import { type Admission, DEFAULT_ADMISSION } from "../admission.js";
import { validateRunSpec } from "../validate-run.js";

/** Labels on the runs a schedule starts. */
export const SCHEDULE_LABEL = "taskframe.schedule";
export const SLOT_LABEL = "taskframe.slot";
/** On the runs that evaluate a condition; `task ls` leaves them out unless asked. */
export const EVALUATION_LABEL = "taskframe.evaluation";

const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MIN_INTERVAL_MS = 1_000n;
const MAX_BACKFILL = 10_000;

const invalid = (name: string, message: string) =>
  new TaskframeError(TaskframeErrorCode.InvalidArgument, `schedule ${JSON.stringify(name)}: ${message}`);

export type ScheduleKind = "cron" | "condition";

/** Checks a schedule before it is stored; throws InvalidArgument naming what is wrong. */
export function validateScheduleSpec(
  spec: ScheduleSpec,
  admission: Admission = DEFAULT_ADMISSION,
): ScheduleKind {
  const name = spec.name;
  if (!SCHEDULE_NAME.test(name))
    throw invalid(name, "expected a name of letters, digits, '.', '_' or '-' (at most 128)");
  if (!spec.run || spec.run.tasks.length === 0) throw invalid(name, "the run to start has no tasks");
  try {
    validateRunSpec(spec.run, admission);
  } catch (error) {
    throw invalid(name, (error as Error).message);
  }
  // every run of a schedule is the same spec, and a job's staging directory is named in its spec
  if (spec.run.mapreduce) throw invalid(name, "a MapReduce job cannot be scheduled yet; submit each run");
  const policy = spec.policy ?? create(SchedulePolicySchema);
  if (!(policy.overlap in OverlapPolicy)) throw invalid(name, `unknown overlap policy ${policy.overlap}`);
  if (!(policy.catchUp in CatchUpPolicy)) throw invalid(name, `unknown catch-up policy ${policy.catchUp}`);
  if (policy.backfillMax > MAX_BACKFILL)
    throw invalid(name, `backfill max ${policy.backfillMax} is above ${MAX_BACKFILL}`);
  if (policy.endUnixMs !== 0n && policy.endUnixMs <= policy.startUnixMs)
    throw invalid(name, "the end must come after the start");
  const trigger = spec.trigger;
  if (trigger.case === "cron") {
    try {
      CronSchedule.parse(trigger.value.expression, trigger.value.timezone || "UTC");
    } catch (error) {
      if (error instanceof ScheduleError) throw invalid(name, error.message);
      throw error;
    }
    return "cron";
  }
  if (trigger.case === "condition") {
    const condition = trigger.value;
    if (condition.intervalMs < MIN_INTERVAL_MS)
      throw invalid(
        name,
        `a condition is evaluated at most every second, got every ${condition.intervalMs} ms`,
      );
    const task = spec.run.tasks.find((t) => t.name === condition.task);
    if (!task)
      throw invalid(name, `the condition's task ${JSON.stringify(condition.task)} is not in the run`);
    if (!task.condition)
      throw invalid(name, `task ${JSON.stringify(condition.task)} has no condition ([RunIf] Requires=)`);
    return "condition";
  }
  throw invalid(name, "expected a trigger: cron or condition");
}

/** Whether two specs fire at the same times (a replaced schedule then keeps its next slot). */
export function sameTiming(a: ScheduleSpec, b: ScheduleSpec): boolean {
  if (a.trigger.case !== b.trigger.case) return false;
  const timing = (spec: ScheduleSpec) =>
    create(ScheduleSpecSchema, {
      trigger: spec.trigger,
      policy: { startUnixMs: spec.policy?.startUnixMs ?? 0n, endUnixMs: spec.policy?.endUnixMs ?? 0n },
    });
  return equals(ScheduleSpecSchema, timing(a), timing(b));
}

const slotText = (slotMs: number) => new Date(slotMs).toISOString();

/**
 * The run a slot starts: the schedule's run, labelled with the schedule and
 * the slot. A condition schedule's task does not evaluate its condition
 * again: the evaluation that fired it just did.
 */
export function firedRunSpec(spec: ScheduleSpec, slotMs: number): RunSpec {
  const run = clone(RunSpecSchema, spec.run ?? create(RunSpecSchema));
  run.labels[SCHEDULE_LABEL] = spec.name;
  run.labels[SLOT_LABEL] = slotText(slotMs);
  if (spec.trigger.case === "condition") {
    const name = spec.trigger.value.task;
    for (const task of run.tasks) if (task.name === name) task.condition = undefined;
  }
  return run;
}

/**
 * The run that evaluates a condition: one task, `NAME.condition`, made of the
 * unit's task (its account, jail, limits, installs, environment and working
 * directory) whose command does nothing: the sidecar runs the condition
 * first, so exit 1 ends it SKIPPED, exit 0 SUCCEEDED, anything else
 * CHECK_FAILED, and the timeout kills a check that hangs.
 */
export function evaluationRunSpec(spec: ScheduleSpec, slotMs: number): RunSpec {
  if (spec.trigger.case !== "condition") throw new Error(`schedule ${spec.name} has no condition`);
  const condition = spec.trigger.value;
  const source = spec.run?.tasks.find((t) => t.name === condition.task);
  if (!source?.condition) throw new Error(`schedule ${spec.name}: task ${condition.task} has no condition`);
  const task = clone(TaskSpecSchema, source);
  task.name = `${condition.task}.condition`;
  task.needs = [];
  task.after = [];
  task.checks = [];
  task.retry = undefined;
  task.timeoutMs = condition.timeoutMs || condition.intervalMs;
  const exec = source.target.case === "exec" ? source.target.value : undefined;
  task.target = {
    case: "exec",
    value: {
      $typeName: "taskframe.v1.ExecTarget",
      command: "true",
      args: [],
      env: { ...exec?.env },
      cwd: exec?.cwd ?? "",
      builtin: false,
    },
  };
  return create(RunSpecSchema, {
    name: task.name,
    source: spec.source,
    tasks: [task],
    labels: { [SCHEDULE_LABEL]: spec.name, [SLOT_LABEL]: slotText(slotMs), [EVALUATION_LABEL]: "condition" },
  });
}
