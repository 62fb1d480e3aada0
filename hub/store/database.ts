import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import postgres from "postgres";

/** Where the hub keeps its record: a Postgres server, or embedded PGlite in a directory. */
export type DatabaseTarget =
  | { kind: "postgres"; url: string; maxConnections?: number }
  | { kind: "pglite"; dataDir: string };

// Both drivers produce a PgDatabase; queries are written once against it.
export type Db = PgDatabase<PgQueryResultHKT>;
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface Database extends AsyncDisposable {
  readonly db: Db;
  readonly target: DatabaseTarget;
  /**
   * Runs `work` in a transaction, again (up to a few times) if Postgres
   * aborted it to break a deadlock or a serialization conflict: both are
   * expected when many writers touch the same runs, and retrying is the cure.
   */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs `sql` and returns its rows, whichever driver is underneath. */
  rows<T>(query: SQL, executor?: Pick<Db, "execute">): Promise<T[]>;
  close(): Promise<void>;
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === "pglite") {
    mkdirSync(target.dataDir, { recursive: true });
    const client = await PGlite.create({ dataDir: target.dataDir });
    const db = drizzlePglite(client) as unknown as Db;
    return createDatabase(target, db, () => client.close());
  }
  const client = postgres(target.url, {
    max: target.maxConnections ?? 10,
    onnotice: () => {},
    // bigint columns are read as numbers, as PGlite does (ours stay below 2^53)
    types: {
      bigint: { to: 20, from: [20], parse: (value: string) => Number(value), serialize: String },
    },
  });
  const db = drizzlePostgres(preparingStatements(client)) as unknown as Db;
  return createDatabase(target, db, () => client.end({ timeout: 5 }));
}

// biome-ignore lint/suspicious/noExplicitAny: any custom types
type Sql = postgres.Sql<any>;

/**
 * drizzle runs every query through `unsafe()`, which postgres.js does not
 * prepare: each query with parameters then costs two round trips (describe,
 * then execute) and a parse and plan on the server. Prepared, a query whose
 * text was seen before on that connection is one round trip. Our hot-path
 * queries have a fixed text (arrays travel as one parameter), and a
 * connection's statements go with it when it is recycled (max_lifetime).
 */
function preparingStatements<T extends Sql>(client: T): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === "unsafe") {
        return (query: string, args?: unknown[], options?: object) =>
          target.unsafe(query, args as postgres.ParameterOrJSON<never>[], { prepare: true, ...options });
      }
      if (property === "begin" || property === "savepoint") {
        return (...args: unknown[]) =>
          (Reflect.get(target, property) as (...a: unknown[]) => unknown)(
            ...args.map((arg) =>
              typeof arg === "function" ? (scoped: Sql) => arg(preparingStatements(scoped)) : arg,
            ),
          );
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

function createDatabase(target: DatabaseTarget, db: Db, end: () => Promise<void>): Database {
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= end();
    return closed;
  };
  return {
    db,
    target,
    async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await db.transaction(work);
        } catch (error) {
          if (attempt >= MAX_TRANSACTION_ATTEMPTS || !isRetryableConflict(error)) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
        }
      }
    },
    async rows<T>(query: SQL, executor: Pick<Db, "execute"> = db): Promise<T[]> {
      return rowsOf<T>(await executor.execute(query));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** postgres-js returns an array of rows; PGlite returns `{ rows }`. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return (result as { rows: T[] }).rows;
}

const MAX_TRANSACTION_ATTEMPTS = 5;
const DEADLOCK_DETECTED = "40P01";
const SERIALIZATION_FAILURE = "40001";

function isRetryableConflict(error: unknown): boolean {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === DEADLOCK_DETECTED || code === SERIALIZATION_FAILURE) return true;
  }
  return false;
}

/** The database's own words for a failed query (drizzle wraps them in "Failed query: <the whole SQL>"). */
export function databaseErrorMessage(error: unknown): string {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof Error && !e.message.startsWith("Failed query:"))
      return e.message.split("\n")[0] ?? e.message;
  }
  return error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error);
}

/** A connection URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<invalid database URL>";
  }
}
