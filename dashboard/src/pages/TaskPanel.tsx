import { useCallback, useEffect, useMemo, useState } from "react";
import type { AuditEvent, LogEntry, Task } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { LogStream } from "../../../core/gen/taskframe/v1/state_pb.js";
import { hub, millis } from "../api.js";
import { Problem } from "../components/Problem.js";
import { formatTime, span } from "../format.js";
import { runHref } from "../route.js";
import { isTerminal, stateClass, TASK_STATE_NAMES, TaskState } from "../states.js";
import { messageOf, usePoll } from "../use-poll.js";

/** Log lines kept in the page; `task logs` has all of them. */
const LOG_LINES_KEPT = 2_000;

/** A task: where it stands, its attempts, its audit trail, its log tail and its output. */
export function TaskPanel({
  runId,
  taskId,
  live,
}: {
  runId: string;
  taskId: string;
  live: Task | undefined;
}) {
  const ended = live ? isTerminal(live.state) : false;
  // the audit trail and the output are read again whenever the task's state changes
  const state = live?.state;
  const attempt = live?.attempt;
  const load = useCallback(
    async (signal: AbortSignal) => {
      const [task, audit] = await Promise.all([
        hub.getTask({ task: { taskId } }, { signal }),
        hub.getAudit({ task: { taskId } }, { signal }),
      ]);
      return { task: task.task, events: audit.events, state, attempt };
    },
    [taskId, state, attempt],
  );
  const detail = usePoll(load, ended ? 3_600_000 : 2_000);
  const task = detail.data?.task ?? live;
  return (
    <aside className="task-panel" aria-label="task detail">
      <header className="panel-header">
        <h2 data-task-name={task?.name}>{task?.name ?? taskId}</h2>
        {task ? (
          <span className={`badge ${stateClass(task.state)}`} data-task-state={TASK_STATE_NAMES[task.state]}>
            {TASK_STATE_NAMES[task.state]}
          </span>
        ) : null}
        <a className="close" href={runHref(runId)} aria-label="close">
          ✕
        </a>
      </header>
      <Problem error={detail.error} />
      {task ? <Summary task={task} /> : null}
      {detail.data ? <Attempts events={detail.data.events} /> : null}
      <LogTail taskId={taskId} />
      {task && task.output.length > 0 ? <Output task={task} /> : null}
      {detail.data ? <Audit events={detail.data.events} /> : null}
    </aside>
  );
}

function Summary({ task }: { task: Task }) {
  return (
    <dl className="summary">
      <dt>attempt</dt>
      <dd>
        {task.attempt} of {task.maxAttempts}
      </dd>
      <dt>host</dt>
      <dd>{task.host || "—"}</dd>
      <dt>exit code</dt>
      <dd data-exit-code={task.exitCode ?? ""}>{task.exitCode ?? "—"}</dd>
      <dt>started</dt>
      <dd>{formatTime(millis(task.startedAtUnixMs)) || "—"}</dd>
      <dt>took</dt>
      <dd>{span(millis(task.startedAtUnixMs), millis(task.finishedAtUnixMs)) || "—"}</dd>
      {task.retryAtUnixMs > 0n && task.state === TaskState.RETRYING ? (
        <>
          <dt>next attempt</dt>
          <dd>{formatTime(millis(task.retryAtUnixMs))}</dd>
        </>
      ) : null}
      {task.needs.length > 0 ? (
        <>
          <dt>needs</dt>
          <dd>{task.needs.join(", ")}</dd>
        </>
      ) : null}
      {task.detail ? (
        <>
          <dt>detail</dt>
          <dd className="detail">{task.detail}</dd>
        </>
      ) : null}
    </dl>
  );
}

interface AttemptRow {
  attempt: number;
  startedMs: number;
  endedMs: number;
  state: TaskState;
  host: string;
  exitCode: number | undefined;
  detail: string;
}

