import { create, toBinary } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { v7 as uuidv7 } from "uuid";
import { TaskframeError, TaskframeErrorCode } from "../../../core/errors.js";
import { WorkItemSchema } from "../../../core/gen/taskframe/v1/messages_pb.js";
import type { ChildSpec } from "../../../core/gen/taskframe/v1/runner_pb.js";
import { type TaskSpec, TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { TaskState, TERMINAL_STATES_SQL } from "../../../core/states.js";
import { maxAttemptsOf } from "../../retry-delay.js";
import type { Database } from "../database.js";
import { isCurrentAttempt } from "./current-attempt.js";
import { writeOutbox } from "./insert-run.js";
import type { ReadyWork } from "./ready-work.js";
import { hubEvent, insertEvents, pendingEvent, simpleChange } from "./record-events.js";
import type { TaskChange } from "./task-change.js";

export interface SpawnRequest {
  parentTaskId: string;
  attempt: number;
  /** 0: not checked. */
  leaseEpoch: number;
  children: readonly ChildSpec[];
}

export interface SpawnedTask {
  key: string;
  taskId: string;
  name: string;
  existing: boolean;
}

export interface SpawnResult {
  children: SpawnedTask[];
  ready: ReadyWork[];
  changes: TaskChange[];
}

/** A spawn that cannot be taken: the parent is not running that attempt, or the children are malformed. */
const rejected = (message: string, reason: "stale" | "invalid" | "not_found") =>
  new TaskframeError(
    reason === "stale"
      ? TaskframeErrorCode.Stale
      : reason === "invalid"
        ? TaskframeErrorCode.InvalidArgument
        : TaskframeErrorCode.NotFound,
    message,
  );

const KEY = /^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,199}$/;
const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

/**
 * Adds children to a running task's run in one transaction. A child is named
 * `<parent>/<key>`; its `needs`/`after` name sibling keys (of this spawn or an
 * earlier one). A key spawned before is returned as it is, so a retried
 * parent that spawns again creates nothing twice.
 */
