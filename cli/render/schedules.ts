import pc from "picocolors";
import { instantOf, parseDateTime } from "../../core/definitions/schedule-values.js";
import type { BackfillScheduleResponse, Run } from "../../core/gen/taskframe/v1/hub_pb.js";
import {
  CatchUpPolicy,
  type ConditionEvaluation,
  ConditionMode,
  EvaluationOutcome,
  FireCause,
  FireOutcome,
  OverlapPolicy,
  type Schedule,
  type ScheduleFire,
  type SchedulePolicy,
  type ScheduleSpec,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import { enumEntries, type RunState, runStateName } from "../../core/states.js";
import { elapsed, formatDuration, runState, shortId, timestamp } from "./format.js";
import { renderTable } from "./table.js";

/*
 * How schedules, their fires and condition evaluations read in the CLI.
 * Pure: every function takes the time it renders against (`nowMs`), so that
 * tests pin it; times print in the process's local time zone.
 */

const names = (enumObject: Record<string, string | number>, prefix: string) =>
  new Map(enumEntries(enumObject, prefix).map((e) => [e.id, e.name]));

const OVERLAP = names(OverlapPolicy, "OVERLAP_POLICY_");
const CATCH_UP = names(CatchUpPolicy, "CATCH_UP_POLICY_");
const MODE = names(ConditionMode, "CONDITION_MODE_");
const FIRE_OUTCOME = names(FireOutcome, "FIRE_OUTCOME_");
const FIRE_CAUSE = names(FireCause, "FIRE_CAUSE_");
const EVALUATION_OUTCOME = names(EvaluationOutcome, "EVALUATION_OUTCOME_");

/** The proto's defaults for its UNSPECIFIED values (SKIP, LATEST, EDGE). */
export const overlapName = (policy: OverlapPolicy): string => OVERLAP.get(policy) ?? "SKIP";
export const catchUpName = (policy: CatchUpPolicy): string => CATCH_UP.get(policy) ?? "LATEST";
export const conditionModeName = (mode: ConditionMode): string => MODE.get(mode) ?? "EDGE";
export const fireOutcomeName = (outcome: FireOutcome): string => FIRE_OUTCOME.get(outcome) ?? "UNKNOWN";
export const fireCauseName = (cause: FireCause): string => FIRE_CAUSE.get(cause) ?? "UNKNOWN";
export const evaluationOutcomeName = (outcome: EvaluationOutcome): string =>
  EVALUATION_OUTCOME.get(outcome) ?? "UNKNOWN";

/** `SKIP` -> `skip`, `NOT_MET` -> `not met`, `CATCH_UP` -> `catch-up`: enum names as words in tables. */
const word = (name: string): string => name.toLowerCase().replace(/_/g, name === "CATCH_UP" ? "-" : " ");

const SPAN_UNITS = [
  ["d", 86_400],
  ["h", 3600],
  ["m", 60],
  ["s", 1],
] as const;

/** Whole seconds in units, largest first; with `most`, that many adjacent units at most (`1d 2h`). */
function spanParts(seconds: number, most?: number): string[] {
  const parts: string[] = [];
  for (const [unit, size] of SPAN_UNITS) {
    if (seconds >= size && parts.length < (most ?? SPAN_UNITS.length)) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    } else if (most !== undefined && parts.length > 0) break;
  }
  return parts;
}

/** A span as people say it: `30s`, `1m30s`, `2h`, `1d6h`, `1500ms`. */
export function compactDuration(ms: number): string {
  if (ms < 1000 || (ms < 60_000 && ms % 1000 !== 0)) return formatDuration(ms);
  return spanParts(Math.round(ms / 1000)).join("");
}

/** `in 4m 10s`, `12s ago`, `now`: the two largest units of the distance from `nowMs`. */
export function relativeTime(atMs: number, nowMs: number): string {
  const distance = atMs - nowMs;
  const seconds = Math.round(Math.abs(distance) / 1000);
  if (seconds === 0) return "now";
  const text = spanParts(seconds, 2).join(" ");
  return distance > 0 ? `in ${text}` : `${text} ago`;
}

