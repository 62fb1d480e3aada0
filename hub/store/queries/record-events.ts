import { create, fromBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import {
  type LogChunk,
  type StateTransition,
  WorkItemSchema,
} from "../../../core/gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../../../core/states.js";
import {
  type AuditRow,
  applyTransitions,
  type HubVerdict,
  type StopRequest,
  type TaskRow,
} from "../../apply-transitions.js";
import { chunked, toIso } from "../chunked.js";
import type { Database, Db, Tx } from "../database.js";
import { databaseNowMs } from "./database-clock.js";
import { writeOutbox } from "./insert-run.js";
import type { ReadyWork } from "./ready-work.js";
import { settle, stopSubtrees } from "./subtree.js";
import type { RunFinished, TaskChange } from "./task-change.js";

export interface RecordedEvents {
  ready: ReadyWork[];
  /** Deliveries that must stop (late copies of tasks that are finished or cancelled). */
  stop: StopRequest[];
  changes: TaskChange[];
  finishedRuns: RunFinished[];
  /** How soon the earliest retry set in this batch is due, if any. */
  nextRetryInMs: number | undefined;
  /** Tasks that got new log output. */
  loggedTasks: Set<string>;
  /** Results refused by fencing (a stale lease or attempt), recorded and not applied. */
  rejected: number;
}

/**
 * The recorder's one transaction per batch: log chunks, fenced transitions,
 * the audit events, dependents that became ready (with their outbox rows),
 * descendants skipped after a failure, and the runs' counters. Times are
 * Postgres's (`at` overrides it, for tests): retry intervals hold whichever
 * hub records the failure and whichever releases the retry.
 */
export async function recordEvents(
  database: Database,
  transitions: readonly StateTransition[],
  logs: readonly LogChunk[],
  at?: number,
  verdicts: readonly HubVerdict[] = [],
): Promise<RecordedEvents> {
  return database.transaction(async (tx) => {
    const recorded: RecordedEvents = {
      ready: [],
      stop: [],
      changes: [],
      finishedRuns: [],
      nextRetryInMs: undefined,
      loggedTasks: new Set(logs.map((l) => l.taskId)),
      rejected: 0,
    };
    await insertLogs(tx, logs);
    if (transitions.length === 0 && verdicts.length === 0) return recorded;

    const ids = new Set([...transitions.map((t) => t.taskId), ...verdicts.map((v) => v.taskId)]);
    // only an attempt that did not succeed may need its retry policy, which lives in the spec
    const failing = transitions.filter((t) => t.to !== TaskState.RUNNING && t.to !== TaskState.SUCCEEDED);
    const rows = await lockTasks(database, tx, [...ids], [...new Set(failing.map((t) => t.taskId))]);
    const nowMs = at ?? (await databaseNowMs(database, tx));
    const applied = applyTransitions(rows, transitions, nowMs, Math.random, verdicts);
    recorded.stop = applied.stop;
    const events = applied.events;
    for (const event of events) if (event.rejected) recorded.rejected++;
    await updateTasks(tx, applied.changed);
    for (const row of applied.changed) {
      recorded.changes.push(changeOf(row));
      if (row.retryAtMs !== null && row.state === TaskState.RETRYING) {
        const inMs = row.retryAtMs - nowMs;
        recorded.nextRetryInMs = Math.min(recorded.nextRetryInMs ?? Number.POSITIVE_INFINITY, inMs);
      }
    }

    const terminal = new Map<string, { done: number; bad: number }>();
    const countTerminal = (runId: string, bad: boolean) => {
      const counts = terminal.get(runId) ?? { done: 0, bad: 0 };
      counts.done += 1;
      if (bad) counts.bad += 1;
      terminal.set(runId, counts);
    };
    for (const row of applied.succeeded) countTerminal(row.runId, false);
    for (const row of applied.unsuccessful) countTerminal(row.runId, row.state !== TaskState.SKIPPED);

    // a task that failed for good takes its unfinished spawned subtree with it
    const stopped = await stopSubtrees(database, tx, applied.unsuccessful, nowMs, events, recorded.changes);
    recorded.stop.push(...stopped.stop);
    for (const task of stopped.skipped) countTerminal(task.runId, false);
    // what needs a task waits until it settles (its spawned subtree ended too); a skip can settle more
    const settledOk: string[] = [];
    const settledBad: string[] = [];
    let frontier = [...applied.succeeded, ...applied.unsuccessful, ...stopped.skipped].map((t) => t.id);
    while (frontier.length > 0) {
      const settled = await settle(database, tx, frontier);
      settledOk.push(...settled.ok);
      settledBad.push(...settled.bad);
      const skipped = await skipDescendants(database, tx, settled.bad, nowMs, events, recorded.changes);
      // a skipped task never counts against its run by itself: what caused the skip already does
      for (const task of skipped) countTerminal(task.runId, false);
      frontier = skipped.map((t) => t.id);
    }
    recorded.ready = await releaseDependents(
      database,
      tx,
      settledOk,
      settledBad,
      nowMs,
      events,
      recorded.changes,
    );

    recorded.finishedRuns = await updateRunCounters(database, tx, terminal, nowMs);
    await insertEvents(tx, events);
    await writeOutbox(database, tx, recorded.ready);
    return recorded;
  });
}

async function insertLogs(tx: Tx, logs: readonly LogChunk[]): Promise<void> {
  if (logs.length === 0) return;
  const column = <T>(pick: (chunk: LogChunk) => T) => sql.param(logs.map(pick));
  await tx.execute(sql`
    insert into log_chunks (run_id, task_id, attempt, stream, seq, at, data, dropped_bytes)
    select run_id, task_id, attempt, stream, seq, to_timestamp(at_ms / 1000.0), decode(data, 'base64'), dropped
    from unnest(${column((l) => l.runId)}::uuid[], ${column((l) => l.taskId)}::uuid[], ${column((l) => l.attempt)}::int[],
      ${column((l) => l.stream)}::smallint[], ${column((l) => l.seq)}::int[], ${column((l) => Number(l.atUnixMs))}::float8[],
      ${column((l) => Buffer.from(l.data.buffer, l.data.byteOffset, l.data.byteLength).toString("base64"))}::text[],
      ${column((l) => Number(l.droppedBytes))}::bigint[])
      as x(run_id, task_id, attempt, stream, seq, at_ms, data, dropped)
    on conflict (task_id, attempt, stream, seq) do nothing`);
}

interface LockedRow {
  id: string;
  run_id: string;
  name: string;
  state: number;
  attempt: number;
  max_attempts: number;
  lease_epoch: number;
  cancel_requested: boolean;
  host: string | null;
  exit_code: number | null;
  detail: string | null;
  retry_at_ms: number | null;
  started_at_ms: number | null;
  finished_at_ms: number | null;
  spec: Uint8Array | null;
}

const ms = (column: string) => sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);