export async function spawnChildren(
  database: Database,
  request: SpawnRequest,
  nowMs = Date.now(),
): Promise<SpawnResult> {
  validateKeys(request.children);
  return database.transaction(async (tx) => {
    const [parent] = await database.rows<{
      id: string;
      run_id: string;
      name: string;
      state: number;
      attempt: number;
      lease_epoch: number;
      pool: string;
    }>(
      sql`select id, run_id, name, state, attempt, lease_epoch, pool from tasks
          where id = ${request.parentTaskId} for update`,
      tx,
    );
    if (!parent) throw rejected(`no task ${request.parentTaskId} to spawn children of`, "not_found");
    const current = isCurrentAttempt(
      { state: parent.state, attempt: parent.attempt, leaseEpoch: Number(parent.lease_epoch) },
      request.attempt,
      request.leaseEpoch === 0 ? "unchecked" : request.leaseEpoch,
    );
    if (!current) {
      throw rejected(
        `task ${parent.name} cannot spawn: attempt ${request.attempt} (lease ${request.leaseEpoch}) is not running; ` +
          `the task is ${TaskState[parent.state]} in attempt ${parent.attempt} (lease ${parent.lease_epoch})`,
        "stale",
      );
    }
    const nameOf = (key: string) => `${parent.name}/${key}`;
    const wanted = request.children.map((c) => nameOf(c.key));
    const siblingNames = new Set(
      request.children.flatMap((c) => [...(c.spec?.needs ?? []), ...(c.spec?.after ?? [])].map(nameOf)),
    );
    const known = await database.rows<{
      id: string;
      name: string;
      state: number;
      settled_ok: boolean | null;
    }>(
      sql`select id, name, state,
            case when open_children > 0 or state not in (${sql.raw(TERMINAL_STATES_SQL)}) then null
                 else state = ${TaskState.SUCCEEDED} and not subtree_failed end as settled_ok
          from tasks where run_id = ${parent.run_id} and name = any(${sql.param([...new Set([...wanted, ...siblingNames])])}::text[])`,
      tx,
    );
    const byName = new Map(known.map((k) => [k.name, k]));
    const fresh = request.children.filter((c) => !byName.has(nameOf(c.key)));
    const idsByName = new Map(fresh.map((c) => [nameOf(c.key), uuidv7()] as const));
    checkNeeds(fresh, nameOf, (name) => idsByName.has(name) || byName.has(name), byName);

    const rows: {
      id: string;
      name: string;
      deps: number;
      pool: string;
      handler: string | null;
      maxAttempts: number;
      spec: TaskSpec;
    }[] = [];
    const edges: { parent: string; child: string; kind: "requires" | "after" }[] = [];
    for (const child of fresh) {
      const name = nameOf(child.key);
      const id = idsByName.get(name)!;
      const source = child.spec ?? create(TaskSpecSchema, {});
      const needs = [...new Set(source.needs.map(nameOf))];
      const after = [...new Set(source.after.map(nameOf))].filter((n) => !needs.includes(n));
      let deps = 0;
      for (const [list, kind] of [
        [needs, "requires"],
        [after, "after"],
      ] as const) {
        for (const dependency of list) {
          const existing = byName.get(dependency);
          // an earlier sibling that has settled needs no edge: it will not end again
          if (existing && existing.settled_ok !== null) continue;
          edges.push({ parent: idsByName.get(dependency) ?? existing!.id, child: id, kind });
          deps += 1;
        }
      }
      const spec = create(TaskSpecSchema, {
        ...source,
        name,
        needs,
        after,
        pool: source.pool || parent.pool,
      });
      rows.push({
        id,
        name,
        deps,
        pool: spec.pool,
        handler: spec.target.case === "handler" ? spec.target.value.handler : null,
        maxAttempts: maxAttemptsOf(spec.retry),
        spec,
      });
    }

    const ready: ReadyWork[] = [];
    const changes: TaskChange[] = [];
    if (rows.length > 0) {
      const now = new Date(nowMs).toISOString();
      const column = <T>(pick: (row: (typeof rows)[number]) => T) => sql.param(rows.map(pick));
      await tx.execute(sql`
        insert into tasks (id, run_id, parent_id, name, state, attempt, dispatch, max_attempts, pending_deps, pool,
          handler, memory_bytes, cpu_millis, spec, created_at, updated_at)
        select id, ${parent.run_id}::uuid, ${parent.id}::uuid, name,
          case when deps = 0 then ${TaskState.PENDING}::smallint else ${TaskState.CREATED}::smallint end,
          case when deps = 0 then 1 else 0 end, case when deps = 0 then 1 else 0 end,
          max_attempts, deps, pool, handler, memory, cpu, decode(spec, 'base64'), ${now}::timestamptz, ${now}::timestamptz
        from unnest(${column((r) => r.id)}::uuid[], ${column((r) => r.name)}::text[], ${column((r) => r.deps)}::int[],
          ${column((r) => r.maxAttempts)}::int[], ${column((r) => r.pool)}::text[], ${column((r) => r.handler)}::text[],
          ${column((r) => base64(toBinary(TaskSpecSchema, r.spec)))}::text[],
          ${column((r) => Number(r.spec.limits?.memoryBytes ?? 0n))}::int8[], ${column((r) => r.spec.limits?.cpuMillis ?? 0)}::int[])
          as x(id, name, deps, max_attempts, pool, handler, spec, memory, cpu)`);
      if (edges.length > 0) {
        await tx.execute(sql`
          insert into task_edges (run_id, parent_id, child_id, kind)
          select ${parent.run_id}::uuid, p, c, k
          from unnest(${sql.param(edges.map((e) => e.parent))}::uuid[], ${sql.param(edges.map((e) => e.child))}::uuid[],
            ${sql.param(edges.map((e) => e.kind))}::text[]) as x(p, c, k)`);
      }
      await tx.execute(
        sql`update tasks set open_children = open_children + ${rows.length} where id = ${parent.id}`,
      );
      await tx.execute(sql`update runs set total_tasks = total_tasks + ${rows.length},
          remaining_tasks = remaining_tasks + ${rows.length} where id = ${parent.run_id}`);
      const events = rows.map((r) =>
        hubEvent({
          runId: parent.run_id,
          taskId: r.id,
          attempt: 0,
          from: TaskState.UNSPECIFIED,
          to: TaskState.CREATED,
          atMs: nowMs,
          detail: `spawned by ${parent.name}`,
        }),
      );
      for (const row of rows) {
        if (row.deps > 0) continue;
        events.push(pendingEvent(parent.run_id, row.id, nowMs));
        changes.push(simpleChange(row.id, parent.run_id, TaskState.PENDING, 1, null, nowMs));
        ready.push({
          pool: row.pool,
          item: create(WorkItemSchema, {
            taskId: row.id,
            runId: parent.run_id,
            attempt: 1,
            dispatch: 1,
            spec: row.spec,
          }),
        });
      }
      await insertEvents(tx, events);
      await writeOutbox(database, tx, ready);
    }
    return {
      children: request.children.map((c) => {
        const name = nameOf(c.key);
        const existing = byName.get(name);
        return {
          key: c.key,
          name,
          taskId: existing?.id ?? idsByName.get(name)!,
          existing: existing !== undefined,
        };
      }),
      ready,
      changes,
    };
  });
}

