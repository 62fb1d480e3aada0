import pc from "picocolors";
import { formatDuration } from "../../core/definitions/duration.js";
import { RunState, runStateName, TaskState, taskStateName } from "../../core/states.js";

export { formatDuration };

const TASK_STATE_COLORS: Partial<Record<TaskState, (text: string) => string>> = {
  [TaskState.SUCCEEDED]: pc.green,
  [TaskState.FAILED]: pc.red,
  [TaskState.TIMED_OUT]: pc.red,
  [TaskState.CHECK_FAILED]: pc.red,
  [TaskState.RUNNING]: pc.cyan,
  [TaskState.RETRYING]: pc.yellow,
  [TaskState.SKIPPED]: pc.dim,
  [TaskState.CANCELLED]: pc.magenta,
};

export const taskState = (state: TaskState): string =>
  (TASK_STATE_COLORS[state] ?? ((s: string) => s))(taskStateName(state));

export function runState(state: RunState): string {
  const name = runStateName(state);
  if (state === RunState.SUCCEEDED) return pc.green(name);
  if (state === RunState.FAILED) return pc.red(name);
  if (state === RunState.CANCELLED) return pc.magenta(name);
  return pc.cyan(name);
}

export const shortId = (id: string): string => id.slice(0, 8);

export const ms = (value: bigint): number => Number(value);

/** Elapsed time between two Unix-ms values (0 = not set); open-ended ones run to `nowMs`. */
export function elapsed(startMs: number, endMs: number, nowMs = Date.now()): string {
  if (!startMs) return "";
  return formatDuration(Math.max(0, (endMs || nowMs) - startMs));
}

/** `2026-11-26 14:03:12` in local time; with `precise`, milliseconds too. */
export function timestamp(unixMs: number, precise = false): string {
  if (!unixMs) return "";
  const d = new Date(unixMs);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return precise ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}
