import { useCallback, useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import {
  type GetStatsResponse,
  StatsGrouping,
  type StatsRow,
} from "../../../core/gen/taskframe/v1/hub_pb.js";
import { hub, millis } from "../api.js";
import { Problem } from "../components/Problem.js";
import { formatDuration } from "../format.js";
import { usePoll } from "../use-poll.js";

const GROUPINGS: [string, StatsGrouping][] = [
  ["task name", StatsGrouping.NAME],
  ["pool", StatsGrouping.POOL],
  ["host", StatsGrouping.HOST],
  ["state", StatsGrouping.STATE],
];

const WINDOWS: [string, number][] = [
  ["15 min", 15 * 60_000],
  ["1 h", 3_600_000],
  ["6 h", 6 * 3_600_000],
  ["24 h", 24 * 3_600_000],
  ["7 d", 7 * 24 * 3_600_000],
];

/** What `task stats --by name` shows, refreshed every 5 s, with throughput and failures over the window. */
export function StatsPage() {
  const [windowMs, setWindowMs] = useState(3_600_000);
  const [by, setBy] = useState(StatsGrouping.NAME);
  const load = useCallback(
    (signal: AbortSignal) => hub.getStats({ sinceMs: BigInt(windowMs), by, limit: 50 }, { signal }),
    [windowMs, by],
  );
  const { data, error } = usePoll(load, 5_000);
  return (
    <section className="page">
      <header className="page-header">
        <h1>Analytics</h1>
        <select
          aria-label="window"
          value={windowMs}
          onChange={(event) => setWindowMs(Number(event.target.value))}
        >
          {WINDOWS.map(([label, ms]) => (
            <option key={ms} value={ms}>
              last {label}
            </option>
          ))}
        </select>
        <select aria-label="group by" value={by} onChange={(event) => setBy(Number(event.target.value))}>
          {GROUPINGS.map(([label, grouping]) => (
            <option key={grouping} value={grouping}>
              by {label}
            </option>
          ))}
        </select>
      </header>
      <Problem error={error} />
      {data ? (
        <>
          <Totals stats={data} />
          <Timeline stats={data} />
          <h2>By {GROUPINGS.find(([, grouping]) => grouping === by)?.[0]}</h2>
          <StatsTable rows={data.rows} />
          {data.topFailing.length > 0 ? (
            <>
              <h2>Failing most</h2>
              <table className="compact">
                <thead>
                  <tr>
                    <th>task</th>
                    <th>failed</th>
                    <th>of</th>
                    <th>rate</th>
                    <th>latest failure</th>
                  </tr>
                </thead>
                <tbody>
                  {data.topFailing.map((f) => (
                    <tr key={f.name}>
                      <td>{f.name}</td>
                      <td className="number">{String(f.failed)}</td>
                      <td className="number">{String(f.tasks)}</td>
                      <td className="number">{percent(Number(f.failed), Number(f.tasks))}</td>
                      <td className="detail">{f.lastDetail}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

const percent = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "");

function Totals({ stats }: { stats: GetStatsResponse }) {
  const total = stats.total;
  if (!total) return null;
  const tasks = Number(total.tasks);
  return (
    <div className="tiles">
      <Tile label="tasks ended" value={String(total.tasks)} />
      <Tile label="per second" value={total.perSecond.toFixed(2)} />
      <Tile label="failure rate" value={percent(Number(total.failed), tasks) || "—"} />
      <Tile label="retry rate" value={percent(Number(total.retries), tasks) || "—"} />
      <Tile label="queue wait p95" value={formatDuration(total.queueWait?.p95 ?? 0)} />
      <Tile label="run time p95" value={formatDuration(total.runTime?.p95 ?? 0)} />
    </div>
  );
}

function Tile({ label, value }: { label: string; value: string }) {
  return (
    <div className="tile">
      <div className="tile-value">{value}</div>
      <div className="tile-label">{label}</div>
    </div>
  );
}

/** Tasks ended per bucket of the window (succeeded and failed), drawn with uPlot. */
function Timeline({ stats }: { stats: GetStatsResponse }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const x = stats.timeline.map((b) => millis(b.startUnixMs) / 1000);
    const perSecond = (n: bigint, b: (typeof stats.timeline)[number]) =>
      Number(n) / Math.max(1, Number(b.widthMs) / 1000);
    const plot = new uPlot(
      {
        width: element.clientWidth || 800,
        height: 220,
        series: [
          {},
          { label: "succeeded /s", stroke: "#2e9d5b", fill: "rgba(46,157,91,0.15)", points: { show: false } },
          { label: "failed /s", stroke: "#d6453d", fill: "rgba(214,69,61,0.15)", points: { show: false } },
        ],
        axes: [{}, { label: "tasks/s" }],
      },
      [
        x,
        stats.timeline.map((b) => perSecond(b.succeeded, b)),
        stats.timeline.map((b) => perSecond(b.failed, b)),
      ],
      element,
    );
    return () => plot.destroy();
  }, [stats]);
  return (
    <>
      <h2>Throughput</h2>
      <div className="chart" ref={box} role="img" aria-label="throughput over time" />
    </>
  );
}

function StatsTable({ rows }: { rows: StatsRow[] }) {
  return (
    <table className="compact stats">
      <thead>
        <tr>
          <th>group</th>
          <th>ended</th>
          <th>failed</th>
          <th>retries</th>
          <th>wait p50</th>
          <th>wait p95</th>
          <th>run p50</th>
          <th>run p95</th>
          <th>run p99</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={row.key}>
            <td>{row.key}</td>
            <td className="number">{String(row.tasks)}</td>
            <td className="number">{String(row.failed)}</td>
            <td className="number">{String(row.retries)}</td>
            <td className="number">{formatDuration(row.queueWait?.p50 ?? 0)}</td>
            <td className="number">{formatDuration(row.queueWait?.p95 ?? 0)}</td>
            <td className="number">{formatDuration(row.runTime?.p50 ?? 0)}</td>
            <td className="number">{formatDuration(row.runTime?.p95 ?? 0)}</td>
            <td className="number">{formatDuration(row.runTime?.p99 ?? 0)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
