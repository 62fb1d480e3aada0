import { RunState, TaskState } from "../../core/states.js";

export { isTerminal, RunState, TaskState } from "../../core/states.js";

export const TASK_STATE_NAMES: Record<TaskState, string> = {
  [TaskState.UNSPECIFIED]: "unknown",
  [TaskState.CREATED]: "created",
  [TaskState.PENDING]: "pending",
  [TaskState.RUNNING]: "running",
  [TaskState.SUCCEEDED]: "succeeded",
  [TaskState.FAILED]: "failed",
  [TaskState.RETRYING]: "retrying",
  [TaskState.CANCELLED]: "cancelled",
  [TaskState.TIMED_OUT]: "timed out",
  [TaskState.SKIPPED]: "skipped",
  [TaskState.CHECK_FAILED]: "check failed",
};

/** Drawing order in state bars: what is done first, then what is going, then what waits. */
export const TASK_STATE_ORDER: TaskState[] = [
  TaskState.SUCCEEDED,
  TaskState.FAILED,
  TaskState.TIMED_OUT,
  TaskState.CHECK_FAILED,
  TaskState.CANCELLED,
  TaskState.SKIPPED,
  TaskState.RUNNING,
  TaskState.RETRYING,
  TaskState.PENDING,
  TaskState.CREATED,
];

export const RUN_STATE_NAMES: Record<RunState, string> = {
  [RunState.UNSPECIFIED]: "unknown",
  [RunState.RUNNING]: "running",
  [RunState.SUCCEEDED]: "succeeded",
  [RunState.FAILED]: "failed",
  [RunState.CANCELLED]: "cancelled",
};

/** CSS class of a state (colours are in styles.css). */
export const stateClass = (state: TaskState): string => `state-${TASK_STATE_NAMES[state].replace(" ", "-")}`;
export const runStateClass = (state: RunState): string => `state-${RUN_STATE_NAMES[state]}`;
