import { sql } from "drizzle-orm";
import { isTerminal, TaskState } from "../../../core/states.js";
import type { AuditRow, StopRequest } from "../../apply-transitions.js";
import { toIso } from "../chunked.js";
import type { Database, Tx } from "../database.js";
import { hubEvent, simpleChange } from "./record-events.js";
import type { TaskChange } from "./task-change.js";

/*
 * Dynamic subtasks: a task that spawned children has ended only once its
 * whole subtree has. "Settled" is that moment: the task is terminal and has
 * no open children. What needs a task is released when it settles, and it
 * counts as a success only if it and every spawned descendant succeeded.
 */

export interface Settled {
  ok: string[];
  bad: string[];
}

/**
 * Settles the given tasks, that just became terminal, unless they still have
 * open children; each settled task closes one child of its parent, and a
 * terminal parent whose last child closed settles in turn, up to the root.
 */
export async function settle(database: Database, tx: Tx, ended: readonly string[]): Promise<Settled> {
  const settled: Settled = { ok: [], bad: [] };
  if (ended.length === 0) return settled;
  let rows = await database.rows<{ id: string; parent_id: string | null; ok: boolean }>(
    sql`select id, parent_id, state = ${TaskState.SUCCEEDED} and not subtree_failed as ok from tasks
        where id = any(${sql.param([...ended])}::uuid[]) and open_children = 0`,
    tx,
  );
  while (rows.length > 0) {
    const closing = new Map<string, { n: number; bad: boolean }>();
    for (const row of rows) {
      (row.ok ? settled.ok : settled.bad).push(row.id);
      if (!row.parent_id) continue;
      const parent = closing.get(row.parent_id) ?? { n: 0, bad: false };
      parent.n += 1;
      parent.bad ||= !row.ok;
      closing.set(row.parent_id, parent);
    }
    if (closing.size === 0) break;
    const deltas = [...closing].map(([id, c]) => ({ id, n: c.n, bad: c.bad }));
    rows = await database
      .rows(
        sql`update tasks t set open_children = t.open_children - d.n, subtree_failed = t.subtree_failed or d.bad
          from jsonb_to_recordset(${JSON.stringify(deltas)}::jsonb) as d(id uuid, n int, bad boolean)
          where t.id = d.id
          returning t.id, t.parent_id, (t.state = ${TaskState.SUCCEEDED} and not t.subtree_failed) as ok,
            t.open_children, t.state`,
        tx,
      )
      .then((parents) =>
        (
          parents as {
            id: string;
            parent_id: string | null;
            ok: boolean;
            open_children: number;
            state: number;
          }[]
        ).filter((p) => p.open_children === 0 && isTerminal(p.state)),
      );
  }
  return settled;
}

export interface StoppedSubtree {
  /** Not started yet: now SKIPPED (terminal). */
  skipped: { id: string; runId: string }[];
  /** Running: asked to stop. */
  stop: StopRequest[];
}

/**
 * A task that ended unsuccessfully for good takes its unfinished spawned
 * subtree with it: what has not started is SKIPPED, what runs is stopped.
 */
export async function stopSubtrees(
  database: Database,
  tx: Tx,
  failedParents: readonly { id: string; name: string; state: number }[],
  nowMs: number,
  events: AuditRow[],
  changes: TaskChange[],
): Promise<StoppedSubtree> {
  if (failedParents.length === 0) return { skipped: [], stop: [] };
  const open = await database.rows<{
    id: string;
    run_id: string;
    state: number;
    attempt: number;
    lease_epoch: number;
    cause: string;
  }>(
    sql`with recursive down(id, cause) as (
          select id, parent_id from tasks where parent_id = any(${sql.param(failedParents.map((p) => p.id))}::uuid[])
          union all
          select t.id, d.cause from tasks t join down d on t.parent_id = d.id)
        select t.id, t.run_id, t.state, t.attempt, t.lease_epoch, d.cause from down d join tasks t on t.id = d.id
        where t.state in (${TaskState.CREATED}, ${TaskState.PENDING}, ${TaskState.RETRYING}, ${TaskState.RUNNING})
        order by t.id for update of t`,
    tx,
  );
  if (open.length === 0) return { skipped: [], stop: [] };
  const causes = new Map(failedParents.map((p) => [p.id, p]));
  const detailOf = (cause: string) => {
    const parent = causes.get(cause);
    return parent ? `parent task ${parent.name} ended ${TaskState[parent.state]}` : "its parent task ended";
  };
  const waiting = open.filter((t) => t.state !== TaskState.RUNNING);
  const running = open.filter((t) => t.state === TaskState.RUNNING);
  if (waiting.length > 0) {
    const rows = waiting.map((t) => ({ id: t.id, detail: detailOf(t.cause) }));
    await tx.execute(sql`
      update tasks t set state = ${TaskState.SKIPPED}, detail = u.detail, retry_at = null, updated_at = now(),
        finished_at = ${toIso(nowMs)}::timestamptz
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as u(id uuid, detail text) where t.id = u.id`);
  }
  if (running.length > 0) {
    await tx.execute(
      sql`update tasks set cancel_requested = true where id = any(${sql.param(running.map((t) => t.id))}::uuid[])`,
    );
  }
  for (const task of waiting) {
    const detail = detailOf(task.cause);
    events.push(
      hubEvent({
        runId: task.run_id,
        taskId: task.id,
        attempt: task.attempt,
        from: task.state,
        to: TaskState.SKIPPED,
        atMs: nowMs,
        detail,
      }),
    );
    changes.push(simpleChange(task.id, task.run_id, TaskState.SKIPPED, task.attempt, detail, nowMs));
  }
  return {
    skipped: waiting.map((t) => ({ id: t.id, runId: t.run_id })),
    stop: running.map((t) => ({
      taskId: t.id,
      runId: t.run_id,
      attempt: t.attempt,
      leaseEpoch: Number(t.lease_epoch),
      reason: detailOf(t.cause),
    })),
  };
}
