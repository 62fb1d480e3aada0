import type { ListHostsResponse } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { hub, millis } from "../api.js";
import { Problem } from "../components/Problem.js";
import { formatDuration } from "../format.js";
import { usePoll } from "../use-poll.js";

const listHosts = (signal: AbortSignal) => hub.listHosts({}, { signal });

/** Heartbeats older than this read as lost (the autoscaler's default heartbeat timeout). */
const QUIET_AFTER_MS = 10_000;

/** Sidecar hosts by pool, with their load, and the hosts the autoscaler is bringing up. */
export function HostsPage() {
  const { data, error } = usePoll(listHosts, 2_000);
  const rows = data ? hostRows(data) : [];
  return (
    <section className="page">
      <header className="page-header">
        <h1>Hosts</h1>
        <span className="hint">live, from the sidecars' heartbeats (task hosts)</span>
      </header>
      <Problem error={error} />
      <table className="compact">
        <thead>
          <tr>
            <th>pool</th>
            <th>host</th>
            <th>state</th>
            <th>load</th>
            <th>up for</th>
            <th>last heard</th>
            <th>provider</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key} data-host={row.host}>
              <td>{row.pools}</td>
              <td>{row.host}</td>
              <td>{row.state}</td>
              <td className="number">
                {row.slots > 0 ? (
                  <>
                    <meter min={0} max={row.slots} value={row.running} /> {row.running}/{row.slots}
                  </>
                ) : null}
              </td>
              <td>{row.upFor}</td>
              <td>{row.lastHeard}</td>
              <td>{row.provider}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && rows.length === 0 ? <p className="empty">No host has sent a heartbeat yet.</p> : null}
    </section>
  );
}

interface HostRow {
  key: string;
  pools: string;
  host: string;
  state: string;
  running: number;
  slots: number;
  upFor: string;
  lastHeard: string;
  provider: string;
}

function hostRows(listed: ListHostsResponse): HostRow[] {
  const provisioned = new Map(listed.provisioned.map((p) => [p.providerHostId, p]));
  const rows: HostRow[] = [];
  for (const { heartbeat, lastSeenMsAgo } of listed.hosts) {
    if (!heartbeat || heartbeat.stopped) continue;
    const quietMs = millis(lastSeenMsAgo);
    const made = provisioned.get(heartbeat.providerHostId);
    rows.push({
      key: heartbeat.host,
      pools: heartbeat.pools.join(", "),
      host: heartbeat.host,
      state: quietMs > QUIET_AFTER_MS ? "lost" : heartbeat.draining ? "draining" : "ready",
      running: heartbeat.running,
      slots: heartbeat.slots,
      upFor: formatDuration(Date.now() - millis(heartbeat.startedAtUnixMs)),
      lastHeard: `${formatDuration(quietMs)} ago`,
      provider: made ? made.provider : "by hand",
    });
  }
  for (const p of listed.provisioned) {
    if (listed.hosts.some((h) => h.heartbeat?.providerHostId === p.providerHostId && p.providerHostId))
      continue;
    rows.push({
      key: p.token,
      pools: p.pool,
      host: p.providerHostId || "(requested)",
      state: p.state,
      running: 0,
      slots: 0,
      upFor: formatDuration(millis(p.ageMs)),
      lastHeard: "never",
      provider: p.provider,
    });
  }
  return rows;
}
