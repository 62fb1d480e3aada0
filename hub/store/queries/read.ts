import { sql } from "drizzle-orm";
import { TaskframeError, TaskframeErrorCode } from "../../../core/errors.js";
import type { RunState, TaskState } from "../../../core/states.js";
import type { AuditRow } from "../../apply-transitions.js";
import { EVALUATION_LABEL } from "../../schedules/schedule-spec.js";
import type { Database } from "../database.js";

export interface RunRecord {
  id: string;
  name: string;
  state: RunState;
  source: string;
  labels: Record<string, string>;
  totalTasks: number;
  createdAtMs: number;
  finishedAtMs: number | null;
  counts: Map<TaskState, number>;
  tenant: string;
}

export interface TaskRecord {
  id: string;
  runId: string;
  name: string;
  state: TaskState;
  attempt: number;
  maxAttempts: number;
  host: string | null;
  exitCode: number | null;
  detail: string | null;
  createdAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  retryAtMs: number | null;
  needs: string[];
  after: string[];
  /** A handler task's result: read by findTask only. */
  output?: { data: Uint8Array; contentType: string };
}

/** One row of a task's audit trail, as written by the recorder. */
export type AuditRecord = Omit<AuditRow, "runId" | "taskId">;

export interface LogRecord {
  id: number;
  attempt: number;
  stream: number;
  atMs: number;
  data: Uint8Array;
  droppedBytes: number;
}

const ms = (column: string) => sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);

/** `and` the run's tenant is one of these (undefined: no condition). */
const ofTenants = (column: string, tenants: readonly string[] | undefined) =>
  tenants ? sql` and ${sql.raw(column)} = any(${sql.param([...tenants])}::text[])` : sql``;

/**
 * A run id from a full id or a unique prefix; empty means the newest run (not a condition's
 * evaluation). `tenants`: only runs of these tenants match.
 */
export async function resolveRunId(
  database: Database,
  idOrPrefix: string,
  tenants?: readonly string[],
): Promise<string> {
  const prefix = idOrPrefix.trim().toLowerCase();
  if (prefix && !/^[0-9a-f-]{1,36}$/.test(prefix)) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `'${idOrPrefix}' is not a run id (expected hex digits)`,
    );
  }
  const rows = await database.rows<{ id: string }>(
    prefix
      ? sql`select id from runs where id::text like ${`${prefix}%`} ${ofTenants("tenant", tenants)}
            order by created_at desc limit 2`
      : sql`select id from runs where not (labels ? ${EVALUATION_LABEL}) ${ofTenants("tenant", tenants)}
            order by created_at desc limit 1`,
  );
  if (rows.length === 0) {
    throw new TaskframeError(
      TaskframeErrorCode.NotFound,
      prefix ? `no run matches '${idOrPrefix}'` : "there are no runs yet",
    );
  }
  if (rows.length > 1) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `'${idOrPrefix}' matches several runs; give more characters`,
    );
  }
  return rows[0]!.id;
}

interface RunRow {
  id: string;
  name: string;
  state: number;
  source: string;
  labels: Record<string, string> | string;
  total_tasks: number;
  created_at_ms: number;
  finished_at_ms: number | null;
  tenant: string;
}

/**
 * Newest first. `tenants`: only the runs of these tenants (a caller's tokens, docs/security-auth.md);
 * undefined: every run.
 */
export async function listRuns(
  database: Database,
  options: { ids?: string[]; limit?: number; includeEvaluations?: boolean; tenants?: readonly string[] },
): Promise<RunRecord[]> {
  const conditions = [
    options.ids ? sql`id = any(${sql.param(options.ids)}::uuid[])` : undefined,
    options.ids || options.includeEvaluations ? undefined : sql`not (labels ? ${EVALUATION_LABEL})`,
    options.tenants ? sql`tenant = any(${sql.param([...options.tenants])}::text[])` : undefined,
  ].filter((c) => c !== undefined);
  const filter = conditions.length > 0 ? sql`where ${sql.join(conditions, sql` and `)}` : sql``;
  const runs = await database.rows<RunRow>(
    sql`select id, name, state, source, labels, total_tasks, ${ms("created_at")} as created_at_ms,
               ${ms("finished_at")} as finished_at_ms, tenant
        from runs ${filter} order by created_at desc limit ${options.limit ?? 20}`,
  );
  if (runs.length === 0) return [];
  const counts = await database.rows<{ run_id: string; state: number; n: number }>(
    sql`select run_id, state, count(*)::int as n from tasks
        where run_id = any(${sql.param(runs.map((r) => r.id))}::uuid[]) group by run_id, state`,
  );
  return runs.map((r) => ({
    id: r.id,
    name: r.name,
    state: r.state,
    source: r.source,
    labels: typeof r.labels === "string" ? JSON.parse(r.labels) : r.labels,
    totalTasks: r.total_tasks,
    createdAtMs: r.created_at_ms,
    finishedAtMs: r.finished_at_ms,
    tenant: r.tenant,
    counts: new Map(counts.filter((c) => c.run_id === r.id).map((c) => [c.state, c.n])),
  }));
}

