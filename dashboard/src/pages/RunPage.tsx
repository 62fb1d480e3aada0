import { useCallback, useMemo, useRef, useState } from "react";
import type { Task } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { hub, millis } from "../api.js";
import { MapReduceJob } from "../components/MapReduceJob.js";
import { Problem } from "../components/Problem.js";
import { StateBar, StateCounts } from "../components/StateBar.js";
import { TaskList } from "../components/TaskList.js";
import { DagView } from "../dag/DagView.js";
import { type GroupGraph, groupRun, recount } from "../dag/group-tasks.js";
import { formatTime, shortId, span } from "../format.js";
import {
  RUN_STATE_NAMES,
  RunState,
  runStateClass,
  TASK_STATE_NAMES,
  TASK_STATE_ORDER,
  type TaskState,
} from "../states.js";
import { messageOf } from "../use-poll.js";
import { useRunWatch } from "../use-run-watch.js";
import { TaskPanel } from "./TaskPanel.js";

/**
 * One run, live: its graph (tasks of a fan-out drawn as one node) beside
 * the list of every task, filtered by the node picked, by state and by
 * name; a task picked in the list opens its detail.
 */
export function RunPage({ runId, taskId }: { runId: string; taskId?: string }) {
  const watched = useRunWatch(runId);
  const [group, setGroup] = useState<string>();
  const [state, setState] = useState<TaskState | "all">("all");
  const [text, setText] = useState("");
  const [cancelError, setCancelError] = useState<string>();
  const opened = useRef(performance.now());

  const ordered = watched.ordered;
  // regrouped only when tasks were added; states are recounted at every change
  const grouping = useRef<{ structure: number; graph: GroupGraph }>(undefined);
  if (grouping.current?.structure !== watched.structure)
    grouping.current = {
      structure: watched.structure,
      graph: groupRun(ordered),
    };
  const graph = grouping.current.graph;
  recount(graph, watched.tasks);
  const structureKey = `${watched.structure}:${graph.groups.size}:${graph.edges.length}`;

  const shown = useMemo(() => {
    const needle = text.toLowerCase();
    const members = group === undefined ? undefined : new Set(graph.groups.get(group)?.taskIds);
    return ordered.filter(
      (task) =>
        (members === undefined || members.has(task.id)) &&
        (state === "all" || task.state === state) &&
        (needle === "" || task.name.toLowerCase().includes(needle)),
    );
  }, [ordered, graph, group, state, text]);

  const counts = useMemo(() => {
    const byState = new Map<TaskState, number>();
    for (const task of ordered) byState.set(task.state, (byState.get(task.state) ?? 0) + 1);
    return byState;
  }, [ordered]);

  const labelOf = useCallback(
    (key: string) => (graph.groups.get(key)?.taskIds.length === 1 ? nameOf(watched.tasks, key, graph) : key),
    [graph, watched.tasks],
  );

  // how long the graph took to be usable: since the page opened, and since this run was opened in it
  const laidOut = useCallback((layoutMs: number) => {
    const sinceNavigationMs = performance.now();
    const sinceOpenedMs = sinceNavigationMs - opened.current;
    performance.mark("taskframe:dag-interactive", { detail: { sinceNavigationMs, sinceOpenedMs, layoutMs } });
    document.body.dataset.dagInteractive = JSON.stringify({
      sinceNavigationMs: Math.round(sinceNavigationMs),
      sinceOpenedMs: Math.round(sinceOpenedMs),
      layoutMs: Math.round(layoutMs),
    });
  }, []);

  const run = watched.run;
  const selectedTask = taskId ? watched.tasks.get(taskId) : undefined;
  return (
    <section className="page run-page">
      <header className="page-header">
        <h1>
          <a href="#/">Runs</a> / {run?.name ?? shortId(runId)}
        </h1>
        {run ? (
          <>
            <span className={`badge ${runStateClass(run.state)}`} data-run-state={RUN_STATE_NAMES[run.state]}>
              {RUN_STATE_NAMES[run.state]}
            </span>
            <span className="hint">
              {formatTime(millis(run.createdAtUnixMs))} ·{" "}
              {span(millis(run.createdAtUnixMs), millis(run.finishedAtUnixMs))} ·{" "}
              <span className="mono">{run.id}</span>
            </span>
            {run.state === RunState.RUNNING ? (
              <button
                type="button"
                onClick={() =>
                  hub.cancelRun({ runId }).then(
                    () => setCancelError(undefined),
                    (error: unknown) => setCancelError(messageOf(error)),
                  )
                }
              >
                cancel run
              </button>
            ) : null}
          </>
        ) : null}
      </header>
      <Problem error={watched.error ?? cancelError} />
      {run ? (
        <div className="run-summary">
          <StateBar counts={counts} total={ordered.length} />
          <StateCounts counts={counts} />
          <span className="number">{ordered.length} tasks</span>
        </div>
      ) : null}
      <MapReduceJob runId={runId} />
      <div className="run-body">
        <div className="run-graph">
          {ordered.length > 0 ? (
            <DagView
              graph={graph}
              structureKey={structureKey}
              labelOf={labelOf}
              selected={group}
              onSelect={setGroup}
              onLaidOut={laidOut}
            />
          ) : (
            <p className="hint">{run ? "no tasks" : "loading…"}</p>
          )}
        </div>
        <div className="run-tasks">
          <div className="filters">
            <input
              type="search"
              placeholder="filter by name"
              aria-label="filter tasks by name"
              value={text}
              onChange={(event) => setText(event.target.value)}
            />
            <select
              aria-label="filter tasks by state"
              value={state}
              onChange={(event) =>
                setState(event.target.value === "all" ? "all" : Number(event.target.value))
              }
            >
              <option value="all">every state</option>
              {TASK_STATE_ORDER.map((s) => (
                <option key={s} value={s}>
                  {TASK_STATE_NAMES[s]}
                </option>
              ))}
            </select>
            {group !== undefined ? (
              <button type="button" onClick={() => setGroup(undefined)} title="show every task">
                {labelOf(group)} ✕
              </button>
            ) : null}
            <span className="hint" data-shown={shown.length}>
              {shown.length} of {ordered.length}
            </span>
          </div>
          <TaskList runId={runId} tasks={shown} selected={taskId} />
        </div>
      </div>
      {taskId ? <TaskPanel runId={runId} taskId={taskId} live={selectedTask} /> : null}
    </section>
  );
}

function nameOf(tasks: Map<string, Task>, key: string, graph: GroupGraph) {
  const id = graph.groups.get(key)?.taskIds[0];
  return (id && tasks.get(id)?.name) || key;
}