async function lockTasks(
  database: Database,
  tx: Tx,
  ids: string[],
  withSpec: string[],
): Promise<Map<string, TaskRow>> {
  const locked = await database.rows<LockedRow>(
    sql`select id, run_id, name, state, attempt, max_attempts, lease_epoch, cancel_requested, host,
               exit_code, detail, ${ms("retry_at")} as retry_at_ms, ${ms("started_at")} as started_at_ms,
               ${ms("finished_at")} as finished_at_ms,
               case when id = any(${sql.param(withSpec)}::uuid[]) then spec end as spec
        from tasks where id = any(${sql.param(ids)}::uuid[]) order by id for update`,
    tx,
  );
  return new Map(
    locked.map((r) => [
      r.id,
      {
        id: r.id,
        runId: r.run_id,
        name: r.name,
        state: r.state,
        attempt: r.attempt,
        maxAttempts: r.max_attempts,
        leaseEpoch: Number(r.lease_epoch),
        cancelRequested: r.cancel_requested,
        host: r.host,
        exitCode: r.exit_code,
        detail: r.detail,
        retryAtMs: r.retry_at_ms,
        startedAtMs: r.started_at_ms,
        finishedAtMs: r.finished_at_ms,
        retryPolicy: () => {
          if (!r.spec) throw new Error(`task ${r.id}: its retry policy was not loaded`);
          return fromBinary(TaskSpecSchema, r.spec).retry;
        },
      } satisfies TaskRow,
    ]),
  );
}

