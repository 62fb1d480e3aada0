import { type SQL, sql } from "drizzle-orm";
import { v4 as uuidv4, v7 as uuidv7 } from "uuid";
import { encodedWorkItem, workItemWithEncodedSpec } from "../../../core/encoded-work-item.js";
import type { RunSpec } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { RunState, TaskState } from "../../../core/states.js";
import { DEFAULT_POOL } from "../../../core/work-queue.js";
import { maxAttemptsOf } from "../../retry-delay.js";
import { runGraphOf } from "../../validate-run.js";
import type { Database, Db, Tx } from "../database.js";
import { insertJob } from "./mapreduce-jobs.js";
import type { ReadyWork } from "./ready-work.js";
import { TaskSpecBytes } from "./task-spec-bytes.js";

export interface InsertedRun {
  runId: string;
  existing: boolean;
  /** Root tasks, ready now (also written to the outbox). */
  ready: ReadyWork[];
}

/** Rows per statement: arrays travel as one parameter each, so this only bounds a statement's size. */
const ROWS_PER_STATEMENT = 10_000;
/**
 * Statements sent and not yet answered. The database works on one while the next is built: the
 * hub's encoding and Postgres's inserts overlap instead of taking turns.
 */
const IN_FLIGHT = 2;

const base64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

function* slices<T>(rows: readonly T[]): Generator<T[]> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) yield rows.slice(i, i + ROWS_PER_STATEMENT);
}

/**
 * Writes a validated run in one transaction: the run, its tasks (roots
 * PENDING, the rest CREATED with a count of unmet dependencies), the edges,
 * the audit events, and an outbox row per root.
 *
 * Rows go in as parallel arrays (`unnest`), a statement per 10,000 rows, each
 * array one parameter written as a Postgres array literal (ids and names need
 * no escaping: the names were checked), and the task specs as one bytea per
 * statement cut with `substring`. The tasks and their creation events share a
 * statement. Statements are pipelined (see IN_FLIGHT). A million-task run
 * costs the hub a few seconds; the rest is Postgres maintaining indexes and
 * checking foreign keys, row by row.
 */
export function insertRun(
  database: Database,
  spec: RunSpec,
  idempotencyKey: string,
  tenant = "default",
): Promise<InsertedRun> {
  return database.transaction((tx) => writeRun(database, tx, spec, idempotencyKey, undefined, tenant));
}

/**
 * `insertRun` inside a transaction of the caller's (a schedule's slot and its run commit together),
 * with the run id the caller may have recorded already, and its tenant (a value, or SQL reading it:
 * a schedule's runs belong to the schedule's tenant).
 */
