import { sql } from "drizzle-orm";
import type { Database, Tx } from "../database.js";

/**
 * Postgres's clock, in ms since the epoch. Times the hubs compare with one
 * another (retry intervals, schedule slots) are measured on it, so that a
 * hub whose clock is skewed or jumps still keeps them.
 */
export async function databaseNowMs(database: Database, tx?: Tx): Promise<number> {
  const [row] = await database.rows<{ now: number }>(
    sql`select round(extract(epoch from clock_timestamp()) * 1000)::float8 as now`,
    tx,
  );
  return Math.floor(row!.now);
}
