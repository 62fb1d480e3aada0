import { type SQL, sql } from "drizzle-orm";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import type { Database } from "../store/database.js";
import { QUERY_SCHEMA } from "./query-views.js";

/** Rows per batch: a batch is one statement and one message. */
const BATCH_ROWS = 2_000;
const DAY_MS = 86_400_000;

export interface ExportBatch {
  table: "runs" | "tasks" | "task_events";
  /** One JSON object per line. */
  ndjson: string;
  rows: number;
  /** On each table's first batch (without rows): the view's columns and their Postgres types. */
  columns?: { name: string; type: string }[];
}

const invalid = (message: string) => new TaskframeError(TaskframeErrorCode.InvalidArgument, message);

/** `2026-11-26` as [start, end) of that UTC day; refuses a malformed day and one that has not ended. */
export function dayRange(day: string, nowMs = Date.now()): { fromMs: number; toMs: number } {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  const fromMs = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : Number.NaN;
  if (!match || Number.isNaN(fromMs) || new Date(fromMs).toISOString().slice(0, 10) !== day)
    throw invalid(`expected a day as YYYY-MM-DD (UTC), e.g. 2026-11-26, got ${JSON.stringify(day)}`);
  const toMs = fromMs + DAY_MS;
  if (toMs > nowMs)
    throw invalid(
      `${day} has not ended yet (UTC): export a finished day, so that the files do not change later`,
    );
  return { fromMs, toMs };
}

/**
 * A day of the record as NDJSON, in batches (keyset pagination, one short
 * statement each, so a large day never holds one long transaction): the
 * runs created that day, their tasks, and the audit events recorded that
 * day. Columns are those of the query views (docs/query.md); each table
 * starts with a batch that names them, rows or not.
 */
export async function* exportDay(database: Database, day: string): AsyncGenerator<ExportBatch> {
  const { fromMs, toMs } = dayRange(day);
  const from = sql`to_timestamp(${fromMs / 1000}::float8)`;
  const to = sql`to_timestamp(${toMs / 1000}::float8)`;
  const view = (name: string) => sql.raw(`${QUERY_SCHEMA}.${name}`);

  yield* batches(
    database,
    "runs",
    (after) =>
      sql`select row_to_json(v)::text as line, v.created_at::text || '|' || v.id::text as key from ${view("runs")} v
        where v.created_at >= ${from} and v.created_at < ${to}
          ${after === undefined ? sql`` : sql`and (v.created_at, v.id) > (split_part(${after}, '|', 1)::timestamptz, split_part(${after}, '|', 2)::uuid)`}
        order by v.created_at, v.id limit ${BATCH_ROWS}`,
  );
  yield* batches(
    database,
    "tasks",
    (after) =>
      sql`select row_to_json(v)::text as line, v.id::text as key from ${view("tasks")} v
        where v.run_id in (select id from public.runs where created_at >= ${from} and created_at < ${to})
          ${after === undefined ? sql`` : sql`and v.id > ${after}::uuid`}
        order by v.id limit ${BATCH_ROWS}`,
  );
  yield* batches(
    database,
    "task_events",
    (after) =>
      sql`select row_to_json(v)::text as line, v.id::text as key from ${view("task_events")} v
        where v.at >= ${from} and v.at < ${to}
          ${after === undefined ? sql`` : sql`and v.id > ${after}::bigint`}
        order by v.id limit ${BATCH_ROWS}`,
  );
}

async function* batches(
  database: Database,
  table: ExportBatch["table"],
  page: (after: string | undefined) => SQL,
): AsyncGenerator<ExportBatch> {
  const columns = await database.rows<{ name: string; type: string }>(sql`
    select column_name as name, data_type as type from information_schema.columns
    where table_schema = ${QUERY_SCHEMA} and table_name = ${table} order by ordinal_position`);
  yield { table, ndjson: "", rows: 0, columns };
  let after: string | undefined;
  for (;;) {
    const rows = await database.rows<{ line: string; key: string }>(page(after));
    if (rows.length === 0) return;
    yield { table, ndjson: `${rows.map((row) => row.line).join("\n")}\n`, rows: rows.length };
    if (rows.length < BATCH_ROWS) return;
    after = rows[rows.length - 1]!.key;
  }
}
