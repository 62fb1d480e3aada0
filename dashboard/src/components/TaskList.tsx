import { useVirtualizer } from "@tanstack/react-virtual";
import { useRef } from "react";
import type { Task } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { millis } from "../api.js";
import { span } from "../format.js";
import { runHref } from "../route.js";
import { stateClass, TASK_STATE_NAMES } from "../states.js";

const ROW_HEIGHT = 28;

/** Every task of the run in a virtualised list: only the rows in view are in the page. */
export function TaskList({ runId, tasks, selected }: { runId: string; tasks: Task[]; selected?: string }) {
  const scroller = useRef<HTMLDivElement>(null);
  const rows = useVirtualizer({
    count: tasks.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  return (
    <div className="task-list" ref={scroller}>
      <div style={{ height: rows.getTotalSize(), position: "relative" }}>
        {rows.getVirtualItems().map((row) => {
          const task = tasks[row.index]!;
          return (
            <a
              key={task.id}
              href={runHref(runId, task.id)}
              className={`task-row${task.id === selected ? " selected" : ""}`}
              style={{ transform: `translateY(${row.start}px)`, height: ROW_HEIGHT }}
              data-task={task.name}
              data-state={TASK_STATE_NAMES[task.state]}
            >
              <span className={`dot ${stateClass(task.state)}`} />
              <span className="task-name">{task.name}</span>
              <span className="task-state">{TASK_STATE_NAMES[task.state]}</span>
              <span className="task-attempt">{task.attempt > 1 ? `#${task.attempt}` : ""}</span>
              <span className="task-took">
                {span(millis(task.startedAtUnixMs), millis(task.finishedAtUnixMs))}
              </span>
            </a>
          );
        })}
      </div>
    </div>
  );
}
