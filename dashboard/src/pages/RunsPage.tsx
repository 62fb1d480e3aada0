import { useMemo, useState } from "react";
import type { Run } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { hub, millis } from "../api.js";
import { Problem } from "../components/Problem.js";
import { StateBar } from "../components/StateBar.js";
import { formatTime, shortId, span } from "../format.js";
import { runHref } from "../route.js";
import { RUN_STATE_NAMES, RunState, runStateClass, type TaskState } from "../states.js";
import { usePoll } from "../use-poll.js";

const POLL_MS = 2_000;
const LIMIT = 200;
const listRuns = (signal: AbortSignal) => hub.listRuns({ limit: LIMIT }, { signal });

/** The newest runs, refreshed every 2 s, filtered by state and name. */
export function RunsPage() {
  const { data, error } = usePoll(listRuns, POLL_MS);
  const [state, setState] = useState<RunState | "all">("all");
  const [text, setText] = useState("");
  const runs = useMemo(
    () =>
      (data?.runs ?? []).filter(
        (run) =>
          (state === "all" || run.state === state) && run.name.toLowerCase().includes(text.toLowerCase()),
      ),
    [data, state, text],
  );
  const byState = useMemo(() => {
    const counts = new Map<RunState, number>();
    for (const run of data?.runs ?? []) counts.set(run.state, (counts.get(run.state) ?? 0) + 1);
    return counts;
  }, [data]);
  return (
    <section className="page">
      <header className="page-header">
        <h1>Runs</h1>
        <div className="live-counts" role="status" aria-label="runs by state">
          {[RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED].map((s) => (
            <span key={s} className={`count ${runStateClass(s)}`} data-state={RUN_STATE_NAMES[s]}>
              {RUN_STATE_NAMES[s]} {byState.get(s) ?? 0}
            </span>
          ))}
        </div>
      </header>
      <div className="filters">
        <input
          type="search"
          placeholder="filter by name"
          aria-label="filter runs by name"
          value={text}
          onChange={(event) => setText(event.target.value)}
        />
        <select
          aria-label="filter runs by state"
          value={state}
          onChange={(event) => setState(event.target.value === "all" ? "all" : Number(event.target.value))}
        >
          <option value="all">every state</option>
          {[RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED].map((s) => (
            <option key={s} value={s}>
              {RUN_STATE_NAMES[s]}
            </option>
          ))}
        </select>
        <span className="hint">the newest {LIMIT}, live</span>
      </div>
      <Problem error={error} />
      <table className="runs">
        <thead>
          <tr>
            <th>Run</th>
            <th>State</th>
            <th>Tasks</th>
            <th>Started</th>
            <th>Took</th>
            <th>Id</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <RunRow key={run.id} run={run} />
          ))}
        </tbody>
      </table>
      {data && runs.length === 0 ? (
        <p className="empty">No runs{text || state !== "all" ? " match" : " yet"}.</p>
      ) : null}
    </section>
  );
}

function RunRow({ run }: { run: Run }) {
  const counts = new Map<TaskState, number>(run.counts.map((c) => [c.state, c.count]));
  return (
    <tr data-run-id={run.id}>
      <td>
        <a href={runHref(run.id)}>{run.name}</a>
      </td>
      <td>
        <span className={`badge ${runStateClass(run.state)}`}>{RUN_STATE_NAMES[run.state]}</span>
      </td>
      <td className="tasks-cell">
        <StateBar counts={counts} total={run.totalTasks} />
        <span className="number">{run.totalTasks}</span>
      </td>
      <td>{formatTime(millis(run.createdAtUnixMs))}</td>
      <td>{span(millis(run.createdAtUnixMs), millis(run.finishedAtUnixMs))}</td>
      <td className="mono">{shortId(run.id)}</td>
    </tr>
  );
}
