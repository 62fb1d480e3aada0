import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, type ConnectError } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ParquetTableFile } from "../cli/export/parquet-table-file.js";
import { type QueryResponse, StatsGrouping } from "../core/gen/taskframe/v1/hub_pb.js";
import { DATABASE_KINDS } from "./helpers/databases.js";
import { runSpec, runToEnd, shellTask, startEngine, type TestEngine } from "./helpers/engine.js";

/** Rows as plain values (null for SQL NULL), for comparing. */
const plain = (response: QueryResponse) =>
  response.rows.map((row) => row.values.map((value) => (value.kind.case ? value.kind.value : null)));

describe.each(DATABASE_KINDS)("task query on %s", (kind) => {
  let engine: TestEngine;
  let runId = "";

  beforeAll(async () => {
    engine = await startEngine(kind, { slots: 4 });
    const finished = await runToEnd(
      engine.client,
      runSpec("query-me", [
        shellTask("ok", "echo fine"),
        shellTask("broken", "exit 3", { retry: { retries: 1, intervalMs: 10n } }),
        shellTask("after", "true", { needs: ["ok"] }),
      ]),
    );
    runId = finished.run.id;
  });
  afterAll(async () => {
    await engine?.[Symbol.asyncDispose]();
  });

  const query = (sql: string, options: { limit?: number; timeoutMs?: number } = {}) =>
    engine.client.query({ sql, ...options });
  const refusal = (sql: string, options: { limit?: number; timeoutMs?: number } = {}) =>
    query(sql, options).then(
      () => "accepted",
      (error: ConnectError) => `${Code[error.code]}: ${error.rawMessage}`,
    );

  it("answers SQL over the views, with column names and types", async () => {
    const response = await query(
      `SELECT name, state, exit_code, attempt FROM tasks WHERE run_id = '${runId}' ORDER BY name`,
    );
    expect(response.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      "name:text",
      "state:text",
      "exit_code:integer",
      "attempt:integer",
    ]);
    expect(plain(response)).toEqual([
      ["after", "SUCCEEDED", 0, 1],
      ["broken", "FAILED", 3, 2],
      ["ok", "SUCCEEDED", 0, 1],
    ]);
    expect(response.truncated).toBe(false);
  });

  it("has attempts, events, runs and hosts to aggregate", async () => {
    const attempts = await query(
      `SELECT task_name, attempt, outcome, exit_code, duration_ms >= 0 AS timed, host <> '' AS has_host
       FROM attempts WHERE run_id = '${runId}' AND task_name = 'broken' ORDER BY attempt`,
    );
    expect(plain(attempts)).toEqual([
      ["broken", 1, "RETRYING", 3, true, true],
      ["broken", 2, "FAILED", 3, true, true],
    ]);
    const events = await query(
      `SELECT to_state, count(*) AS n FROM task_events WHERE run_id = '${runId}' GROUP BY to_state ORDER BY to_state`,
    );
    expect(Object.fromEntries(plain(events) as [string, number][])).toMatchObject({
      CREATED: 3,
      FAILED: 1,
      RETRYING: 1,
      SUCCEEDED: 2,
    });
    const runs = await query(
      `SELECT name, state, total_tasks, finished_at IS NOT NULL FROM runs WHERE id = '${runId}'`,
    );
    expect(plain(runs)).toEqual([["query-me", "FAILED", 3, true]]);
    const hosts = await query("SELECT host, tasks FROM hosts");
    expect(plain(hosts).length).toBeGreaterThan(0);
    const scheduled = await query("SELECT count(*) AS schedules FROM schedules");
    expect(plain(scheduled)).toEqual([[0]]);
  });

  it("returns at most the limit, and says so", async () => {
    const response = await query("SELECT * FROM task_events", { limit: 2 });
    expect(response.rows).toHaveLength(2);
    expect(response.truncated).toBe(true);
  });

  it("refuses writes, a second statement, and the tables under the views, saying why", async () => {
    expect(await refusal("DELETE FROM tasks")).toBe(
      "InvalidArgument: task query only reads: it runs one SELECT (or WITH ... SELECT, VALUES, TABLE), got DELETE",
    );
    expect(await refusal("SELECT 1; DELETE FROM tasks")).toMatch(
      /^InvalidArgument: .*one SELECT|multiple commands/,
    );
    expect(await refusal("WITH gone AS (DELETE FROM tasks RETURNING id) SELECT * FROM gone")).toMatch(
      /^InvalidArgument: task query only reads: .*data-modifying/,
    );
    expect(await refusal("SELECT 1; DROP TABLE tasks")).toMatch(/^InvalidArgument: /);
    // a second statement would run as the hub's own user: it must never run
    const pwned = join(engine.dir, "pwned");
    for (const injection of [
      `SELECT 1) AS x; RESET ROLE; COPY (SELECT 1) TO PROGRAM 'touch ${pwned}'; SELECT * FROM (SELECT 1`,
      `SELECT 1; RESET ROLE; COPY (SELECT 1) TO PROGRAM 'touch ${pwned}'`,
    ])
      expect(await refusal(injection)).toMatch(/^InvalidArgument: /);
    expect(existsSync(pwned)).toBe(false);
    expect(await refusal("SELECT * FROM public.tasks")).toMatch(
      /^InvalidArgument: permission denied for table tasks: task query reads the views runs, tasks/,
    );
    expect(await refusal("SELECT * FROM outbox")).toMatch(
      /^InvalidArgument: relation "outbox" does not exist/,
    );
    expect(await refusal("SELECT set_config('transaction_read_only', 'off', true)")).not.toBe("accepted");
    expect(
      await refusal("SELECT name FROM tasks WHERE name = '' OR 1=1 -- a comment to the end of the line"),
    ).toBe("accepted");
    // the tables are still there
    expect(plain(await query(`SELECT count(*) FROM tasks WHERE run_id = '${runId}'`))).toEqual([[3]]);
  });

  // PGlite runs statements on this thread and cannot interrupt one (docs/query.md says so)
  it.skipIf(kind === "pglite")("stops a query at its timeout", async () => {
    expect(await refusal("SELECT pg_sleep(5)", { timeoutMs: 200 })).toBe(
      "InvalidArgument: the query ran past its 200 ms limit (--timeout, at most 60000 ms)",
    );
  });

  it("says what is wrong with a query", async () => {
    expect(await refusal("")).toMatch(/the query is empty/);
    expect(await refusal("SELEC name FROM tasks")).toMatch(
      /syntax error at or near "FROM" \(at character 12\)/,
    );
    expect(await refusal("SELECT 1 AS a, 2 AS a")).toMatch(/two columns are named "a"/);
  });

  it("sums up what ended lately: task stats", async () => {
    const stats = await engine.client.getStats({ sinceMs: 3_600_000n, by: StatsGrouping.NAME });
    const total = stats.total!;
    expect([total.tasks, total.succeeded, total.failed, total.retries]).toEqual([3n, 2n, 1n, 1n]);
    expect(total.perSecond).toBeCloseTo(3 / 3600, 6);
    for (const p of [total.queueWait!, total.runTime!]) {
      expect(p.p50).toBeGreaterThanOrEqual(0);
      expect(p.p95).toBeGreaterThanOrEqual(p.p50);
      expect(p.p99).toBeGreaterThanOrEqual(p.p95);
    }
    expect(stats.rows.map((r) => [r.key, r.tasks, r.failed, r.retries])).toEqual([
      ["after", 1n, 0n, 0n],
      ["broken", 1n, 1n, 1n],
      ["ok", 1n, 0n, 0n],
    ]);
    expect(stats.topFailing.map((f) => [f.name, f.failed, f.tasks])).toEqual([["broken", 1n, 1n]]);
    expect(stats.topFailing[0]!.lastDetail).toContain("exit code 3");
    // the timeline: the whole window in equal buckets, the three endings in the last ones
    expect(stats.timeline).toHaveLength(60);
    expect(stats.timeline.every((b) => b.widthMs === 60_000n)).toBe(true);
    expect(stats.timeline[0]!.startUnixMs).toBe(stats.fromUnixMs);
    const sum = (key: "succeeded" | "failed" | "other") => stats.timeline.reduce((n, b) => n + b[key], 0n);
    expect([sum("succeeded"), sum("failed"), sum("other")]).toEqual([2n, 1n, 0n]);
    expect(stats.timeline.slice(0, 55).every((b) => b.succeeded + b.failed === 0n)).toBe(true);
    const byState = await engine.client.getStats({ sinceMs: 3_600_000n, by: StatsGrouping.STATE });
    expect(byState.rows.map((r) => [r.key, r.tasks])).toEqual([
      ["SUCCEEDED", 2n],
      ["FAILED", 1n],
    ]);
    const nothing = await engine.client.getStats({ sinceMs: 1n });
    expect(nothing.total!.tasks).toBe(0n);
  });

  it("exports a finished day as NDJSON, table by table, and refuses a day that has not ended", async () => {
    // the test's run, moved two days back: a day that has ended
    const database = engine.engine.store.database;
    await database.rows(sql`update runs set created_at = created_at - interval '2 days' where id = ${runId}`);
    await database.rows(sql`update task_events set at = at - interval '2 days' where run_id = ${runId}`);
    const [row] = await database.rows<{ day: string }>(
      sql`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day from runs where id = ${runId}`,
    );
    const day = row!.day;
    const lines = new Map<string, unknown[]>();
    for await (const batch of engine.client.exportDay({ day })) {
      if (!lines.has(batch.table)) {
        // each table opens with its columns, before any row
        expect([batch.rows, batch.columns.length > 0]).toEqual([0, true]);
        lines.set(batch.table, []);
        continue;
      }
      const parsed = Buffer.from(batch.ndjson)
        .toString()
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line));
      expect(parsed).toHaveLength(batch.rows);
      lines.set(batch.table, [...(lines.get(batch.table) ?? []), ...parsed]);
    }
    const runs = lines.get("runs") as { id: string; state: string }[];
    expect(runs.find((r) => r.id === runId)?.state).toBe("FAILED");
    const tasks = (lines.get("tasks") as { run_id: string; name: string; finished_at: unknown }[]).filter(
      (t) => t.run_id === runId,
    );
    expect(tasks.map((t) => t.name).sort()).toEqual(["after", "broken", "ok"]);
    const events = (lines.get("task_events") as { run_id: string }[]).filter((e) => e.run_id === runId);
    const [counted] = await database.rows<{ n: number }>(
      sql`select count(*)::int as n from task_events where run_id = ${runId}`,
    );
    expect(events).toHaveLength(counted!.n);

    // the same day as Parquet, typed from the columns the hub names, read back with hyparquet
    const dir = await mkdtemp(join(tmpdir(), "taskframe-parquet-"));
    const files = new Map<string, ParquetTableFile>();
    for await (const batch of engine.client.exportDay({ day })) {
      if (batch.columns.length > 0)
        files.set(batch.table, new ParquetTableFile(join(dir, `${batch.table}.parquet`), batch.columns));
      await files.get(batch.table)!.append(batch.ndjson);
    }
    for (const file of files.values()) await file.close();
    expect([...files.keys()]).toEqual(["runs", "tasks", "task_events"]);
    const read = async (table: string) =>
      parquetReadObjects({ file: await asyncBufferFromFile(join(dir, `${table}.parquet`)) });
    const typed = (await read("tasks")).filter((t) => t.run_id === runId);
    expect(typed.map((t) => t.name).sort()).toEqual(["after", "broken", "ok"]);
    const broken = typed.find((t) => t.name === "broken")!;
    expect([broken.state, broken.exit_code, broken.attempt]).toEqual(["FAILED", 3n, 2n]);
    expect(broken.finished_at).toBeInstanceOf(Date);
    expect((broken.finished_at as Date).getTime()).toBe(
      Date.parse(tasks.find((t) => t.name === "broken")!.finished_at as string),
    );
    expect((await read("task_events")).length).toBe(lines.get("task_events")!.length);
    expect((await read("runs")).find((r) => r.id === runId)?.state).toBe("FAILED");
    await rm(dir, { recursive: true });

    const refusal = async (d: string) => {
      try {
        for await (const _ of engine.client.exportDay({ day: d }));
        return "accepted";
      } catch (error) {
        return (error as ConnectError).rawMessage;
      }
    };
    expect(await refusal(new Date().toISOString().slice(0, 10))).toMatch(/has not ended yet/);
    expect(await refusal("2026-02-30")).toMatch(/expected a day as YYYY-MM-DD/);
  });
});
