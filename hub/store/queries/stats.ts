import { type SQL, sql } from "drizzle-orm";
import { StatsGrouping } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { TaskState } from "../../../core/states.js";
import type { Database } from "../database.js";

export interface StatsRowRecord {
  key: string;
  tasks: number;
  succeeded: number;
  failed: number;
  retries: number;
  wait: [number | null, number | null, number | null];
  run: [number | null, number | null, number | null];
}

export interface TaskStats {
  fromMs: number;
  toMs: number;
  total: StatsRowRecord;
  rows: StatsRowRecord[];
  topFailing: { name: string; failed: number; tasks: number; last_detail: string | null }[];
  timeline: StatsBucketRecord[];
}

export interface StatsBucketRecord {
  startMs: number;
  succeeded: number;
  failed: number;
  other: number;
}

/** How many buckets the window is cut into for the timeline. */
export const TIMELINE_BUCKETS = 60;

const FAILED_STATES = `${TaskState.FAILED}, ${TaskState.TIMED_OUT}, ${TaskState.CHECK_FAILED}`;

const KEYS: Record<StatsGrouping, SQL> = {
  [StatsGrouping.UNSPECIFIED]: sql`''`,
  [StatsGrouping.NAME]: sql`f.name`,
  [StatsGrouping.POOL]: sql`f.pool`,
  [StatsGrouping.HOST]: sql`coalesce(f.host, '')`,
  [StatsGrouping.STATE]: sql`(select name from task_states s where s.id = f.state)`,
};

interface Row {
  key: string;
  tasks: number;
  succeeded: number;
  failed: number;
  retries: number;
  wait: (number | null)[] | null;
  run: (number | null)[] | null;
}

/**
 * Tasks that ended in the last `sinceMs`, by group: counts, retries, and
 * percentiles of queue wait (PENDING to RUNNING, per attempt, from the audit
 * trail) and of the last attempt's run time. One statement per grouping, the
 * window's tasks found through `finished_at`.
 */
export async function taskStats(
  database: Database,
  options: { sinceMs: number; by: StatsGrouping; limit: number },
): Promise<TaskStats> {
  const window = sql`finished_at >= clock_timestamp() - make_interval(secs => ${options.sinceMs / 1000})`;
  const grouped = (key: SQL, limit: number) =>
    database.rows<Row>(sql`
      with finished as (
        select id, name, pool, host, state, attempt,
          extract(epoch from finished_at - started_at) * 1000 as run_ms
        from tasks where ${window}
      ),
      waits as (
        select e.task_id,
          extract(epoch from min(e.at) filter (where e.to_state = ${TaskState.RUNNING})
            - max(e.at) filter (where e.to_state = ${TaskState.PENDING})) * 1000 as wait_ms
        from task_events e join finished f on f.id = e.task_id
        where e.attempt > 0 and not e.rejected
        group by e.task_id, e.attempt
      ),
      keyed_waits as (
        select ${key} as key, w.wait_ms from waits w join finished f on f.id = w.task_id
      ),
      counts as (
        select ${key} as key, count(*)::int as tasks,
          count(*) filter (where f.state = ${TaskState.SUCCEEDED})::int as succeeded,
          count(*) filter (where f.state in (${sql.raw(FAILED_STATES)}))::int as failed,
          coalesce(sum(greatest(f.attempt - 1, 0)), 0)::int as retries,
          percentile_cont(array[0.5, 0.95, 0.99]) within group (order by f.run_ms) as run
        from finished f group by 1
      )
      select c.key, c.tasks, c.succeeded, c.failed, c.retries, c.run,
        (select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by k.wait_ms)
         from keyed_waits k where k.key = c.key) as wait
      from counts c order by c.tasks desc, c.key limit ${limit}`);
  const [totals, rows, topFailing, window_, buckets] = await Promise.all([
    grouped(KEYS[StatsGrouping.UNSPECIFIED], 1),
    options.by === StatsGrouping.UNSPECIFIED ? Promise.resolve([]) : grouped(KEYS[options.by], options.limit),
    database.rows<TaskStats["topFailing"][number]>(sql`
      select name, count(*) filter (where state in (${sql.raw(FAILED_STATES)}))::int as failed, count(*)::int as tasks,
        (array_agg(detail order by finished_at desc) filter (where state in (${sql.raw(FAILED_STATES)})))[1] as last_detail
      from tasks where ${window}
      group by name having count(*) filter (where state in (${sql.raw(FAILED_STATES)})) > 0
      order by failed desc, name limit 5`),
    database.rows<{ to_ms: number }>(sql`select extract(epoch from clock_timestamp()) * 1000 as to_ms`),
    database.rows<{ bucket: number; succeeded: number; failed: number; other: number }>(sql`
      select least(floor(extract(epoch from finished_at - (statement_timestamp() - make_interval(secs => ${options.sinceMs / 1000})))
          * 1000 / ${options.sinceMs / TIMELINE_BUCKETS}), ${TIMELINE_BUCKETS - 1})::int as bucket,
        count(*) filter (where state = ${TaskState.SUCCEEDED})::int as succeeded,
        count(*) filter (where state in (${sql.raw(FAILED_STATES)}))::int as failed,
        count(*) filter (where state <> ${TaskState.SUCCEEDED} and state not in (${sql.raw(FAILED_STATES)}))::int as other
      from tasks where ${window} group by 1`),
  ]);
  const toMs = Math.round(Number(window_[0]?.to_ms ?? Date.now()));
  const empty: Row = { key: "", tasks: 0, succeeded: 0, failed: 0, retries: 0, wait: null, run: null };
  return {
    fromMs: toMs - options.sinceMs,
    toMs,
    total: record(totals[0] ?? empty),
    rows: rows.map(record),
    topFailing,
    timeline: timelineOf(buckets, toMs - options.sinceMs, options.sinceMs / TIMELINE_BUCKETS),
  };
}

function timelineOf(
  rows: { bucket: number; succeeded: number; failed: number; other: number }[],
  fromMs: number,
  widthMs: number,
): StatsBucketRecord[] {
  const timeline = Array.from({ length: TIMELINE_BUCKETS }, (_, i) => ({
    startMs: Math.round(fromMs + i * widthMs),
    succeeded: 0,
    failed: 0,
    other: 0,
  }));
  for (const row of rows) {
    const bucket = timeline[Math.max(0, Math.min(TIMELINE_BUCKETS - 1, row.bucket))]!;
    bucket.succeeded += row.succeeded;
    bucket.failed += row.failed;
    bucket.other += row.other;
  }
  return timeline;
}

const triple = (values: (number | null)[] | null): [number | null, number | null, number | null] => [
  values?.[0] ?? null,
  values?.[1] ?? null,
  values?.[2] ?? null,
];

function record(row: Row): StatsRowRecord {
  return {
    key: row.key ?? "",
    tasks: row.tasks,
    succeeded: row.succeeded,
    failed: row.failed,
    retries: row.retries,
    wait: triple(parseArray(row.wait)),
    run: triple(parseArray(row.run)),
  };
}

/** float8[] arrives as an array (postgres-js) or as its text form `{1,2,3}` (PGlite, some settings). */
function parseArray(value: unknown): (number | null)[] | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => (v === null ? null : Number(v)));
  const text = String(value).replace(/^\{|\}$/g, "");
  return text ? text.split(",").map((v) => (v === "NULL" ? null : Number(v))) : null;
}