/** `14:05:00` on the day of `nowMs`, the full local timestamp on another day. */
export function clock(atMs: number, nowMs: number): string {
  if (!atMs) return "";
  const full = timestamp(atMs);
  return full.slice(0, 10) === timestamp(nowMs).slice(0, 10) ? full.slice(11) : full;
}

/** Quotes a word for display when a shell would need it. */
const shellWord = (text: string): string =>
  /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;

/** A path under `cwd` as `./rest` (how it was most likely written); any other text as is. */
function underCwd(path: string, cwd: string | undefined): string {
  if (!cwd) return path;
  const base = cwd.endsWith("/") ? cwd : `${cwd}/`;
  return path.startsWith(base) ? `./${path.slice(base.length)}` : path;
}

/**
 * `cron "*\/5 * * * *" Europe/Berlin`, or `if ./check.sh every 30s` (the
 * condition check of the trigger's task, as its command line; a path under
 * `cwd` relative to it).
 */
export function describeTrigger(spec: ScheduleSpec | undefined, cwd?: string): string {
  const trigger = spec?.trigger;
  if (trigger?.case === "cron") {
    return `cron ${JSON.stringify(trigger.value.expression)} ${trigger.value.timezone || "UTC"}`;
  }
  if (trigger?.case === "condition") {
    const condition = trigger.value;
    const check = spec?.run?.tasks.find((t) => t.name === condition.task)?.condition;
    const what = check
      ? [underCwd(check.command, cwd), ...check.args].map(shellWord).join(" ")
      : `the condition of ${condition.task}`;
    const mode = condition.mode === ConditionMode.LEVEL ? " (level)" : "";
    return `if ${what} every ${compactDuration(Number(condition.intervalMs))}${mode}`;
  }
  return "no trigger";
}

/** `skip/latest`, `queue/backfill 5`, `allow/skip, jitter 30s`: overlap and catch-up policies. */
export function describePolicy(policy: SchedulePolicy | undefined): string {
  const overlap = word(overlapName(policy?.overlap ?? OverlapPolicy.UNSPECIFIED));
  const catchUpPolicy = policy?.catchUp ?? CatchUpPolicy.UNSPECIFIED;
  let catchUp = word(catchUpName(catchUpPolicy));
  if (catchUpPolicy === CatchUpPolicy.BACKFILL) catchUp += ` ${policy?.backfillMax ?? 0}`;
  const jitter = Number(policy?.jitterMs ?? 0n);
  return `${overlap}/${catchUp}${jitter ? `, jitter ${compactDuration(jitter)}` : ""}`;
}

/** `2026-11-27 14:05:00 (in 4m 10s)`; `-` when nothing will fire (paused, or the schedule ended). */
export function describeNextFire(schedule: Schedule, nowMs: number): string {
  const next = Number(schedule.nextFireUnixMs);
  if (!next) return schedule.paused ? "- (paused)" : "-";
  return `${timestamp(next)} (${relativeTime(next, nowMs)})`;
}

/**
 * `STARTED 2m ago`, `SKIPPED 10s ago, 2 queued`: what the last slot did, and
 * when; for a condition, also its last check (`never, check NOT_MET 3s ago`).
 */
export function describeLastFire(schedule: Schedule, nowMs: number): string {
  const fire = schedule.lastFire;
  const parts: string[] = [];
  if (fire?.outcome) {
    const at = Number(fire.firedAtUnixMs || fire.slotUnixMs);
    parts.push(`${fireOutcomeName(fire.outcome)}${at ? ` ${relativeTime(at, nowMs)}` : ""}`);
  } else parts.push("never");
  if (schedule.queued) parts.push(`${schedule.queued} queued`);
  const check = schedule.lastEvaluation;
  if (schedule.spec?.trigger.case === "condition" && check?.outcome) {
    const at = Number(check.startedAtUnixMs || check.slotUnixMs);
    parts.push(`check ${evaluationOutcomeName(check.outcome)}${at ? ` ${relativeTime(at, nowMs)}` : ""}`);
  }
  return parts.join(", ");
}