export async function writeRun(
  database: Database,
  tx: Tx,
  spec: RunSpec,
  idempotencyKey: string,
  runId: string = uuidv4(),
  tenant: string | SQL = "default",
): Promise<InsertedRun> {
  const graph = runGraphOf(spec);
  const { tasks, offsets, targets, requires } = graph;
  if (idempotencyKey) {
    const existing = await database.rows<{ id: string }>(
      sql`select id from runs where idempotency_key = ${idempotencyKey}`,
      tx,
    );
    if (existing[0]) return { runId: existing[0].id, existing: true, ready: [] };
  }
  const now = new Date().toISOString();
  const ids = new Array<string>(tasks.length);
  for (let i = 0; i < tasks.length; i++) ids[i] = uuidv7();
  const ready: ReadyWork[] = [];
  const pipeline = new Pipeline(IN_FLIGHT);

  await pipeline.send(
    tx.execute(sql`
    insert into runs (id, name, state, source, labels, idempotency_key, total_tasks, remaining_tasks, created_at, tenant)
    values (${runId}, ${spec.name}, ${RunState.RUNNING}, ${spec.source}, ${JSON.stringify({ ...spec.labels })}::jsonb,
      ${idempotencyKey || null}, ${tasks.length}, ${tasks.length}, ${now}::timestamptz, ${tenant})`),
  );
  if (spec.mapreduce) await pipeline.send(tx.execute(insertJob(runId, spec.mapreduce)));
  const texts = new TextLiterals();
  const specs = new TaskSpecBytes();
  const roots: number[] = [];
  for (let first = 0; first < tasks.length; first += ROWS_PER_STATEMENT) {
    const end = Math.min(tasks.length, first + ROWS_PER_STATEMENT);
    const count = end - first;
    const names = new Array<string>(count);
    const maxAttempts = new Array<number>(count);
    const deps = new Array<number>(count);
    const pools = new Array<string>(count);
    const handlers = new Array<string>(count);
    const specAt = new Array<number>(count);
    const specLength = new Array<number>(count);
    const memory = new Array<number>(count);
    const cpu = new Array<number>(count);
    for (let i = first; i < end; i++) {
      const task = tasks[i]!;
      const j = i - first;
      const pool = task.pool || DEFAULT_POOL;
      names[j] = task.name;
      maxAttempts[j] = maxAttemptsOf(task.retry);
      deps[j] = offsets[i + 1]! - offsets[i]!;
      pools[j] = texts.quoted(pool);
      handlers[j] = task.target.case === "handler" ? texts.quoted(task.target.value.handler) : "NULL";
      memory[j] = Number(task.limits?.memoryBytes ?? 0n);
      cpu[j] = task.limits?.cpuMillis ?? 0;
      specAt[j] = specs.length + 1;
      specLength[j] = specs.append(task);
      if (deps[j] === 0) roots.push(i);
    }
    const blob = specs.take();
    // roots are ready now: their work items carry the spec bytes just written, not a second encoding
    for (const i of roots) {
      const at = specAt[i - first]! - 1;
      ready.push({
        pool: tasks[i]!.pool || DEFAULT_POOL,
        item: workItemWithEncodedSpec(
          { taskId: ids[i]!, runId, attempt: 1, dispatch: 1 },
          tasks[i]!,
          blob.subarray(at, at + specLength[i - first]!),
        ),
      });
    }
    roots.length = 0;
    // every task's creation, and for roots their readiness, in the audit trail
    await pipeline.send(
      tx.execute(sql`
      with inserted as (
        insert into tasks (id, run_id, name, state, attempt, dispatch, max_attempts, pending_deps, pool, handler,
          memory_bytes, cpu_millis, spec, created_at, updated_at)
        select x.id, ${runId}::uuid, x.name,
          case when x.deps = 0 then ${TaskState.PENDING}::smallint else ${TaskState.CREATED}::smallint end,
          case when x.deps = 0 then 1 else 0 end, case when x.deps = 0 then 1 else 0 end,
          x.max_attempts, x.deps, x.pool, x.handler, x.memory, x.cpu,
          substring(${blob}::bytea from x.spec_at for x.spec_length),
          ${now}::timestamptz, ${now}::timestamptz
        from unnest(${idList(ids, first, end)}::uuid[], ${nameList(names)}::text[], ${intList(maxAttempts)}::int[],
          ${intList(deps)}::int[], ${list(pools)}::text[], ${list(handlers)}::text[], ${intList(specAt)}::int[],
          ${intList(specLength)}::int[], ${intList(memory)}::int8[], ${intList(cpu)}::int[])
          as x(id, name, max_attempts, deps, pool, handler, spec_at, spec_length, memory, cpu)
        returning id, pending_deps
      )
      insert into task_events (run_id, task_id, attempt, from_state, to_state, at)
      select ${runId}::uuid, id, 0, ${TaskState.UNSPECIFIED}::smallint, ${TaskState.CREATED}::smallint, ${now}::timestamptz
      from inserted
      union all
      select ${runId}::uuid, id, 1, ${TaskState.CREATED}::smallint, ${TaskState.PENDING}::smallint, ${now}::timestamptz
      from inserted where pending_deps = 0`),
    );
  }
  for (let task = 0, edge = 0; edge < targets.length; ) {
    const count = Math.min(ROWS_PER_STATEMENT, targets.length - edge);
    const parents = new Array<string>(count);
    const children = new Array<string>(count);
    const after = new Array<string>(count);
    for (let j = 0; j < count; j++, edge++) {
      while (offsets[task + 1]! <= edge) task++;
      parents[j] = ids[targets[edge]!]!;
      children[j] = ids[task]!;
      after[j] = edge - offsets[task]! < requires[task]! ? "f" : "t";
    }
    await pipeline.send(
      tx.execute(sql`
      insert into task_edges (run_id, parent_id, child_id, kind)
      select ${runId}::uuid, x.parent, x.child, case when x.after then 'after' else 'requires' end
      from unnest(${list(parents)}::uuid[], ${list(children)}::uuid[], ${list(after)}::bool[])
        as x(parent, child, after)`),
    );
  }
  await pipeline.drain();
  await writeOutbox(database, tx, ready);
  return { runId, existing: false, ready };
}

/** Statements sent one after another without waiting for each answer, at most `depth` unanswered. */
class Pipeline {
  readonly #sent: Promise<unknown>[] = [];
  constructor(readonly depth: number) {}

  /** Sends `statement` now (drizzle's queries run when `then` is called, and again at each call). */
  async send(statement: PromiseLike<unknown>): Promise<void> {
    const sent = new Promise((resolve, reject) => statement.then(resolve, reject));
    // a failure is thrown by the await that reaches it; until then it must not count as unhandled
    sent.catch(() => {});
    this.#sent.push(sent);
    if (this.#sent.length > this.depth) await this.#sent.shift();
  }

  async drain(): Promise<void> {
    while (this.#sent.length > 0) await this.#sent.shift();
  }
}

/** Elements of a Postgres array literal, quoted once per distinct string. */
class TextLiterals {
  readonly #quoted = new Map<string, string>();
  quoted(text: string): string {
    let quoted = this.#quoted.get(text);
    if (quoted === undefined) {
      quoted = `"${text.replace(/["\\]/g, "\\$&")}"`;
      this.#quoted.set(text, quoted);
    }
    return quoted;
  }
}

/** An array literal of elements already quoted (or needing no quotes). */
const list = (elements: readonly string[]) => `{${elements.join(",")}}`;
const intList = (numbers: readonly number[]) => `{${numbers.join(",")}}`;
const idList = (ids: readonly string[], first: number, end: number) => list(ids.slice(first, end));
/** Checked task names: letters, digits, '.', '_' and '-' (quoted all the same: `NULL` is a name). */
const nameList = (names: readonly string[]) => `{"${names.join('","')}"}`;

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
