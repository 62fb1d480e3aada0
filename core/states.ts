import { RunState, TaskState } from "./gen/taskframe/v1/state_pb.js";

export { RunState, TaskState };

/** The named members of a generated proto enum, without the UNSPECIFIED zero value. */
export function enumEntries(
  enumObject: Record<string, string | number>,
  prefix: string,
): { id: number; name: string }[] {
  return Object.entries(enumObject)
    .filter((entry): entry is [string, number] => typeof entry[1] === "number" && entry[1] !== 0)
    .map(([key, id]) => ({ id, name: key.startsWith(prefix) ? key.slice(prefix.length) : key }));
}

export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set([
  TaskState.SUCCEEDED,
  TaskState.FAILED,
  TaskState.CANCELLED,
  TaskState.TIMED_OUT,
  TaskState.SKIPPED,
  TaskState.CHECK_FAILED,
]);

export const isTerminal = (state: TaskState): boolean => TERMINAL_TASK_STATES.has(state);

/** The terminal states as an SQL list, for `state in (...)`. */
export const TERMINAL_STATES_SQL = [...TERMINAL_TASK_STATES].join(", ");

/** Terminal states that mean "did not succeed": downstream tasks are skipped. */
export const isUnsuccessful = (state: TaskState): boolean =>
  isTerminal(state) && state !== TaskState.SUCCEEDED;

/** The unsuccessful terminal states as an SQL list, for `state in (...)`. */
export const UNSUCCESSFUL_STATES_SQL = [...TERMINAL_TASK_STATES].filter(isUnsuccessful).join(", ");

/** Outcomes a sidecar may report for an attempt (besides RUNNING); SKIPPED means its condition was not met. */
export const ATTEMPT_OUTCOMES: ReadonlySet<TaskState> = new Set([
  TaskState.SUCCEEDED,
  TaskState.FAILED,
  TaskState.TIMED_OUT,
  TaskState.CANCELLED,
  TaskState.CHECK_FAILED,
  TaskState.SKIPPED,
]);

const taskStateNames = new Map(enumEntries(TaskState, "TASK_STATE_").map((e) => [e.id, e.name]));
const runStateNames = new Map(enumEntries(RunState, "RUN_STATE_").map((e) => [e.id, e.name]));

/** `SUCCEEDED`, `TIMED_OUT`, ... as in the task_states table. */
export const taskStateName = (state: TaskState): string => taskStateNames.get(state) ?? `STATE_${state}`;
export const runStateName = (state: RunState): string => runStateNames.get(state) ?? `STATE_${state}`;

const taskStatesByName = new Map([...taskStateNames].map(([id, name]) => [name, id as TaskState]));

export function parseTaskState(name: string): TaskState | undefined {
  return taskStatesByName.get(name.toUpperCase().replace(/-/g, "_"));
}
