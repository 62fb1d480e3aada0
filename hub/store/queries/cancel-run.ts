import { sql } from "drizzle-orm";
import { RunState, TaskState } from "../../../core/states.js";
import type { Database } from "../database.js";
import { finishRuns, insertEvents, simpleChange } from "./record-events.js";
import type { RunFinished, TaskChange } from "./task-change.js";

export interface CancelledRun {
  /** False when the run had already finished: nothing was changed. */
  cancelled: boolean;
  /** Tasks cancelled before they started. */
  changes: TaskChange[];
  /** Running tasks asked to stop; their sidecars report CANCELLED. */
  stopping: string[];
  finished: RunFinished[];
}

/** Cancels every task of a run that has not started, and asks running ones to stop. */
export async function cancelRun(
  database: Database,
  runId: string,
  reason: string,
  nowMs = Date.now(),
): Promise<CancelledRun> {
  return database.db.transaction(async (tx) => {
    const run = await database.rows<{ state: number }>(
      sql`select state from runs where id = ${runId} for update`,
      tx,
    );
    if (run[0]?.state !== RunState.RUNNING)
      return { cancelled: false, changes: [], stopping: [], finished: [] };
    await tx.execute(sql`update runs set state = ${RunState.CANCELLED} where id = ${runId}`);
    const detail = reason ? `cancelled: ${reason}` : "cancelled";
    const waiting = await database.rows<{ id: string; from_state: number; attempt: number }>(
      sql`with c as (
            select id, state from tasks where run_id = ${runId}
              and state in (${TaskState.CREATED}, ${TaskState.PENDING}, ${TaskState.RETRYING}) for update)
          update tasks t set state = ${TaskState.CANCELLED}, detail = ${detail}, retry_at = null,
            finished_at = ${new Date(nowMs).toISOString()}::timestamptz
          from c where t.id = c.id
          returning t.id, c.state as from_state, t.attempt`,
      tx,
    );
    const running = await database.rows<{ id: string }>(
      sql`update tasks set cancel_requested = true where run_id = ${runId} and state = ${TaskState.RUNNING} returning id`,
      tx,
    );
    await insertEvents(
      tx,
      waiting.map((t) => ({
        runId,
        taskId: t.id,
        attempt: t.attempt,
        from: t.from_state,
        to: TaskState.CANCELLED,
        atMs: nowMs,
        host: "",
        leaseEpoch: 0,
        exitCode: null,
        detail,
        rejected: false,
      })),
    );
    const finished =
      waiting.length > 0
        ? await finishRuns(
            database,
            tx,
            [{ run_id: runId, done: waiting.length, bad: waiting.length }],
            nowMs,
          )
        : [];
    return {
      cancelled: true,
      changes: waiting.map((t) => simpleChange(t.id, runId, TaskState.CANCELLED, t.attempt, detail, nowMs)),
      stopping: running.map((r) => r.id),
      finished,
    };
  });
}