/** One row per attempt, read off the audit trail: when it ran, where, and how it ended. */
function Attempts({ events }: { events: AuditEvent[] }) {
  const attempts = useMemo(() => {
    const rows = new Map<number, AttemptRow>();
    for (const event of events) {
      if (event.attempt === 0 || event.rejected) continue;
      const row = rows.get(event.attempt) ?? {
        attempt: event.attempt,
        startedMs: 0,
        endedMs: 0,
        state: event.to,
        host: "",
        exitCode: undefined,
        detail: "",
      };
      if (event.to === TaskState.RUNNING) row.startedMs ||= millis(event.atUnixMs);
      if (isTerminal(event.to) || event.to === TaskState.RETRYING) row.endedMs = millis(event.atUnixMs);
      row.state = event.to;
      row.host = event.host || row.host;
      row.exitCode = event.exitCode ?? row.exitCode;
      row.detail = event.detail || row.detail;
      rows.set(event.attempt, row);
    }
    return [...rows.values()];
  }, [events]);
  if (attempts.length === 0) return null;
  return (
    <section>
      <h3>Attempts</h3>
      <table className="compact">
        <thead>
          <tr>
            <th>#</th>
            <th>state</th>
            <th>host</th>
            <th>exit</th>
            <th>took</th>
            <th>detail</th>
          </tr>
        </thead>
        <tbody>
          {attempts.map((a) => (
            <tr key={a.attempt}>
              <td>{a.attempt}</td>
              <td className={stateClass(a.state)}>{TASK_STATE_NAMES[a.state]}</td>
              <td>{a.host}</td>
              <td>{a.exitCode ?? ""}</td>
              <td>{span(a.startedMs, a.endedMs)}</td>
              <td className="detail">{a.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Audit({ events }: { events: AuditEvent[] }) {
  return (
    <section>
      <h3>Audit trail</h3>
      <table className="compact audit">
        <thead>
          <tr>
            <th>time</th>
            <th>#</th>
            <th>change</th>
            <th>host</th>
            <th>detail</th>
          </tr>
        </thead>
        <tbody>
          {events.map((event, index) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: the trail only grows at its end
            <tr key={index} className={event.rejected ? "rejected" : ""}>
              <td>{formatTime(millis(event.atUnixMs))}</td>
              <td>{event.attempt || ""}</td>
              <td>
                {event.from === TaskState.UNSPECIFIED ? "submitted" : TASK_STATE_NAMES[event.from]} →{" "}
                <span className={stateClass(event.to)}>{TASK_STATE_NAMES[event.to]}</span>
              </td>
              <td>{event.host}</td>
              <td className="detail">
                {event.rejected ? "[fenced: stale lease, not applied] " : ""}
                {event.detail}
                {event.exitCode !== undefined && !event.detail.includes(`exit code ${event.exitCode}`)
                  ? ` (exit code ${event.exitCode})`
                  : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

interface LogLine {
  key: number;
  attempt: number;
  stream: LogStream;
  text: string;
}

/** The task's output as it is written (GetLogs with follow), the last lines only. */
function LogTail({ taskId }: { taskId: string }) {
  const [{ lines, dropped }, setTail] = useState<{ lines: LogLine[]; dropped: number }>({
    lines: [],
    dropped: 0,
  });
  const [error, setError] = useState<string>();
  useEffect(() => {
    const controller = new AbortController();
    setTail({ lines: [], dropped: 0 });
    const decoder = new TextDecoder();
    let key = 0;
    (async () => {
      for await (const message of hub.getLogs(
        { task: { taskId }, follow: true },
        { signal: controller.signal },
      )) {
        const added = message.entries.flatMap((entry) => linesOf(entry, decoder, () => key++));
        setTail((previous) => {
          const all = previous.lines.concat(added);
          const over = Math.max(0, all.length - LOG_LINES_KEPT);
          return { lines: over > 0 ? all.slice(over) : all, dropped: previous.dropped + over };
        });
      }
    })().catch((problem: unknown) => {
      if (!controller.signal.aborted) setError(messageOf(problem));
    });
    return () => controller.abort();
  }, [taskId]);
  return (
    <section>
      <h3>Logs</h3>
      <Problem error={error} />
      {dropped > 0 ? <p className="hint">{dropped} earlier lines not shown: task logs has them all</p> : null}
      <pre className="logs" role="log" aria-label="logs">
        {lines.length === 0 ? <span className="hint">no output</span> : null}
        {lines.map((line) => (
          <span key={line.key} className={line.stream === LogStream.STDERR ? "stderr" : "stdout"}>
            {line.text}
            {"\n"}
          </span>
        ))}
      </pre>
    </section>
  );
}

function linesOf(entry: LogEntry, decoder: TextDecoder, nextKey: () => number): LogLine[] {
  const prefix = `[${entry.attempt}] `;
  if (entry.droppedBytes > 0n)
    return [
      {
        key: nextKey(),
        attempt: entry.attempt,
        stream: entry.stream,
        text: `${prefix}… ${entry.droppedBytes} bytes dropped past the log cap …`,
      },
    ];
  return decoder
    .decode(entry.data)
    .replace(/\n$/, "")
    .split("\n")
    .map((text) => ({ key: nextKey(), attempt: entry.attempt, stream: entry.stream, text: prefix + text }));
}

function Output({ task }: { task: Task }) {
  const textual = /^(text\/|application\/json)/.test(task.outputContentType) || task.outputContentType === "";
  return (
    <section>
      <h3>Output</h3>
      <p className="hint">
        {task.outputContentType || "no content type"} · {task.output.length} bytes
      </p>
      {textual ? (
        <pre className="output">{new TextDecoder().decode(task.output.subarray(0, 65_536))}</pre>
      ) : null}
    </section>
  );
}
