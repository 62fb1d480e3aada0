import type { TaskState } from "../../../core/states.js";

/** What changed about a task in a committed transaction; watchers merge it into what they hold. */
export interface TaskChange {
  taskId: string;
  runId: string;
  state: TaskState;
  attempt: number;
  host: string | null;
  exitCode: number | null;
  detail: string | null;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  retryAtMs: number | null;
}

export interface RunFinished {
  runId: string;
  state: number;
}
