import { sql } from "drizzle-orm";
import { RunState, TaskState } from "../../../core/states.js";
import type { Database } from "../database.js";

/**
 * Closes runs left unfinished by a process that died (embedded mode: the
 * whole engine lived in it, so nothing else will finish them). Every task
 * that had not ended is CANCELLED with `reason`, so the record says why.
 * Returns how many runs were closed.
 */
export async function abandonUnfinishedRuns(
  database: Database,
  reason: string,
  nowMs = Date.now(),
): Promise<number> {
  return database.transaction(async (tx) => {
    const at = new Date(nowMs).toISOString();
    const runs = await database.rows<{ id: string }>(
      sql`update runs set state = ${RunState.CANCELLED}, remaining_tasks = 0, finished_at = ${at}::timestamptz,
            unsuccessful_tasks = unsuccessful_tasks + remaining_tasks
          where state = ${RunState.RUNNING} returning id`,
      tx,
    );
    if (runs.length === 0) return 0;
    const ids = sql.param(runs.map((r) => r.id));
    await tx.execute(
      sql`with open_tasks as (
            select id, state, attempt, run_id from tasks
            where run_id = any(${ids}::uuid[]) and state in (${TaskState.CREATED}, ${TaskState.PENDING},
              ${TaskState.RUNNING}, ${TaskState.RETRYING})
            for update),
          cancelled as (
            update tasks t set state = ${TaskState.CANCELLED}, detail = ${reason}, retry_at = null, updated_at = ${at}::timestamptz,
              finished_at = ${at}::timestamptz
            from open_tasks o where t.id = o.id
            returning o.id, o.run_id, o.state as from_state, o.attempt)
          insert into task_events (run_id, task_id, attempt, from_state, to_state, at, detail)
          select run_id, id, attempt, from_state, ${TaskState.CANCELLED}, ${at}::timestamptz, ${reason} from cancelled`,
    );
    await tx.execute(
      sql`delete from outbox where task_id in (select id from tasks where run_id = any(${ids}::uuid[]))`,
    );
    return runs.length;
  });
}
