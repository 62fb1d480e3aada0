import { sql } from "drizzle-orm";
import { EvaluationOutcome, FireOutcome } from "../../../core/gen/taskframe/v1/schedule_pb.js";
import type { Database } from "../database.js";

/**
 * Deletes up to `batch` runs that finished before `olderThanMs` ago, with
 * everything recorded about them: audit events, log chunks, stored outputs
 * and leftover outbox rows (by task), then the runs (their tasks and edges
 * go with them). One transaction per batch, so a large backlog is pruned in
 * short steps. Returns how many runs went.
 */
export async function pruneFinishedRuns(
  database: Database,
  olderThanMs: number,
  batch: number,
): Promise<number> {
  return database.transaction(async (tx) => {
    const runs = await database.rows<{ id: string }>(
      sql`select id from runs
          where finished_at is not null and finished_at < now() - make_interval(secs => ${olderThanMs / 1000})
          order by finished_at limit ${batch} for update skip locked`,
      tx,
    );
    if (runs.length === 0) return 0;
    const ids = sql.param(runs.map((r) => r.id));
    const tasks = sql`(select id from tasks where run_id = any(${ids}::uuid[]))`;
    await database.rows(sql`delete from task_events where task_id in ${tasks}`, tx);
    await database.rows(sql`delete from log_chunks where task_id in ${tasks}`, tx);
    await database.rows(sql`delete from task_outputs where task_id in ${tasks}`, tx);
    await database.rows(sql`delete from outbox where task_id in ${tasks}`, tx);
    await database.rows(sql`delete from runs where id = any(${ids}::uuid[])`, tx);
    return runs.length;
  });
}

/**
 * Deletes up to `batch` refused requests (auth_denials) older than
 * `olderThanMs`, oldest first; returns how many went. The refusal trail has
 * no run to go with, so it gets the runs' window of its own.
 */
export async function pruneAuthDenials(
  database: Database,
  olderThanMs: number,
  batch: number,
): Promise<number> {
  const deleted = await database.rows<{ id: number }>(
    sql`delete from auth_denials where id in (
          select id from auth_denials where at < now() - make_interval(secs => ${olderThanMs / 1000})
          order by at limit ${batch})
        returning id`,
  );
  return deleted.length;
}

/**
 * Deletes up to `batch` rows of schedules' history older than `olderThanMs`:
 * fired slots (a slot still queued behind a running run stays) and finished
 * condition evaluations. A schedule firing every second writes 86,400 of
 * them a day: this is its compaction. Returns how many went.
 */
export async function pruneScheduleHistory(
  database: Database,
  olderThanMs: number,
  batch: number,
): Promise<number> {
  const cutoff = sql`now() - make_interval(secs => ${olderThanMs / 1000})`;
  const fires = await database.rows<{ slot: unknown }>(
    sql`delete from schedule_fires where (schedule, slot) in (
          select schedule, slot from schedule_fires
          where fired_at < ${cutoff} and not (run_id is null and outcome = ${FireOutcome.QUEUED})
          order by fired_at limit ${batch})
        returning slot`,
  );
  const evaluations = await database.rows<{ slot: unknown }>(
    sql`delete from condition_evaluations where (schedule, slot) in (
          select schedule, slot from condition_evaluations
          where slot < ${cutoff} and outcome <> ${EvaluationOutcome.PENDING}
          order by slot limit ${batch})
        returning slot`,
  );
  return Math.max(fires.length, evaluations.length);
}
