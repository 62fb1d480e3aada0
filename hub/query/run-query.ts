import { sql } from "drizzle-orm";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import { type Database, rowsOf } from "../store/database.js";
import { QUERY_ROLE, QUERY_SCHEMA, QUERY_VIEWS } from "./query-views.js";

export const DEFAULT_QUERY_LIMIT = 1_000;
export const MAX_QUERY_LIMIT = 100_000;
export const DEFAULT_QUERY_TIMEOUT_MS = 5_000;
export const MAX_QUERY_TIMEOUT_MS = 60_000;

export type QueryCell = string | number | boolean | null;

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: QueryCell[][];
  /** More rows than the limit: only the first `limit` are here. */
  truncated: boolean;
  durationMs: number;
}

const refused = (message: string) => new TaskframeError(TaskframeErrorCode.InvalidArgument, message);
const VIEWS = QUERY_VIEWS.join(", ");
/** The user's query becomes a subquery: a data-modifying WITH cannot stand there, nor a second statement. */
const WRAP_START = "select * from (\n";
const WRAP_END = "\n) as taskframe_rows limit";
/** Statements that are not reads, named in the refusal (anything else is Postgres' to judge). */
const OTHER_STATEMENTS = new Set(
  (
    "INSERT UPDATE DELETE MERGE DROP CREATE ALTER TRUNCATE GRANT REVOKE COPY CALL DO SET RESET VACUUM " +
    "ANALYZE REINDEX CLUSTER LOCK COMMENT REFRESH BEGIN START COMMIT ROLLBACK PREPARE EXECUTE LISTEN NOTIFY"
  ).split(" "),
);

/**
 * Runs a user's SELECT over the query views (`task query`), with three
 * guards: a read-only transaction; the reader role (it can read the views,
 * not the tables under them); and one statement only, the query as a
 * subquery with a bound parameter (the row limit), which Postgres parses as
 * a single statement and where a writing WITH cannot stand. A second
 * statement could otherwise undo the role (RESET ROLE). A statement
 * timeout bounds it, and at most `limit` rows come back.
 */
export async function runReadOnlyQuery(
  database: Database,
  text: string,
  options: { limit?: number; timeoutMs?: number } = {},
): Promise<QueryResult> {
  const query = text.trim().replace(/;\s*$/, "");
  if (!query)
    throw refused(
      "the query is empty: expected a SELECT, e.g. SELECT state, count(*) FROM tasks GROUP BY state",
    );
  // only for the message: the transaction, the role and the cursor are what refuse
  const first = /^\s*\(*\s*([A-Za-z]+)/.exec(query)?.[1]?.toUpperCase();
  if (first && OTHER_STATEMENTS.has(first))
    throw refused(
      `task query only reads: it runs one SELECT (or WITH ... SELECT, VALUES, TABLE), got ${first}`,
    );
  const limit = Math.min(options.limit || DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT);
  const timeoutMs = Math.min(options.timeoutMs || DEFAULT_QUERY_TIMEOUT_MS, MAX_QUERY_TIMEOUT_MS);
  const started = performance.now();
  try {
    return await database.db.transaction(async (tx) => {
      await tx.execute(sql.raw("set transaction read only"));
      await tx.execute(sql.raw(`set local statement_timeout = ${timeoutMs}`));
      await tx.execute(sql.raw(`set local search_path = ${QUERY_SCHEMA}, pg_catalog`));
      await tx.execute(sql.raw(`set local role ${QUERY_ROLE}`));
      // the limit travels as a parameter: with one, Postgres parses the text as one statement only
      const result = await tx.execute(sql`${sql.raw(`${WRAP_START}${query}${WRAP_END}`)} ${limit + 1}`);
      const columns = columnsOf(result);
      const names = new Set<string>();
      for (const { name } of columns) {
        if (names.has(name))
          throw refused(
            `two columns are named ${JSON.stringify(name)}: give them names of their own (... AS other)`,
          );
        names.add(name);
      }
      const records = rowsOf<Record<string, unknown>>(result);
      const rows = records.slice(0, limit).map((record) => columns.map(({ name }) => cell(record[name])));
      return {
        columns,
        rows,
        truncated: records.length > limit,
        durationMs: Math.round(performance.now() - started),
      };
    });
  } catch (error) {
    throw explain(error, timeoutMs);
  }
}

/** Names and types of the result's columns: postgres-js has `columns`, PGlite `fields`. */
function columnsOf(result: unknown): { name: string; type: string }[] {
  const withColumns = result as {
    columns?: { name: string; type: number }[];
    fields?: { name: string; dataTypeID: number }[];
  };
  if (withColumns.columns) return withColumns.columns.map((c) => ({ name: c.name, type: typeName(c.type) }));
  return (withColumns.fields ?? []).map((f) => ({ name: f.name, type: typeName(f.dataTypeID) }));
}

/** Postgres type oids to the names people know (the common ones; others by oid). */
const TYPE_NAMES: Record<number, string> = {
  16: "boolean",
  17: "bytea",
  20: "bigint",
  21: "smallint",
  23: "integer",
  25: "text",
  114: "json",
  700: "real",
  701: "double precision",
  1043: "varchar",
  1082: "date",
  1114: "timestamp",
  1184: "timestamptz",
  1186: "interval",
  1700: "numeric",
  2950: "uuid",
  3802: "jsonb",
};

const typeName = (oid: number) => TYPE_NAMES[oid] ?? `oid ${oid}`;

/** A value as the CLI and JSON show it: numbers and booleans as such, times in ISO 8601, the rest as text. */
function cell(value: unknown): QueryCell {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "bigint")
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
  return JSON.stringify(value);
}

/** Postgres' refusals, said for this command. */
function explain(error: unknown, timeoutMs: number): unknown {
  if (error instanceof TaskframeError) return error;
  let code: string | undefined;
  let message = error instanceof Error ? error.message : String(error);
  let position: string | undefined;
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    const candidate = (e as { code?: unknown }).code;
    if (typeof candidate === "string" && /^[0-9A-Z]{5}$/.test(candidate)) {
      code = candidate;
      message = (e as Error).message;
      position = (e as { position?: string }).position;
      break;
    }
  }
  const declared = WRAP_START.length;
  const at = position && Number(position) > declared ? ` (at character ${Number(position) - declared})` : "";
  switch (code) {
    case "25006": // read_only_sql_transaction
    case "0A000": // feature_not_supported: a writing WITH below the top level
      return refused(`task query only reads: ${message}`);
    case "42601": // syntax_error: also a second statement, which one parsed statement cannot hold
      return refused(`${message}${at}: task query runs one SELECT`);
    case "42501": // insufficient_privilege
      return refused(`${message}: task query reads the views ${VIEWS} (docs/query.md)`);
    case "42P01": // undefined_table
      return refused(`${message}${at}: the views are ${VIEWS}`);
    case "57014": // query_canceled by statement_timeout
      return refused(
        `the query ran past its ${timeoutMs} ms limit (--timeout, at most ${MAX_QUERY_TIMEOUT_MS} ms)`,
      );
    case undefined:
      return error;
    default:
      if (code.startsWith("42") || code.startsWith("22") || code.startsWith("0A"))
        return refused(`${message}${at}`);
      return error;
  }
}