async function updateTasks(tx: Tx, changed: ReadonlySet<TaskRow>): Promise<void> {
  if (changed.size === 0) return;
  const rows = [...changed].map((r) => ({
    id: r.id,
    state: r.state,
    attempt: r.attempt,
    lease_epoch: r.leaseEpoch,
    host: r.host,
    exit_code: r.exitCode,
    detail: r.detail,
    retry_at: toIso(r.retryAtMs),
    started_at: toIso(r.startedAtMs),
    finished_at: toIso(r.finishedAtMs),
    output: r.output && !r.output.stored ? Buffer.from(r.output.data).toString("base64") : null,
    output_stored: r.output?.stored === true,
    output_content_type: r.output?.contentType ?? null,
  }));
  await tx.execute(sql`
    update tasks t set state = u.state, attempt = u.attempt, lease_epoch = u.lease_epoch, host = u.host,
      updated_at = now(), exit_code = u.exit_code, detail = u.detail, retry_at = u.retry_at,
      started_at = u.started_at, finished_at = u.finished_at,
      output = case when u.output_stored
        then (select o.data from task_outputs o
              where o.task_id = t.id and o.attempt = u.attempt and o.lease_epoch = u.lease_epoch)
        else coalesce(decode(u.output, 'base64'), t.output) end,
      output_content_type = coalesce(u.output_content_type, t.output_content_type)
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as u(id uuid, state smallint, attempt int,
      lease_epoch bigint, host text, exit_code int, detail text, retry_at timestamptz, started_at timestamptz,
      finished_at timestamptz, output text, output_stored boolean, output_content_type text)
    where t.id = u.id`);
  const stored = rows.filter((r) => r.output_stored).map((r) => r.id);
  if (stored.length > 0) {
    // applied: the staged copies (this attempt's and any fenced-out one's) are not needed any more
    await tx.execute(sql`delete from task_outputs where task_id = any(${sql.param(stored)}::uuid[])`);
  }
}

/**
 * Counts ended tasks against their dependents: a success satisfies every
 * edge, any other end only ordering-only (`after`) edges. Dependents with no
 * unmet dependency left become PENDING.
 */
async function releaseDependents(
  database: Database,
  tx: Tx,
  succeeded: readonly string[],
  endedOtherwise: readonly string[],
  nowMs: number,
  events: AuditRow[],
  changes: TaskChange[],
): Promise<ReadyWork[]> {
  if (succeeded.length === 0 && endedOtherwise.length === 0) return [];
  const released = await database.rows<{ id: string; run_id: string; pool: string; spec: Uint8Array }>(
    sql`with succeeded(id) as (select unnest(${sql.param([...succeeded])}::uuid[])),
        ended(id) as (select unnest(${sql.param([...endedOtherwise])}::uuid[])),
        satisfied as (
          select e.child_id from task_edges e join succeeded s on e.parent_id = s.id
          union all
          select e.child_id from task_edges e join ended d on e.parent_id = d.id where e.kind = 'after'),
        counted as (select child_id, count(*)::int as n from satisfied group by child_id),
        updated as (
          update tasks t set
            pending_deps = t.pending_deps - c.n,
            state = case when t.state = ${TaskState.CREATED} and t.pending_deps = c.n then ${TaskState.PENDING} else t.state end,
            attempt = case when t.state = ${TaskState.CREATED} and t.pending_deps = c.n then 1 else t.attempt end,
            dispatch = case when t.state = ${TaskState.CREATED} and t.pending_deps = c.n then 1 else t.dispatch end,
            updated_at = now()
          from counted c where t.id = c.child_id
          returning t.id, t.run_id, t.pool, t.spec, t.state, t.attempt, t.pending_deps)
        select id, run_id, pool, spec from updated
        where state = ${TaskState.PENDING} and pending_deps = 0 and attempt = 1`,
    tx,
  );
  return released.map((r) => {
    events.push(pendingEvent(r.run_id, r.id, nowMs));
    changes.push(simpleChange(r.id, r.run_id, TaskState.PENDING, 1, null, nowMs));
    return {
      pool: r.pool,
      item: create(WorkItemSchema, {
        taskId: r.id,
        runId: r.run_id,
        attempt: 1,
        dispatch: 1,
        spec: fromBinary(TaskSpecSchema, r.spec),
      }),
    };
  });
}

