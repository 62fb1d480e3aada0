import type { QueryValue } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { hub } from "../api.js";
import { Problem } from "../components/Problem.js";
import { formatTime } from "../format.js";
import { usePoll } from "../use-poll.js";

/** Read through the documented `hosts` query view, as `task query` would. */
const HOSTS_SQL =
  "SELECT host, running_tasks, tasks, succeeded, failed, last_seen FROM hosts ORDER BY running_tasks DESC, last_seen DESC";

const cellText = (value: QueryValue | undefined): string | number =>
  value?.kind.case === "number" ? value.kind.value : value?.kind.case === "text" ? value.kind.value : "";

const queryHosts = (signal: AbortSignal) => hub.query({ sql: HOSTS_SQL, limit: 500 }, { signal });

/** Hosts that ran tasks: what each runs now, and how its tasks ended. */
export function HostsPage() {
  const { data, error } = usePoll(queryHosts, 5_000);
  return (
    <section className="page">
      <header className="page-header">
        <h1>Hosts</h1>
      </header>
      <Problem error={error} />
      <table className="compact">
        <thead>
          <tr>
            <th>host</th>
            <th>running now</th>
            <th>tasks</th>
            <th>succeeded</th>
            <th>failed</th>
            <th>last seen</th>
          </tr>
        </thead>
        <tbody>
          {(data?.rows ?? []).map((row) => {
            const [host, running, tasks, succeeded, failed, lastSeen] = row.values.map(cellText);
            return (
              <tr key={String(host)} data-host={host}>
                <td>{host}</td>
                <td className="number">
                  <meter min={0} max={Math.max(Number(running), 8)} value={Number(running)} /> {running}
                </td>
                <td className="number">{tasks}</td>
                <td className="number">{succeeded}</td>
                <td className="number">{failed}</td>
                <td>{lastSeen ? formatTime(Date.parse(String(lastSeen))) : ""}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && data.rows.length === 0 ? <p className="empty">No host has run a task yet.</p> : null}
    </section>
  );
}
