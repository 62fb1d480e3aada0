import { create, toBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { v4 as uuidv4, v7 as uuidv7 } from "uuid";
import { WorkItemSchema } from "../../../core/gen/taskframe/v1/messages_pb.js";
import { type RunSpec, TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../../../core/states.js";
import { DEFAULT_POOL } from "../../../core/work-queue.js";
import { maxAttemptsOf } from "../../retry-delay.js";
import { chunked } from "../chunked.js";
import type { Database, Db } from "../database.js";
import { outbox, runs, taskEdges, taskEvents, tasks } from "../schema.js";
import type { ReadyWork } from "./ready-work.js";

export interface InsertedRun {
  runId: string;
  existing: boolean;
  /** Root tasks, ready now (also written to the outbox). */
  ready: ReadyWork[];
}

/**
 * Writes a validated run in one transaction: the run, its tasks (roots
 * PENDING, the rest CREATED with a count of unmet dependencies), the edges,
 * the audit events, and an outbox row per root.
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
    const now = new Date();
    const idsByName = new Map(spec.tasks.map((t) => [t.name, uuidv7()] as const));
    const taskRows: (typeof tasks.$inferInsert)[] = [];
    const edgeRows: (typeof taskEdges.$inferInsert)[] = [];
    const eventRows: (typeof taskEvents.$inferInsert)[] = [];
    const ready: ReadyWork[] = [];

    for (const task of spec.tasks) {
      const id = idsByName.get(task.name)!;
      const needs = [...new Set(task.needs)];
      const isRoot = needs.length === 0;
      const specBytes = toBinary(TaskSpecSchema, task);
      taskRows.push({
        id,
        runId,
        name: task.name,
        state: isRoot ? TaskState.PENDING : TaskState.CREATED,
        attempt: isRoot ? 1 : 0,
        dispatch: isRoot ? 1 : 0,
        maxAttempts: maxAttemptsOf(task.retry),
        pendingDeps: needs.length,
        pool: task.pool || DEFAULT_POOL,
        spec: specBytes,
        createdAt: now,
      });
      for (const need of needs) edgeRows.push({ runId, parentId: idsByName.get(need)!, childId: id });
      const base = { runId, taskId: id, at: now, detail: "" };
      eventRows.push({ ...base, attempt: 0, fromState: TaskState.UNSPECIFIED, toState: TaskState.CREATED });
      if (isRoot) {
        eventRows.push({ ...base, attempt: 1, fromState: TaskState.CREATED, toState: TaskState.PENDING });
        ready.push({
          pool: task.pool || DEFAULT_POOL,
          item: create(WorkItemSchema, { taskId: id, runId, attempt: 1, dispatch: 1, spec: task }),
        });
      }
    }

    await tx.insert(runs).values({
      id: runId,
      name: spec.name,
      state: RunState.RUNNING,
      source: spec.source,
      labels: { ...spec.labels },
      idempotencyKey: idempotencyKey || null,
      totalTasks: spec.tasks.length,
      remainingTasks: spec.tasks.length,
      createdAt: now,
    });
    for (const chunk of chunked(taskRows, 12)) await tx.insert(tasks).values(chunk);
    for (const chunk of chunked(edgeRows, 3)) await tx.insert(taskEdges).values(chunk);
    for (const chunk of chunked(eventRows, 8)) await tx.insert(taskEvents).values(chunk);
    await writeOutbox(tx, ready);
    return { runId, existing: false, ready };
  });
}

/** Records work to publish and notes each row's id, so that it can be deleted once published. */
export async function writeOutbox(tx: Pick<Db, "insert">, ready: readonly ReadyWork[]): Promise<void> {
  if (ready.length === 0) return;
  const byTask = new Map(ready.map((r) => [r.item.taskId, r]));
  const rows = ready.map((r) => ({
    taskId: r.item.taskId,
    pool: r.pool,
    payload: toBinary(WorkItemSchema, r.item),
  }));
  for (const chunk of chunked(rows, 3)) {
    const inserted = await tx
      .insert(outbox)
      .values(chunk)
      .returning({ id: outbox.id, taskId: outbox.taskId });
    for (const { id, taskId } of inserted) {
      const work = byTask.get(taskId);
      if (work) work.outboxId = id;
    }
  }
}
