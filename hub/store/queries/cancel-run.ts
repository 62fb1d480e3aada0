import { sql } from "drizzle-orm";
import { RunState, TaskState } from "../../../core/states.js";
import type { Database } from "../database.js";
import { finishRuns, hubEvent, insertEvents, simpleChange } from "./record-events.js";
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

/**
 * Cancels every task of a run that has not started, and asks running ones to
 * stop. The run stays RUNNING until those have ended, then ends CANCELLED.
 */
export async function cancelRun(
  database: Database,
  runId: string,
  reason: string,
  nowMs = Date.now(),
): Promise<CancelledRun> {
  return database.transaction(async (tx) => {
    const run = await database.rows<{ state: number }>(sql`select state from runs where id = ${runId}`, tx);
    if (run[0]?.state !== RunState.RUNNING)
      return { cancelled: false, changes: [], stopping: [], finished: [] };
    const detail = reason ? `cancelled: ${reason}` : "cancelled";
    // Task rows are locked in id order, as the recorder locks them, then the run row: one order, fewer deadlocks.
    const open = await database.rows<{ id: string; state: number; attempt: number }>(
      sql`select id, state, attempt from tasks where run_id = ${runId}
            and state in (${TaskState.CREATED}, ${TaskState.PENDING}, ${TaskState.RETRYING}, ${TaskState.RUNNING})
          order by id for update`,
      tx,
    );
    const waiting = open.filter((t) => t.state !== TaskState.RUNNING);
    const running = open.filter((t) => t.state === TaskState.RUNNING);
    await tx.execute(
      sql`update tasks set state = ${TaskState.CANCELLED}, detail = ${detail}, retry_at = null, updated_at = now(),
            finished_at = ${new Date(nowMs).toISOString()}::timestamptz
          where id = any(${sql.param(waiting.map((t) => t.id))}::uuid[])`,
    );
    await tx.execute(
      sql`update tasks set cancel_requested = true where id = any(${sql.param(running.map((t) => t.id))}::uuid[])`,
    );
    await tx.execute(sql`update runs set cancel_requested = true where id = ${runId}`);
    await insertEvents(
      tx,
      waiting.map((t) =>
        hubEvent({
          runId,
          taskId: t.id,
          attempt: t.attempt,
          from: t.state,
          to: TaskState.CANCELLED,
          atMs: nowMs,
          detail,
        }),
      ),
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
