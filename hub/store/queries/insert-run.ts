import { create, toBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { v4 as uuidv4, v7 as uuidv7 } from "uuid";
import { encodedWorkItem } from "../../../core/encoded-work-item.js";
import { WorkItemSchema } from "../../../core/gen/taskframe/v1/messages_pb.js";
import { type RunSpec, TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../../../core/states.js";
import { DEFAULT_POOL } from "../../../core/work-queue.js";
import { maxAttemptsOf } from "../../retry-delay.js";
import type { Database, Db } from "../database.js";
import type { ReadyWork } from "./ready-work.js";

export interface InsertedRun {
  runId: string;
  existing: boolean;
  /** Root tasks, ready now (also written to the outbox). */
  ready: ReadyWork[];
}

/** Rows per statement: arrays travel as one parameter each, so this only bounds a statement's size. */
const ROWS_PER_STATEMENT = 10_000;

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

function* slices<T>(rows: readonly T[]): Generator<T[]> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) yield rows.slice(i, i + ROWS_PER_STATEMENT);
}

/**
 * Writes a validated run in one transaction: the run, its tasks (roots
 * PENDING, the rest CREATED with a count of unmet dependencies), the edges,
 * the audit events, and an outbox row per root. Rows go in as parallel
 * arrays (`unnest`), a statement per table per 10,000 rows: building
 * multi-row VALUES lists cost more than the database's work.
 */
export async function insertRun(
  database: Database,
  spec: RunSpec,
  idempotencyKey: string,
): Promise<InsertedRun> {
  return database.transaction(async (tx) => {
    if (idempotencyKey) {
      const existing = await database.rows<{ id: string }>(
        sql`select id from runs where idempotency_key = ${idempotencyKey}`,
        tx,
      );
      if (existing[0]) return { runId: existing[0].id, existing: true, ready: [] };
    }
    const runId = uuidv4();
    const now = new Date().toISOString();
    const idsByName = new Map(spec.tasks.map((t) => [t.name, uuidv7()] as const));
    const tasks: {
      id: string;
      name: string;
      root: boolean;
      maxAttempts: number;
      deps: number;
      pool: string;
      handler: string | null;
      spec: string;
    }[] = [];
    const edges: { parent: string; child: string; kind: "requires" | "after" }[] = [];
    const ready: ReadyWork[] = [];

    for (const task of spec.tasks) {
      const id = idsByName.get(task.name)!;
      const needs = [...new Set(task.needs)];
      // a task named both ways is required: the stronger edge wins
      const after = [...new Set(task.after)].filter((name) => !needs.includes(name));
      const pool = task.pool || DEFAULT_POOL;
      tasks.push({
        id,
        name: task.name,
        root: needs.length + after.length === 0,
        maxAttempts: maxAttemptsOf(task.retry),
        deps: needs.length + after.length,
        pool,
        handler: task.target.case === "handler" ? task.target.value.handler : null,
        spec: base64(toBinary(TaskSpecSchema, task)),
      });
      for (const need of needs) edges.push({ parent: idsByName.get(need)!, child: id, kind: "requires" });
      for (const name of after) edges.push({ parent: idsByName.get(name)!, child: id, kind: "after" });
      if (needs.length + after.length === 0) {
        ready.push({
          pool,
          item: create(WorkItemSchema, { taskId: id, runId, attempt: 1, dispatch: 1, spec: task }),
        });
      }
    }

    await tx.execute(sql`
      insert into runs (id, name, state, source, labels, idempotency_key, total_tasks, remaining_tasks, created_at)
      values (${runId}, ${spec.name}, ${RunState.RUNNING}, ${spec.source}, ${JSON.stringify({ ...spec.labels })}::jsonb,
        ${idempotencyKey || null}, ${spec.tasks.length}, ${spec.tasks.length}, ${now}::timestamptz)`);
    for (const slice of slices(tasks)) {
      await tx.execute(sql`
        insert into tasks (id, run_id, name, state, attempt, dispatch, max_attempts, pending_deps, pool, handler, spec,
          created_at, updated_at)
        select id, ${runId}::uuid, name, case when root = 1 then ${TaskState.PENDING}::smallint else ${TaskState.CREATED}::smallint end,
          root, root, max_attempts, pending_deps, pool, handler,
          decode(spec, 'base64'), ${now}::timestamptz, ${now}::timestamptz
        from unnest(${sql.param(slice.map((t) => t.id))}::uuid[], ${sql.param(slice.map((t) => t.name))}::text[],
          ${sql.param(slice.map((t) => (t.root ? 1 : 0)))}::int[], ${sql.param(slice.map((t) => t.maxAttempts))}::int[],
          ${sql.param(slice.map((t) => t.deps))}::int[], ${sql.param(slice.map((t) => t.pool))}::text[],
          ${sql.param(slice.map((t) => t.handler))}::text[], ${sql.param(slice.map((t) => t.spec))}::text[])
          as x(id, name, root, max_attempts, pending_deps, pool, handler, spec)`);
      // every task's creation, and for roots their readiness, in the audit trail
      await tx.execute(sql`
        insert into task_events (run_id, task_id, attempt, from_state, to_state, at)
        select ${runId}::uuid, x.id, 0, ${TaskState.UNSPECIFIED}::smallint, ${TaskState.CREATED}::smallint, ${now}::timestamptz
        from unnest(${sql.param(slice.map((t) => t.id))}::uuid[]) as x(id)
        union all
        select ${runId}::uuid, x.id, 1, ${TaskState.CREATED}::smallint, ${TaskState.PENDING}::smallint, ${now}::timestamptz
        from unnest(${sql.param(slice.filter((t) => t.root).map((t) => t.id))}::uuid[]) as x(id)`);
    }
    for (const slice of slices(edges)) {
      await tx.execute(sql`
        insert into task_edges (run_id, parent_id, child_id, kind)
        select ${runId}::uuid, parent, child, kind
        from unnest(${sql.param(slice.map((e) => e.parent))}::uuid[], ${sql.param(slice.map((e) => e.child))}::uuid[],
          ${sql.param(slice.map((e) => e.kind))}::text[])
          as x(parent, child, kind)`);
    }
    await writeOutbox(database, tx, ready);
    return { runId, existing: false, ready };
  });
}

/** Records work to publish and notes each row's id, so that it can be deleted once published. */
export async function writeOutbox(
  database: Database,
  tx: Pick<Db, "execute">,
  ready: readonly ReadyWork[],
): Promise<void> {
  if (ready.length === 0) return;
  const byTask = new Map(ready.map((r) => [r.item.taskId, r]));
  for (const slice of slices(ready)) {
    const inserted = await database.rows<{ id: number; task_id: string }>(
      sql`insert into outbox (task_id, pool, payload)
          select task_id, pool, decode(payload, 'base64')
          from unnest(${sql.param(slice.map((r) => r.item.taskId))}::uuid[], ${sql.param(slice.map((r) => r.pool))}::text[],
            ${sql.param(slice.map((r) => base64(encodedWorkItem(r.item))))}::text[]) as x(task_id, pool, payload)
          returning id, task_id`,
      tx,
    );
    for (const { id, task_id } of inserted) {
      const work = byTask.get(task_id);
      if (work) work.outboxId = Number(id);
    }
  }
}