/** `3f2a1b0c SUCCEEDED`: the run a fire started and where it stands. */
export function describeFireRun(fire: ScheduleFire | undefined): string {
  if (!fire?.runId) return "";
  return fire.runState ? `${shortId(fire.runId)} ${runState(fire.runState)}` : shortId(fire.runId);
}

export function describePaused(schedule: Schedule): string {
  if (!schedule.paused) return "";
  return schedule.pausedReason ? `yes: ${schedule.pausedReason}` : "yes";
}

/** `task schedule ls`: one row per schedule. */
export function scheduleTable(schedules: readonly Schedule[], nowMs: number, cwd?: string): string {
  const rows = schedules.map((s) => [
    s.spec?.name ?? "",
    describeTrigger(s.spec, cwd),
    describePolicy(s.spec?.policy),
    describeNextFire(s, nowMs),
    describeLastFire(s, nowMs),
    describeFireRun(s.lastFire),
    describePaused(s),
  ]);
  return renderTable(["NAME", "TRIGGER", "OVERLAP/CATCH-UP", "NEXT", "LAST FIRE", "RUN", "PAUSED"], rows);
}

/** What `task schedule apply` and `task dev` registered: name, trigger, next fire and where it came from. */
export function registeredTable(schedules: readonly Schedule[], nowMs: number, cwd?: string): string {
  const rows = schedules.map((s) => [
    s.spec?.name ?? "",
    describeTrigger(s.spec, cwd),
    describePolicy(s.spec?.policy),
    describeNextFire(s, nowMs),
    s.spec?.source ?? "",
  ]);
  return renderTable(["NAME", "TRIGGER", "OVERLAP/CATCH-UP", "NEXT", "SOURCE"], rows);
}

/** The heading of `task schedule history NAME`. */
export function scheduleHeading(schedule: Schedule, nowMs: number, cwd?: string): string {
  const name = schedule.spec?.name ?? "";
  const lines = [
    `${pc.bold(name)}  ${describeTrigger(schedule.spec, cwd)}  ${describePolicy(schedule.spec?.policy)}`,
  ];
  const next = describeNextFire(schedule, nowMs);
  const notes = [
    schedule.spec?.source,
    `next ${next}`,
    schedule.paused ? `paused${schedule.pausedReason ? `: ${schedule.pausedReason}` : ""}` : "",
    schedule.queued ? `${schedule.queued} queued` : "",
  ].filter(Boolean);
  lines.push(pc.dim(`  ${notes.join(", ")}`));
  return lines.join("\n");
}

/** Fires, newest first as the hub returns them. */
export function firesTable(fires: readonly ScheduleFire[]): string {
  const rows = fires.map((f) => [
    timestamp(Number(f.slotUnixMs)),
    timestamp(Number(f.firedAtUnixMs)),
    word(fireCauseName(f.cause)),
    fireOutcomeName(f.outcome),
    f.runId ? shortId(f.runId) : "",
    f.runId && f.runState ? runState(f.runState) : "",
    f.detail,
  ]);
  return renderTable(["SLOT", "FIRED AT", "CAUSE", "OUTCOME", "RUN", "STATE", "DETAIL"], rows);
}

/** Condition evaluations, newest first. */
export function evaluationsTable(evaluations: readonly ConditionEvaluation[]): string {
  const rows = evaluations.map((e) => [
    timestamp(Number(e.startedAtUnixMs || e.slotUnixMs)),
    e.host,
    e.exitCode === undefined ? "" : String(e.exitCode),
    e.durationMs ? formatDuration(Number(e.durationMs)) : "",
    evaluationOutcomeName(e.outcome),
    e.fired ? "yes" : "",
    e.runId ? shortId(e.runId) : "",
    e.detail,
  ]);
  return renderTable(["TIME", "HOST", "EXIT", "DURATION", "OUTCOME", "FIRED", "RUN", "DETAIL"], rows);
}

