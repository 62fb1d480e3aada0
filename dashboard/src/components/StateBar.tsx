import type { TaskState } from "../states.js";
import { stateClass, TASK_STATE_NAMES, TASK_STATE_ORDER } from "../states.js";

/** A bar cut by how many tasks are in each state, with the counts as its tooltip. */
export function StateBar({ counts, total }: { counts: ReadonlyMap<TaskState, number>; total: number }) {
  const title = TASK_STATE_ORDER.filter((state) => counts.get(state))
    .map((state) => `${TASK_STATE_NAMES[state]}: ${counts.get(state)}`)
    .join(", ");
  return (
    <div className="state-bar" title={title} role="img" aria-label={title}>
      {TASK_STATE_ORDER.map((state) => {
        const count = counts.get(state) ?? 0;
        return count > 0 ? (
          <span key={state} className={stateClass(state)} style={{ flexGrow: count / Math.max(total, 1) }} />
        ) : null;
      })}
    </div>
  );
}

/** Counts as small labelled numbers, in the bar's order. */
export function StateCounts({ counts }: { counts: ReadonlyMap<TaskState, number> }) {
  return (
    <span className="state-counts">
      {TASK_STATE_ORDER.filter((state) => counts.get(state)).map((state) => (
        <span key={state} className={`count ${stateClass(state)}`} data-state={TASK_STATE_NAMES[state]}>
          {TASK_STATE_NAMES[state]} {counts.get(state)}
        </span>
      ))}
    </span>
  );
}
