import { TaskState } from "../../../core/states.js";

/** A task as the fence sees it: its state, its current attempt and that attempt's lease. */
export interface FencedTask {
  state: number;
  attempt: number;
  leaseEpoch: number;
}

/**
 * Whether a call made by a task's attempt (`task spawn`, a MapReduce commit)
 * speaks for the attempt that runs now. A PENDING task may have started
 * already: its start is not recorded yet (reports travel in batches), and the
 * fence applies to that start when it arrives. `leaseEpoch` "unchecked": the
 * caller did not know its lease.
 */
export function isCurrentAttempt(
  task: FencedTask,
  attempt: number,
  leaseEpoch: number | "unchecked",
): boolean {
  const running = task.state === TaskState.RUNNING || task.state === TaskState.PENDING;
  const epochMatches =
    leaseEpoch === "unchecked" ||
    task.leaseEpoch === leaseEpoch ||
    (task.state === TaskState.PENDING && leaseEpoch > task.leaseEpoch);
  return running && task.attempt === attempt && epochMatches;
}