/* --- task dev: one line per event ------------------------------------------------------------ */

/**
 * `14:05:00  nightly  slot 14:05:00  STARTED run 3f2a1b0c`, with the cause
 * when it is not the clock's. The time is when it fired, or `atMs` (when a
 * slot that waited starts).
 */
export function fireLine(name: string, fire: ScheduleFire, nowMs: number, atMs?: number): string {
  const at = atMs ?? (Number(fire.firedAtUnixMs) || nowMs);
  const cause =
    fire.cause === FireCause.SCHEDULE || fire.cause === FireCause.UNSPECIFIED
      ? ""
      : ` (${word(fireCauseName(fire.cause))})`;
  const run = fire.runId ? ` run ${shortId(fire.runId)}` : "";
  // a run started by hand or by a backfill says so by its cause already
  const said =
    fire.outcome === FireOutcome.STARTED &&
    (fire.cause === FireCause.MANUAL || fire.cause === FireCause.BACKFILL);
  const detail = fire.detail && !said ? pc.dim(` ${fire.detail}`) : "";
  const outcome = fireOutcomeName(fire.outcome);
  const colored = fire.outcome === FireOutcome.STARTED ? outcome : pc.yellow(outcome);
  return `${pc.dim(clock(at, nowMs))}  ${name}  slot ${clock(Number(fire.slotUnixMs), nowMs)}  ${colored}${run}${cause}${detail}`;
}

/** `14:05:02  nightly  run 3f2a1b0c SUCCEEDED in 1.2s`. */
export function runEndLine(name: string, run: Run, nowMs: number): string {
  const at = Number(run.finishedAtUnixMs) || nowMs;
  const took = elapsed(Number(run.createdAtUnixMs), Number(run.finishedAtUnixMs), nowMs);
  return `${pc.dim(clock(at, nowMs))}  ${name}  run ${shortId(run.id)} ${runState(run.state)}${took ? ` in ${took}` : ""}`;
}

/** `14:05:02  nightly  8 runs ended: 7 SUCCEEDED, 1 FAILED`: many runs of one schedule ending at once. */
export function runEndsLine(name: string, runs: readonly Run[], nowMs: number): string {
  const counts = new Map<RunState, number>();
  for (const run of runs) counts.set(run.state, (counts.get(run.state) ?? 0) + 1);
  const summary = [...counts]
    .sort(([a], [b]) => a - b)
    .map(([state, count]) => `${count} ${runState(state)}`)
    .join(", ");
  return `${pc.dim(clock(nowMs, nowMs))}  ${name}  ${runs.length} runs ended: ${summary}`;
}

/** `14:05:30  disk-full  condition check FAILED: exit code 2 (task logs ...)`: a check that went wrong. */
export function evaluationLine(name: string, evaluation: ConditionEvaluation, nowMs: number): string {
  const at = Number(evaluation.startedAtUnixMs || evaluation.slotUnixMs) || nowMs;
  const what =
    evaluation.detail || (evaluation.exitCode === undefined ? "" : `exit code ${evaluation.exitCode}`);
  const logs = evaluation.taskId ? pc.dim(` (task logs ${evaluation.taskId})`) : "";
  return `${pc.dim(clock(at, nowMs))}  ${name}  condition check ${pc.red(evaluationOutcomeName(evaluation.outcome))}${what ? `: ${what}` : ""}${logs}`;
}

/* --- task backfill -------------------------------------------------------------------------- */

/** `backfill nightly: 120/300 slots, 118 started, 2 already fired`. */
export function backfillProgressLine(name: string, progress: BackfillScheduleResponse | undefined): string {
  if (!progress) return `backfill ${name}: starting`;
  return (
    `backfill ${name}: ${progress.done}/${progress.slots} slots, ` +
    `${progress.started} started, ${progress.alreadyFired} already fired`
  );
}