function validateKeys(children: readonly ChildSpec[]): void {
  if (children.length === 0) throw rejected("a spawn needs at least one child", "invalid");
  const seen = new Set<string>();
  for (const [index, child] of children.entries()) {
    if (!KEY.test(child.key)) {
      throw rejected(
        `child ${index + 1}: key '${child.key}' is not valid: expected 1-200 letters, digits or . _ : @ = + - (no '/'), starting with a letter or digit`,
        "invalid",
      );
    }
    if (seen.has(child.key))
      throw rejected(`child key '${child.key}' is given twice in one spawn`, "invalid");
    seen.add(child.key);
    const target = child.spec?.target;
    if (!target?.case) {
      throw rejected(`child '${child.key}' has nothing to run: expected a handler or a command`, "invalid");
    }
    if (target.case === "handler" && !target.value.handler) {
      throw rejected(`child '${child.key}' names no handler`, "invalid");
    }
    if (target.case === "exec" && !target.value.command) {
      throw rejected(`child '${child.key}' names no command`, "invalid");
    }
  }
}

/** Every `needs`/`after` names a sibling; one that already failed makes the child unrunnable; no cycles. */
function checkNeeds(
  fresh: readonly ChildSpec[],
  nameOf: (key: string) => string,
  exists: (name: string) => boolean,
  known: ReadonlyMap<string, { settled_ok: boolean | null; state: number }>,
): void {
  for (const child of fresh) {
    for (const key of [...(child.spec?.needs ?? []), ...(child.spec?.after ?? [])]) {
      if (!exists(nameOf(key))) {
        throw rejected(`child '${child.key}' needs '${key}', which is not a child of this task`, "invalid");
      }
    }
    for (const key of child.spec?.needs ?? []) {
      const sibling = known.get(nameOf(key));
      if (sibling?.settled_ok === false) {
        throw rejected(
          `child '${child.key}' needs '${key}', which already ended ${TaskState[sibling.state]}`,
          "invalid",
        );
      }
    }
  }
  const byKey = new Map(fresh.map((c) => [c.key, c]));
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (key: string, path: string[]): void => {
    if (done.has(key)) return;
    if (visiting.has(key)) {
      throw rejected(`children form a cycle: ${[...path, key].join(" -> ")}`, "invalid");
    }
    visiting.add(key);
    const child = byKey.get(key);
    for (const next of [...(child?.spec?.needs ?? []), ...(child?.spec?.after ?? [])]) {
      if (byKey.has(next)) visit(next, [...path, key]);
    }
    visiting.delete(key);
    done.add(key);
  };
  for (const key of byKey.keys()) visit(key, []);
}