export async function getRun(database: Database, runId: string): Promise<RunRecord> {
  const [run] = await listRuns(database, { ids: [runId], limit: 1 });
  if (!run) throw new TaskframeError(TaskframeErrorCode.NotFound, `run ${runId} does not exist`);
  return run;
}

interface TaskRowOut {
  id: string;
  run_id: string;
  name: string;
  state: number;
  attempt: number;
  max_attempts: number;
  host: string | null;
  exit_code: number | null;
  detail: string | null;
  created_at_ms: number;
  started_at_ms: number | null;
  finished_at_ms: number | null;
  retry_at_ms: number | null;
}

const taskColumns = sql`t.id, t.run_id, t.name, t.state, t.attempt, t.max_attempts, t.host, t.exit_code, t.detail,
  ${ms("t.created_at")} as created_at_ms, ${ms("t.started_at")} as started_at_ms,
  ${ms("t.finished_at")} as finished_at_ms, ${ms("t.retry_at")} as retry_at_ms`;

/**
 * What each task of a run waits for, by name and kind: one grouped read of
 * the edges (a per-task subquery costs a lookup per task and per edge,
 * quadratic for a fan-in).
 */
async function dependenciesOf(
  database: Database,
  runId: string,
  childIds?: readonly string[],
): Promise<Map<string, Dependencies>> {
  const children = childIds ? sql`and e.child_id = any(${sql.param([...childIds])}::uuid[])` : sql``;
  const rows = await database.rows<{ child_id: string; name: string; kind: string }>(
    sql`select e.child_id, p.name, e.kind from task_edges e join tasks p on p.id = e.parent_id
        where e.run_id = ${runId} ${children} order by p.name`,
  );
  const dependencies = new Map<string, Dependencies>();
  for (const { child_id, name, kind } of rows) {
    let entry = dependencies.get(child_id);
    if (!entry) {
      entry = { needs: [], after: [] };
      dependencies.set(child_id, entry);
    }
    (kind === "after" ? entry.after : entry.needs).push(name);
  }
  return dependencies;
}

interface Dependencies {
  needs: string[];
  after: string[];
}

const NO_DEPENDENCIES: Dependencies = { needs: [], after: [] };

export async function listTasks(
  database: Database,
  runId: string,
  options: {
    states?: readonly TaskState[];
    limit?: number;
    ids?: readonly string[];
    withNeeds?: boolean;
  } = {},
): Promise<TaskRecord[]> {
  const states = options.states?.length
    ? sql`and t.state = any(${sql.param([...options.states])}::smallint[])`
    : sql``;
  const ids = options.ids ? sql`and t.id = any(${sql.param([...options.ids])}::uuid[])` : sql``;
  const limit = options.limit ? sql`limit ${options.limit}` : sql``;
  const rows = await database.rows<TaskRowOut>(
    sql`select ${taskColumns} from tasks t where t.run_id = ${runId} ${states} ${ids}
        order by t.created_at, t.id ${limit}`,
  );
  if (options.withNeeds === false) return rows.map((row) => toTaskRecord(row, NO_DEPENDENCIES));
  const dependencies = await dependenciesOf(
    database,
    runId,
    options.ids ?? (options.limit || options.states?.length ? rows.map((r) => r.id) : undefined),
  );
  return rows.map((row) => toTaskRecord(row, dependencies.get(row.id) ?? NO_DEPENDENCIES));
}

/**
 * A task by id, or by name in a run (the newest run that has that name when no run is given).
 * `tenants`: only tasks of runs of these tenants are found.
 */
