import { type SQL, sql } from "drizzle-orm";
import { TaskframeError, TaskframeErrorCode } from "../../../core/errors.js";
import { EvaluationOutcome, FireOutcome } from "../../../core/gen/taskframe/v1/schedule_pb.js";
import { TERMINAL_STATES_SQL } from "../../../core/states.js";
import type { Database, Tx } from "../database.js";

/*
 * The schedules' rows. Firing (hub/schedules/scheduler.ts) happens in a
 * transaction that holds the schedule's row lock; everything it writes goes
 * through the functions taking a `tx`.
 */

/** Slots are whole milliseconds; read back rounded, so that they compare equal to what was written. */
const ms = (column: string) => sql.raw(`round(extract(epoch from ${column}) * 1000)::float8`);
const at = (unixMs: number | undefined) =>
  unixMs === undefined ? sql`null` : sql`to_timestamp(${unixMs / 1000}::float8)`;

export interface ScheduleRow {
  name: string;
  spec: Uint8Array;
  kind: "cron" | "condition";
  paused: boolean;
  paused_reason: string;
  next_slot_ms: number | null;
  next_due_ms: number | null;
  last_run_id: string | null;
  queued: number;
  condition_held: boolean;
  created_at_ms: number;
  updated_at_ms: number;
  /** The last run a slot started has not finished. */
  previous_running: boolean;
  tenant: string;
}

const scheduleColumns = sql`s.name, s.spec, s.kind, s.paused, s.paused_reason,
  ${ms("s.next_slot")} as next_slot_ms, ${ms("s.next_due_at")} as next_due_ms, s.last_run_id, s.queued,
  s.condition_held, ${ms("s.created_at")} as created_at_ms, ${ms("s.updated_at")} as updated_at_ms,
  exists (select 1 from runs r where r.id = s.last_run_id and r.finished_at is null) as previous_running,
  s.tenant`;

/** The tenant of a schedule, as SQL (the runs it starts belong to it). */
export const tenantOf = (name: string): SQL =>
  sql`coalesce((select tenant from schedules where name = ${name}), 'default')`;

export function notFound(name: string): TaskframeError {
  return new TaskframeError(
    TaskframeErrorCode.NotFound,
    `no schedule named ${JSON.stringify(name)} (task schedule ls lists them)`,
  );
}

/** By name; `tenants`: only those of these tenants (undefined: every one). */
export async function readSchedules(
  database: Database,
  names?: readonly string[],
  executor?: Tx,
  lock = false,
  tenants?: readonly string[],
): Promise<ScheduleRow[]> {
  const conditions = [
    names ? sql`s.name = any(${sql.param([...names])}::text[])` : undefined,
    tenants ? sql`s.tenant = any(${sql.param([...tenants])}::text[])` : undefined,
  ].filter((c) => c !== undefined);
  const filter = conditions.length > 0 ? sql`where ${sql.join(conditions, sql` and `)}` : sql``;
  return database.rows<ScheduleRow>(
    sql`select ${scheduleColumns} from schedules s ${filter} order by s.name ${lock ? sql`for update of s` : sql``}`,
    executor,
  );
}

/**
 * Schedules with something to do at `nowMs`, locked for this transaction
 * (but those in `exclude`, done earlier in the pass); those another hub holds
 * are skipped. Something to do: a slot is due, a
 * queued slot can start (its previous run finished), or a condition
 * evaluation has ended.
 */
export function lockSchedulesWithWork(
  database: Database,
  tx: Tx,
  nowMs: number,
  limit: number,
  exclude: readonly string[] = [],
) {
  const excluded =
    exclude.length > 0 ? sql`and not (s.name = any(${sql.param([...exclude])}::text[]))` : sql``;
  return database.rows<ScheduleRow>(
    sql`select ${scheduleColumns} from schedules s
        where not s.paused ${excluded} and (
          s.next_due_at <= ${at(nowMs)}
          or (s.queued > 0 and not exists (
                select 1 from runs r where r.id = s.last_run_id and r.finished_at is null))
          or (s.kind = 'condition' and exists (
                select 1 from condition_evaluations e join tasks t on t.id = e.task_id
                where e.schedule = s.name and e.outcome = ${EvaluationOutcome.PENDING}
                  and t.state in (${sql.raw(TERMINAL_STATES_SQL)}))))
        order by s.next_due_at nulls last
        limit ${limit}
        for update of s skip locked`,
    tx,
  );
}

/** When the earliest unpaused slot is due, if any. */
export async function nextDueMs(database: Database): Promise<number | undefined> {
  const [row] = await database.rows<{ due: number | null }>(
    sql`select ${ms("min(next_due_at)")} as due from schedules where not paused`,
  );
  return row?.due ?? undefined;
}