/** Every not-yet-started descendant of a task that did not succeed is SKIPPED, naming the cause. */
async function skipDescendants(
  database: Database,
  tx: Tx,
  unsuccessful: readonly string[],
  nowMs: number,
  events: AuditRow[],
  changes: TaskChange[],
): Promise<{ id: string; runId: string }[]> {
  if (unsuccessful.length === 0) return [];
  // only `requires` edges carry a failure downstream; `after` edges just wait for the end
  const skipped = await database.rows<{ id: string; run_id: string; detail: string }>(
    sql`with recursive down(id, cause) as (
          select child_id, parent_id from task_edges
          where parent_id = any(${sql.param([...unsuccessful])}::uuid[]) and kind = 'requires'
          union
          select e.child_id, d.cause from task_edges e join down d on e.parent_id = d.id where e.kind = 'requires'),
        first_cause as (select distinct on (id) id, cause from down order by id, cause)
        update tasks t set state = ${TaskState.SKIPPED}, finished_at = ${toIso(nowMs)}::timestamptz, updated_at = now(),
          detail = 'upstream task ' || c.name || case when c.state = ${TaskState.SUCCEEDED}
            then ' succeeded, but a task it spawned did not' else ' ended ' || s.name end
        from first_cause f join tasks c on c.id = f.cause join task_states s on s.id = c.state
        where t.id = f.id and t.state = ${TaskState.CREATED}
        returning t.id, t.run_id, t.detail`,
    tx,
  );
  return skipped.map((r) => {
    events.push(
      hubEvent({
        runId: r.run_id,
        taskId: r.id,
        attempt: 0,
        from: TaskState.CREATED,
        to: TaskState.SKIPPED,
        atMs: nowMs,
        detail: r.detail,
      }),
    );
    changes.push(simpleChange(r.id, r.run_id, TaskState.SKIPPED, 0, r.detail, nowMs));
    return { id: r.id, runId: r.run_id };
  });
}

async function updateRunCounters(
  database: Database,
  tx: Tx,
  terminal: ReadonlyMap<string, { done: number; bad: number }>,
  nowMs: number,
): Promise<RunFinished[]> {
  if (terminal.size === 0) return [];
  const deltas = [...terminal].map(([run_id, c]) => ({ run_id, done: c.done, bad: c.bad }));
  return finishRuns(database, tx, deltas, nowMs);
}