/** The last line: how it ended. */
export function backfillSummary(
  name: string,
  progress: BackfillScheduleResponse | undefined,
  fromMs: number,
  toMs: number,
): string {
  const range = `${timestamp(fromMs)} to ${timestamp(toMs)}`;
  if (!progress || progress.slots === 0) return `backfill ${name}: no slots from ${range}`;
  const runs = progress.started === 1 ? "1 run" : `${progress.started} runs`;
  return (
    `backfill ${name}: ${progress.done}/${progress.slots} slots from ${range}: ${runs} started, ` +
    `${progress.alreadyFired} had fired already`
  );
}

/* --- --json --------------------------------------------------------------------------------- */

const iso = (unixMs: bigint): string | null => (unixMs ? new Date(Number(unixMs)).toISOString() : null);

export function scheduleJson(schedule: Schedule) {
  const spec = schedule.spec;
  const trigger = spec?.trigger;
  const policy = spec?.policy;
  return {
    name: spec?.name ?? "",
    source: spec?.source || null,
    trigger:
      trigger?.case === "cron"
        ? { cron: trigger.value.expression, timezone: trigger.value.timezone || "UTC" }
        : trigger?.case === "condition"
          ? {
              condition: trigger.value.task,
              interval_ms: Number(trigger.value.intervalMs),
              timeout_ms: Number(trigger.value.timeoutMs) || null,
              mode: conditionModeName(trigger.value.mode),
            }
          : null,
    description: describeTrigger(spec),
    policy: {
      overlap: overlapName(policy?.overlap ?? OverlapPolicy.UNSPECIFIED),
      catch_up: catchUpName(policy?.catchUp ?? CatchUpPolicy.UNSPECIFIED),
      backfill_max: policy?.backfillMax ?? 0,
      jitter_ms: Number(policy?.jitterMs ?? 0n),
      start: iso(policy?.startUnixMs ?? 0n),
      end: iso(policy?.endUnixMs ?? 0n),
    },
    paused: schedule.paused,
    paused_reason: schedule.pausedReason || null,
    next_fire: iso(schedule.nextFireUnixMs),
    last_fire: schedule.lastFire ? fireJson(schedule.lastFire) : null,
    queued: schedule.queued,
    last_evaluation: schedule.lastEvaluation ? evaluationJson(schedule.lastEvaluation) : null,
    created_at: iso(schedule.createdAtUnixMs),
    updated_at: iso(schedule.updatedAtUnixMs),
  };
}

export function fireJson(fire: ScheduleFire) {
  return {
    slot: iso(fire.slotUnixMs),
    fired_at: iso(fire.firedAtUnixMs),
    outcome: fireOutcomeName(fire.outcome),
    cause: fireCauseName(fire.cause),
    run_id: fire.runId || null,
    run_state: fire.runId && fire.runState ? runStateName(fire.runState) : null,
    detail: fire.detail || null,
  };
}

export function evaluationJson(evaluation: ConditionEvaluation) {
  return {
    slot: iso(evaluation.slotUnixMs),
    outcome: evaluationOutcomeName(evaluation.outcome),
    host: evaluation.host || null,
    exit_code: evaluation.exitCode ?? null,
    started_at: iso(evaluation.startedAtUnixMs),
    duration_ms: Number(evaluation.durationMs),
    run_id: evaluation.runId || null,
    task_id: evaluation.taskId || null,
    detail: evaluation.detail || null,
    fired: evaluation.fired,
  };
}

/* --- time arguments ------------------------------------------------------------------------- */

/**
 * A time given on the command line: ISO 8601 (`2026-11-27`, `2026-11-27T14:05`, with `Z` or an
 * offset), read in the local time zone when it has no offset (a date alone is local midnight),
 * or `now`. The same reading as `Start=`/`End=` in units, in this machine's zone.
 */
export function parseTimeArgument(text: string, nowMs: number): number {
  if (text.trim().toLowerCase() === "now") return nowMs;
  return instantOf(parseDateTime(text), Intl.DateTimeFormat().resolvedOptions().timeZone);
}
