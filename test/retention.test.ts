import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { MemoryControlBus, MemoryEventBus } from "../core/event-bus.js";
import { EvaluationOutcome, FireOutcome } from "../core/gen/taskframe/v1/schedule_pb.js";
import { MemoryWorkQueue } from "../core/memory-work-queue.js";
import { Hub } from "../hub/hub.js";
import { DATABASE_KINDS } from "./helpers/databases.js";
import { runSpec, runToEnd, shellTask, startEngine, type TestEngine } from "./helpers/engine.js";

const DAY_MS = 86_400_000;

/** The leading hub's job (30 days, one run per batch), over the engine's store (an embedded hub always leads). */
const pruningHub = (engine: TestEngine) =>
  new Hub({
    store: engine.engine.store,
    queue: new MemoryWorkQueue(),
    events: new MemoryEventBus(),
    control: new MemoryControlBus(),
    schedules: { fire: false },
    retention: { keepMs: 30 * DAY_MS, batch: 1 },
  });

describe.each(DATABASE_KINDS)("retention on %s", (kind) => {
  it("deletes runs finished before the window, with their tasks, events and logs; keeps the rest", async () => {
    await using engine = await startEngine(kind);
    const old = await runToEnd(
      engine.client,
      runSpec("old", [shellTask("a", "echo old"), shellTask("b", "true")]),
    );
    const recent = await runToEnd(engine.client, runSpec("recent", [shellTask("a", "echo recent")]));
    const { database } = engine.engine.store;
    await database.rows(
      sql`update runs set finished_at = finished_at - interval '40 days' where id = ${old.run.id}`,
    );
    const count = async (table: string, runId: string) => {
      const [row] = await database.rows<{ n: number }>(
        sql`select count(*)::int as n from ${sql.identifier(table)}
            where task_id in (select id from tasks where run_id = ${runId})`,
      );
      return row!.n;
    };
    expect(await count("task_events", old.run.id)).toBeGreaterThan(0);
    expect(await count("log_chunks", old.run.id)).toBeGreaterThan(0);
    const oldTasks = [...old.tasks.values()].map((t) => t.id);

    const hub = pruningHub(engine);
    expect(await hub.prune()).toBe(1);
    expect(await hub.prune()).toBe(0);

    const left = await database.rows<{ id: string }>(sql`select id from runs`);
    expect(left.map((r) => r.id)).toEqual([recent.run.id]);
    const orphans = await database.rows<{ n: number }>(
      sql`select (select count(*) from task_events where task_id = any(${sql.param(oldTasks)}::uuid[]))::int
            + (select count(*) from log_chunks where task_id = any(${sql.param(oldTasks)}::uuid[]))::int
            + (select count(*) from tasks where id = any(${sql.param(oldTasks)}::uuid[]))::int as n`,
    );
    expect(orphans[0]!.n).toBe(0);
    expect(await count("task_events", recent.run.id)).toBeGreaterThan(0);
    // what stays is still readable
    const { tasks } = await engine.client.listTasks({ runId: recent.run.id });
    expect(tasks.map((t) => t.name)).toEqual(["a"]);
  });

  it("compacts schedules' history: fired slots and finished evaluations before the window go, queued and pending ones stay", async () => {
    await using engine = await startEngine(kind, { sidecar: false });
    const { database } = engine.engine.store;
    const run = "00000000-0000-7000-8000-000000000001";
    await database.rows(sql`insert into schedules (name, spec, kind) values ('beat', ''::bytea, 'cron')`);
    await database.rows(
      sql`insert into schedule_fires (schedule, slot, fired_at, outcome, cause, run_id) values
            ('beat', now() - interval '40 days', now() - interval '40 days', ${FireOutcome.STARTED}, 1, ${run}::uuid),
            ('beat', now() - interval '39 days', now() - interval '39 days', ${FireOutcome.QUEUED}, 1, null),
            ('beat', now() - interval '1 day', now() - interval '1 day', ${FireOutcome.STARTED}, 1, ${run}::uuid)`,
    );
    await database.rows(
      sql`insert into condition_evaluations (schedule, slot, outcome, run_id, task_id) values
            ('beat', now() - interval '40 days', ${EvaluationOutcome.MET}, ${run}::uuid, ${run}::uuid),
            ('beat', now() - interval '39 days', ${EvaluationOutcome.PENDING}, ${run}::uuid, ${run}::uuid),
            ('beat', now() - interval '1 day', ${EvaluationOutcome.NOT_MET}, ${run}::uuid, ${run}::uuid)`,
    );
    await pruningHub(engine).prune();
    const ages = (table: string) =>
      database.rows<{ days: number }>(
        sql`select round(extract(epoch from now() - slot) / 86400)::int as days from ${sql.identifier(table)} order by slot`,
      );
    expect((await ages("schedule_fires")).map((r) => r.days)).toEqual([39, 1]);
    expect((await ages("condition_evaluations")).map((r) => r.days)).toEqual([39, 1]);
  });

  it("deletes refused requests recorded before the window, and keeps the recent ones", async () => {
    await using engine = await startEngine(kind, { sidecar: false });
    const { database } = engine.engine.store;
    await database.rows(
      sql`insert into auth_denials (at, rpc, code, reason) values
            (now() - interval '40 days', 'HubService/ListRuns', 'unauthenticated', 'old'),
            (now() - interval '31 days', 'HubService/ListRuns', 'unauthenticated', 'old'),
            (now() - interval '1 day', 'HubService/ListRuns', 'unauthenticated', 'recent')`,
    );
    await pruningHub(engine).prune();
    const left = await database.rows<{ reason: string }>(sql`select reason from auth_denials`);
    expect(left.map((r) => r.reason)).toEqual(["recent"]);
  });
});