/** Applies terminal-task counts to runs; a run whose last task ended gets its final state. */
export async function finishRuns(
  database: Database,
  tx: Pick<Db, "execute">,
  deltas: { run_id: string; done: number; bad: number }[],
  nowMs: number,
): Promise<RunFinished[]> {
  const rows = await database.rows<{ id: string; state: number; remaining_tasks: number }>(
    sql`update runs r set
          remaining_tasks = r.remaining_tasks - d.done,
          unsuccessful_tasks = r.unsuccessful_tasks + d.bad,
          state = case
            when r.remaining_tasks - d.done > 0 or r.state <> ${RunState.RUNNING} then r.state
            when r.cancel_requested then ${RunState.CANCELLED}
            when r.unsuccessful_tasks + d.bad > 0 then ${RunState.FAILED}
            else ${RunState.SUCCEEDED} end,
          finished_at = case when r.remaining_tasks - d.done = 0 then ${toIso(nowMs)}::timestamptz else r.finished_at end
        from jsonb_to_recordset(${JSON.stringify(deltas)}::jsonb) as d(run_id uuid, done int, bad int)
        where r.id = d.run_id
        returning r.id, r.state, r.remaining_tasks`,
    tx,
  );
  return rows.filter((r) => r.remaining_tasks === 0).map((r) => ({ runId: r.id, state: r.state }));
}

/**
 * Audit rows as parallel arrays (`unnest`), one parameter per column: about
 * half the bytes of a JSON row set, and nothing for Postgres to parse but
 * array literals.
 */
export async function insertEvents(tx: Pick<Db, "execute">, events: readonly AuditRow[]): Promise<void> {
  for (const chunk of chunked(events, 1, 5_000)) {
    const column = <T>(pick: (event: AuditRow) => T) => sql.param(chunk.map(pick));
    await tx.execute(sql`
      insert into task_events (run_id, task_id, attempt, from_state, to_state, at, host, lease_epoch, exit_code,
        detail, rejected)
      select run_id, task_id, attempt, from_state, to_state, to_timestamp(at_ms / 1000.0), host, lease_epoch,
        exit_code, detail, rejected <> 0
      from unnest(${column((e) => e.runId)}::uuid[], ${column((e) => e.taskId)}::uuid[],
        ${column((e) => e.attempt)}::int[], ${column((e) => e.from)}::smallint[], ${column((e) => e.to)}::smallint[],
        ${column((e) => e.atMs)}::float8[], ${column((e) => e.host)}::text[], ${column((e) => e.leaseEpoch)}::bigint[],
        ${column((e) => e.exitCode)}::int[], ${column((e) => e.detail)}::text[],
        ${column((e) => (e.rejected ? 1 : 0))}::smallint[])
        as e(run_id, task_id, attempt, from_state, to_state, at_ms, host, lease_epoch, exit_code, detail, rejected)`);
  }
}

/** An audit row of a change the hub made itself: no host, lease or exit code. */
export const hubEvent = (
  event: Pick<AuditRow, "runId" | "taskId" | "attempt" | "from" | "to" | "atMs" | "detail">,
): AuditRow => ({
  ...event,
  host: "",
  leaseEpoch: 0,
  exitCode: null,
  rejected: false,
});

export const pendingEvent = (
  runId: string,
  taskId: string,
  atMs: number,
  attempt = 1,
  from = TaskState.CREATED,
  detail = "",
): AuditRow => hubEvent({ runId, taskId, attempt, from, to: TaskState.PENDING, atMs, detail });

export function changeOf(row: TaskRow): TaskChange {
  return {
    taskId: row.id,
    runId: row.runId,
    state: row.state,
    attempt: row.attempt,
    host: row.host,
    exitCode: row.exitCode,
    detail: row.detail,
    startedAtMs: row.startedAtMs,
    finishedAtMs: row.finishedAtMs,
    retryAtMs: row.retryAtMs,
  };
}

export function simpleChange(
  taskId: string,
  runId: string,
  state: TaskState,
  attempt: number,
  detail: string | null,
  nowMs: number,
): TaskChange {
  const terminal = state === TaskState.SKIPPED || state === TaskState.CANCELLED;
  return {
    taskId,
    runId,
    state,
    attempt,
    host: null,
    exitCode: null,
    detail,
    startedAtMs: null,
    finishedAtMs: terminal ? nowMs : null,
    retryAtMs: null,
  };
}