export async function findTask(
  database: Database,
  ref: { taskId?: string; runId?: string; name?: string },
  tenants?: readonly string[],
): Promise<TaskRecord> {
  let rows: TaskRowOut[];
  const tenantFilter = tenants
    ? sql` and exists (select 1 from runs r where r.id = t.run_id ${ofTenants("r.tenant", tenants)})`
    : sql``;
  if (ref.taskId) {
    rows = await database.rows<TaskRowOut>(
      sql`select ${taskColumns} from tasks t where t.id::text = ${ref.taskId} ${tenantFilter}`,
    );
  } else if (ref.name && ref.runId) {
    const runId = await resolveRunId(database, ref.runId, tenants);
    rows = await database.rows<TaskRowOut>(
      sql`select ${taskColumns} from tasks t where t.run_id = ${runId} and t.name = ${ref.name}`,
    );
  } else if (ref.name) {
    rows = await database.rows<TaskRowOut>(
      sql`select ${taskColumns} from tasks t where t.name = ${ref.name} ${tenantFilter}
          order by t.created_at desc limit 1`,
    );
  } else {
    throw new TaskframeError(TaskframeErrorCode.InvalidArgument, "name a task: give its name or its id");
  }
  const row = rows[0];
  if (!row) {
    const where = ref.runId ? ` in run ${ref.runId}` : "";
    throw new TaskframeError(TaskframeErrorCode.NotFound, `no task '${ref.taskId || ref.name}'${where}`);
  }
  const [dependencies, outputs] = await Promise.all([
    dependenciesOf(database, row.run_id, [row.id]),
    database.rows<{ output: Uint8Array | null; output_content_type: string | null }>(
      sql`select output, output_content_type from tasks where id = ${row.id}`,
    ),
  ]);
  const record = toTaskRecord(row, dependencies.get(row.id) ?? NO_DEPENDENCIES);
  const output = outputs[0];
  if (output?.output) record.output = { data: output.output, contentType: output.output_content_type ?? "" };
  return record;
}

function toTaskRecord(r: TaskRowOut, { needs, after }: Dependencies): TaskRecord {
  return {
    id: r.id,
    runId: r.run_id,
    name: r.name,
    state: r.state,
    attempt: r.attempt,
    maxAttempts: r.max_attempts,
    host: r.host,
    exitCode: r.exit_code,
    detail: r.detail,
    createdAtMs: r.created_at_ms,
    startedAtMs: r.started_at_ms,
    finishedAtMs: r.finished_at_ms,
    retryAtMs: r.retry_at_ms,
    needs,
    after,
  };
}

export async function readAudit(database: Database, taskId: string): Promise<AuditRecord[]> {
  const rows = await database.rows<{
    attempt: number;
    from_state: number;
    to_state: number;
    at_ms: number;
    host: string;
    lease_epoch: number;
    exit_code: number | null;
    detail: string;
    rejected: boolean;
  }>(
    sql`select attempt, from_state, to_state, ${ms("at")} as at_ms, host, lease_epoch, exit_code, detail, rejected
        from task_events where task_id = ${taskId} order by id`,
  );
  return rows.map((r) => ({
    attempt: r.attempt,
    from: r.from_state,
    to: r.to_state,
    atMs: r.at_ms,
    host: r.host,
    leaseEpoch: Number(r.lease_epoch),
    exitCode: r.exit_code,
    detail: r.detail,
    rejected: r.rejected,
  }));
}

/** Log chunks of a task after `afterId`, in the order they were recorded. */
export async function readLogs(
  database: Database,
  taskId: string,
  options: { attempt?: number; streams?: readonly number[]; afterId?: number; limit?: number } = {},
): Promise<LogRecord[]> {
  const attempt = options.attempt ? sql`and attempt = ${options.attempt}` : sql``;
  const streams = options.streams?.length
    ? sql`and stream = any(${sql.param([...options.streams])}::smallint[])`
    : sql``;
  const rows = await database.rows<{
    id: number;
    attempt: number;
    stream: number;
    at_ms: number;
    data: Uint8Array;
    dropped_bytes: number;
  }>(
    sql`select id, attempt, stream, ${ms("at")} as at_ms, data, dropped_bytes from log_chunks
        where task_id = ${taskId} and id > ${options.afterId ?? 0} ${attempt} ${streams}
        order by id limit ${options.limit ?? 1_000}`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    attempt: r.attempt,
    stream: r.stream,
    atMs: r.at_ms,
    data: r.data,
    droppedBytes: Number(r.dropped_bytes),
  }));
}
