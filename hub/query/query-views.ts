import { FireCause, FireOutcome } from "../../core/gen/taskframe/v1/schedule_pb.js";
import { enumEntries, TaskState, TERMINAL_TASK_STATES } from "../../core/states.js";

/** `case column when 1 then 'STARTED' ... end`: a proto enum's names, from the enum itself. */
function enumCase(column: string, values: Record<string, string | number>, prefix: string): string {
  const whens = enumEntries(values, prefix).map((e) => `when ${e.id} then '${e.name}'`);
  return `case ${column} ${whens.join(" ")} else 'UNKNOWN' end`;
}

/** The schema `task query` reads: views over the hub's tables, and nothing else. */
export const QUERY_SCHEMA = "taskframe_query";
/** The role queries run as: it may read the views, not the tables under them. */
export const QUERY_ROLE = "taskframe_query_reader";

/** The views, by name, for messages and docs. */
export const QUERY_VIEWS = [
  "runs",
  "tasks",
  "attempts",
  "task_events",
  "schedules",
  "schedule_fires",
  "hosts",
];

/** States an attempt ends in: the terminal ones, and RETRYING (it failed, and another follows). */
const ENDED = [...TERMINAL_TASK_STATES, TaskState.RETRYING].join(", ");

/**
 * The views and the reader role, created or replaced at every migration (they
 * follow the tables of this version). Columns are documented in docs/query.md;
 * states read as names (`SUCCEEDED`), durations as milliseconds.
 */
export const QUERY_VIEWS_SQL: readonly string[] = `
create schema if not exists ${QUERY_SCHEMA};

create or replace view ${QUERY_SCHEMA}.runs as
  select r.id, r.name, s.name as state, r.source, r.labels, r.total_tasks, r.remaining_tasks,
    r.unsuccessful_tasks, r.cancel_requested, r.created_at, r.finished_at,
    (extract(epoch from r.finished_at - r.created_at) * 1000)::bigint as duration_ms
  from public.runs r join public.run_states s on s.id = r.state;

create or replace view ${QUERY_SCHEMA}.tasks as
  select t.id, t.run_id, r.name as run_name, t.name, s.name as state, t.attempt, t.max_attempts,
    t.pool, t.handler, t.host, t.exit_code, t.detail, t.parent_id, t.retry_at, t.created_at,
    t.started_at, t.finished_at,
    (extract(epoch from t.finished_at - t.started_at) * 1000)::bigint as run_ms
  from public.tasks t join public.task_states s on s.id = t.state join public.runs r on r.id = t.run_id;

create or replace view ${QUERY_SCHEMA}.task_events as
  select e.id, e.run_id, e.task_id, t.name as task_name, e.attempt,
    coalesce(f.name, 'NONE') as from_state, s.name as to_state, e.at, e.host, e.lease_epoch,
    e.exit_code, e.detail, e.rejected
  from public.task_events e
    left join public.task_states f on f.id = e.from_state
    join public.task_states s on s.id = e.to_state
    left join public.tasks t on t.id = e.task_id;

create or replace view ${QUERY_SCHEMA}.attempts as
  select e.task_id, e.run_id, t.name as task_name, e.attempt,
    min(e.at) filter (where e.to_state = ${TaskState.RUNNING}) as started_at,
    max(e.at) filter (where e.to_state in (${ENDED}) and not e.rejected) as ended_at,
    (array_agg(s.name order by e.id desc) filter (where e.to_state in (${ENDED}) and not e.rejected))[1] as outcome,
    (array_agg(e.host order by e.id desc) filter (where e.host <> ''))[1] as host,
    (array_agg(e.exit_code order by e.id desc) filter (where e.exit_code is not null and not e.rejected))[1] as exit_code,
    (extract(epoch from max(e.at) filter (where e.to_state in (${ENDED}) and not e.rejected)
      - min(e.at) filter (where e.to_state = ${TaskState.RUNNING})) * 1000)::bigint as duration_ms,
    count(*) filter (where e.rejected) as rejected_results
  from public.task_events e
    join public.task_states s on s.id = e.to_state
    left join public.tasks t on t.id = e.task_id
  where e.attempt > 0
  group by e.task_id, e.run_id, t.name, e.attempt;

create or replace view ${QUERY_SCHEMA}.schedules as
  select name, kind, paused, paused_reason, next_due_at as next_fire_at, next_slot, last_run_id, queued,
    condition_held, created_at, updated_at
  from public.schedules;

create or replace view ${QUERY_SCHEMA}.schedule_fires as
  select f.schedule, f.slot, f.fired_at,
    ${enumCase("f.outcome", FireOutcome, "FIRE_OUTCOME_")} as outcome,
    ${enumCase("f.cause", FireCause, "FIRE_CAUSE_")} as cause,
    f.run_id, f.detail
  from public.schedule_fires f;

create or replace view ${QUERY_SCHEMA}.hosts as
  select t.host, count(*) filter (where t.state = ${TaskState.RUNNING}) as running_tasks,
    count(*) as tasks, count(*) filter (where t.state = ${TaskState.SUCCEEDED}) as succeeded,
    count(*) filter (where t.state in (${TaskState.FAILED}, ${TaskState.TIMED_OUT}, ${TaskState.CHECK_FAILED})) as failed,
    max(coalesce(t.finished_at, t.started_at)) as last_seen
  from public.tasks t where t.host is not null and t.host <> ''
  group by t.host;

do $$
begin
  create role ${QUERY_ROLE} nologin;
exception when duplicate_object or unique_violation then null;
end $$;

do $$
begin
  grant ${QUERY_ROLE} to current_user;
exception when others then null;
end $$;

grant usage on schema ${QUERY_SCHEMA} to ${QUERY_ROLE};

grant select on all tables in schema ${QUERY_SCHEMA} to ${QUERY_ROLE}
`
  .split(/;\n\n/)
  .map((statement) => statement.trim())
  .filter(Boolean);