export interface ScheduleUpdate {
  nextSlotMs?: number | undefined;
  nextDueMs?: number | undefined;
  lastRunId?: string;
  queued?: number;
  conditionHeld?: boolean;
  paused?: { paused: boolean; reason: string };
  spec?: { bytes: Uint8Array; kind: string };
}

export async function updateSchedule(database: Database, tx: Tx, name: string, update: ScheduleUpdate) {
  const sets: SQL[] = [sql`updated_at = now()`];
  if ("nextSlotMs" in update) sets.push(sql`next_slot = ${at(update.nextSlotMs)}`);
  if ("nextDueMs" in update) sets.push(sql`next_due_at = ${at(update.nextDueMs)}`);
  if (update.lastRunId !== undefined) sets.push(sql`last_run_id = ${update.lastRunId}::uuid`);
  if (update.queued !== undefined) sets.push(sql`queued = ${update.queued}`);
  if (update.conditionHeld !== undefined) sets.push(sql`condition_held = ${update.conditionHeld}`);
  if (update.paused)
    sets.push(sql`paused = ${update.paused.paused}, paused_reason = ${update.paused.reason}`);
  if (update.spec) sets.push(sql`spec = ${update.spec.bytes}, kind = ${update.spec.kind}`);
  await database.rows(sql`update schedules set ${sql.join(sets, sql`, `)} where name = ${name}`, tx);
}

export async function insertSchedule(
  database: Database,
  tx: Tx,
  row: {
    name: string;
    bytes: Uint8Array;
    kind: string;
    nextSlotMs?: number;
    nextDueMs?: number;
    tenant?: string;
  },
) {
  await database.rows(
    sql`insert into schedules (name, spec, kind, next_slot, next_due_at, tenant)
        values (${row.name}, ${row.bytes}, ${row.kind}, ${at(row.nextSlotMs)}, ${at(row.nextDueMs)},
                ${row.tenant ?? "default"})`,
    tx,
  );
}

export async function deleteSchedule(database: Database, name: string): Promise<void> {
  const deleted = await database.rows<{ name: string }>(
    sql`delete from schedules where name = ${name} returning name`,
  );
  if (deleted.length === 0) throw notFound(name);
}

/** Records a slot; false if it was recorded before (by this hub or another): it must not fire again. */
export async function insertFire(
  database: Database,
  tx: Tx,
  fire: {
    schedule: string;
    slotMs: number;
    outcome: FireOutcome;
    cause: number;
    runId?: string;
    detail: string;
  },
): Promise<boolean> {
  const rows = await database.rows<{ slot: unknown }>(
    sql`insert into schedule_fires (schedule, slot, outcome, cause, run_id, detail)
        values (${fire.schedule}, ${at(fire.slotMs)}, ${fire.outcome}, ${fire.cause},
          ${fire.runId ?? null}::uuid, ${fire.detail})
        on conflict (schedule, slot) do nothing returning slot`,
    tx,
  );
  return rows.length > 0;
}

/** Gives a recorded slot its run (a queued slot that starts, a slot whose run was written after it). */
export async function startedFire(
  database: Database,
  tx: Tx,
  schedule: string,
  slotMs: number,
  runId: string,
  detail?: string,
) {
  await database.rows(
    sql`update schedule_fires set run_id = ${runId}::uuid, outcome = ${FireOutcome.STARTED}
          ${detail === undefined ? sql`` : sql`, detail = ${detail}`}
        where schedule = ${schedule} and slot = ${at(slotMs)}`,
    tx,
  );
}

export async function oldestQueuedSlot(
  database: Database,
  tx: Tx,
  schedule: string,
): Promise<number | undefined> {
  const [row] = await database.rows<{ slot_ms: number }>(
    sql`select ${ms("slot")} as slot_ms from schedule_fires
        where schedule = ${schedule} and run_id is null and outcome = ${FireOutcome.QUEUED}
        order by slot limit 1`,
    tx,
  );
  return row?.slot_ms;
}

export async function insertEvaluation(
  database: Database,
  tx: Tx,
  row: { schedule: string; slotMs: number; runId: string; taskId: string },
): Promise<boolean> {
  const rows = await database.rows<{ slot: unknown }>(
    sql`insert into condition_evaluations (schedule, slot, outcome, run_id, task_id)
        values (${row.schedule}, ${at(row.slotMs)}, ${EvaluationOutcome.PENDING}, ${row.runId}::uuid, ${row.taskId}::uuid)
        on conflict (schedule, slot) do nothing returning slot`,
    tx,
  );
  return rows.length > 0;
}

