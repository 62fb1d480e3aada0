import { create, fromBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { WorkItemSchema } from "../../../core/gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { TaskState } from "../../../core/states.js";
import type { Database } from "../database.js";
import { writeOutbox } from "./insert-run.js";
import type { ReadyWork } from "./ready-work.js";
import { hubEvent, insertEvents } from "./record-events.js";

/** A dispatched task (PENDING or RUNNING) that has not changed state in a while. */
export interface DispatchedTask {
  id: string;
  runId: string;
  pool: string;
  handler: string | null;
  state: TaskState;
  attempt: number;
  dispatch: number;
}

/** The oldest dispatched tasks unchanged for `staleAfterMs`, oldest first. */
export async function staleDispatchedTasks(
  database: Database,
  staleAfterMs: number,
  limit: number,
): Promise<DispatchedTask[]> {
  const rows = await database.rows<{
    id: string;
    run_id: string;
    pool: string;
    handler: string | null;
    state: number;
    attempt: number;
    dispatch: number;
  }>(
    sql`select id, run_id, pool, handler, state, attempt, dispatch from tasks
        where state in (${TaskState.PENDING}, ${TaskState.RUNNING})
          and updated_at < now() - make_interval(secs => ${staleAfterMs / 1000})
        order by updated_at limit ${limit}`,
  );
  return rows.map((r) => ({
    id: r.id,
    runId: r.run_id,
    pool: r.pool,
    handler: r.handler,
    state: r.state,
    attempt: r.attempt,
    dispatch: r.dispatch,
  }));
}

/**
 * Publishes again the tasks whose work items the queue no longer holds, with
 * the next dispatch number (so that the new delivery's lease epoch is above
 * any of the lost one's). A task that moved meanwhile is left alone.
 */
export async function republishLost(
  database: Database,
  lost: readonly DispatchedTask[],
  nowMs = Date.now(),
): Promise<ReadyWork[]> {
  if (lost.length === 0) return [];
  return database.transaction(async (tx) => {
    const expected = JSON.stringify(
      lost.map((t) => ({ id: t.id, state: t.state, attempt: t.attempt, dispatch: t.dispatch })),
    );
    const republished = await database.rows<{
      id: string;
      run_id: string;
      state: number;
      attempt: number;
      dispatch: number;
      pool: string;
      spec: Uint8Array;
    }>(
      sql`update tasks t set dispatch = t.dispatch + 1, updated_at = now()
          from jsonb_to_recordset(${expected}::jsonb) as x(id uuid, state smallint, attempt int, dispatch int)
          where t.id = x.id and t.state = x.state and t.attempt = x.attempt and t.dispatch = x.dispatch
          returning t.id, t.run_id, t.state, t.attempt, t.dispatch, t.pool, t.spec`,
      tx,
    );
    const ready = republished.map((r) => ({
      pool: r.pool,
      item: create(WorkItemSchema, {
        taskId: r.id,
        runId: r.run_id,
        attempt: r.attempt,
        dispatch: r.dispatch,
        spec: fromBinary(TaskSpecSchema, r.spec),
      }),
    }));
    await insertEvents(
      tx,
      republished.map((r) =>
        hubEvent({
          runId: r.run_id,
          taskId: r.id,
          attempt: r.attempt,
          from: r.state,
          to: r.state,
          atMs: nowMs,
          detail: `published again (dispatch ${r.dispatch}): its work item was no longer in the queue`,
        }),
      ),
    );
    await writeOutbox(database, tx, ready);
    return ready;
  });
}

export interface TaskStateInfo {
  taskId: string;
  state: TaskState;
  attempt: number;
  leaseEpoch: number;
}

export async function taskStates(database: Database, ids: readonly string[]): Promise<TaskStateInfo[]> {
  if (ids.length === 0) return [];
  const rows = await database.rows<{ id: string; state: number; attempt: number; lease_epoch: number }>(
    sql`select id, state, attempt, lease_epoch from tasks where id = any(${sql.param([...ids])}::uuid[])`,
  );
  return rows.map((r) => ({
    taskId: r.id,
    state: r.state,
    attempt: r.attempt,
    leaseEpoch: Number(r.lease_epoch),
  }));
}