export async function hasPendingEvaluation(database: Database, tx: Tx, schedule: string): Promise<boolean> {
  const rows = await database.rows<{ one: number }>(
    sql`select 1 as one from condition_evaluations
        where schedule = ${schedule} and outcome = ${EvaluationOutcome.PENDING} limit 1`,
    tx,
  );
  return rows.length > 0;
}

export interface EndedEvaluation {
  slot_ms: number;
  task_state: number;
  exit_code: number | null;
  host: string | null;
  started_at_ms: number | null;
  finished_at_ms: number | null;
  detail: string | null;
}

/** A schedule's pending evaluations whose task has ended, oldest first. */
export function endedEvaluations(database: Database, tx: Tx, schedule: string) {
  return database.rows<EndedEvaluation>(
    sql`select ${ms("e.slot")} as slot_ms, t.state as task_state, t.exit_code, t.host,
          ${ms("t.started_at")} as started_at_ms, ${ms("t.finished_at")} as finished_at_ms, t.detail
        from condition_evaluations e join tasks t on t.id = e.task_id
        where e.schedule = ${schedule} and e.outcome = ${EvaluationOutcome.PENDING}
          and t.state in (${sql.raw(TERMINAL_STATES_SQL)})
        order by e.slot`,
    tx,
  );
}

export async function resolveEvaluation(
  database: Database,
  tx: Tx,
  schedule: string,
  slotMs: number,
  result: {
    outcome: EvaluationOutcome;
    exitCode: number | null;
    host: string;
    startedAtMs: number | null;
    durationMs: number;
    detail: string;
    fired: boolean;
  },
) {
  await database.rows(
    sql`update condition_evaluations set outcome = ${result.outcome}, exit_code = ${result.exitCode},
          host = ${result.host}, started_at = ${at(result.startedAtMs ?? undefined)},
          duration_ms = ${result.durationMs}, detail = ${result.detail}, fired = ${result.fired}
        where schedule = ${schedule} and slot = ${at(slotMs)}`,
    tx,
  );
}

export interface FireRow {
  slot_ms: number;
  fired_at_ms: number;
  outcome: number;
  cause: number;
  run_id: string | null;
  run_state: number | null;
  detail: string;
}

export interface EvaluationRow {
  slot_ms: number;
  outcome: number;
  host: string;
  exit_code: number | null;
  started_at_ms: number | null;
  duration_ms: number;
  run_id: string;
  task_id: string;
  detail: string;
  fired: boolean;
}

const fireColumns = sql`${ms("f.slot")} as slot_ms, ${ms("f.fired_at")} as fired_at_ms, f.outcome, f.cause,
  f.run_id, r.state as run_state, f.detail`;
const evaluationColumns = sql`${ms("e.slot")} as slot_ms, e.outcome, e.host, e.exit_code,
  ${ms("e.started_at")} as started_at_ms, e.duration_ms, e.run_id, e.task_id, e.detail, e.fired`;

/** A schedule's slots and evaluations, newest first. */
export async function scheduleHistory(database: Database, name: string, limit: number) {
  const [fires, evaluations] = await Promise.all([
    database.rows<FireRow>(
      sql`select ${fireColumns} from schedule_fires f left join runs r on r.id = f.run_id
          where f.schedule = ${name} order by f.slot desc limit ${limit}`,
    ),
    database.rows<EvaluationRow>(
      sql`select ${evaluationColumns} from condition_evaluations e
          where e.schedule = ${name} order by e.slot desc limit ${limit}`,
    ),
  ]);
  return { fires, evaluations };
}

/** Each schedule's latest slot, and latest finished evaluation. */
export async function latestOfSchedules(database: Database, names: readonly string[]) {
  if (names.length === 0)
    return { fires: new Map<string, FireRow>(), evaluations: new Map<string, EvaluationRow>() };
  const param = sql.param([...names]);
  const [fires, evaluations] = await Promise.all([
    database.rows<FireRow & { schedule: string }>(
      sql`select distinct on (f.schedule) f.schedule, ${fireColumns}
          from schedule_fires f left join runs r on r.id = f.run_id
          where f.schedule = any(${param}::text[]) order by f.schedule, f.slot desc`,
    ),
    database.rows<EvaluationRow & { schedule: string }>(
      sql`select distinct on (e.schedule) e.schedule, ${evaluationColumns} from condition_evaluations e
          where e.schedule = any(${param}::text[]) and e.outcome <> ${EvaluationOutcome.PENDING}
          order by e.schedule, e.slot desc`,
    ),
  ]);
  return {
    fires: new Map(fires.map((row) => [row.schedule, row])),
    evaluations: new Map(evaluations.map((row) => [row.schedule, row])),
  };
}
