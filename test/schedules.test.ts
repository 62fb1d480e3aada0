import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, type ConnectError } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadSchedules } from "../core/definitions/schedules.js";
import {
  CatchUpPolicy,
  ConditionMode,
  EvaluationOutcome,
  FireCause,
  FireOutcome,
  OverlapPolicy,
  type ScheduleFire,
  type SchedulePolicySchema,
  type ScheduleSpec,
  ScheduleSpecSchema,
} from "../core/gen/taskframe/v1/schedule_pb.js";
import { packageRoot } from "../core/package-root.js";
import { RunState, TaskState } from "../core/states.js";
import { DATABASE_KINDS } from "./helpers/databases.js";
import { runSpec, shellTask, startEngine, type TestEngine, waitForRun } from "./helpers/engine.js";

/*
 * Schedules on the embedded engine (PGlite and Postgres), driven by an
 * injected clock: each test registers at a time of its choosing and calls
 * the scheduler's pass (`tick`) at the instants that matter, so a minute
 * apart costs nothing. The tasks themselves really run.
 */

const T0 = Date.parse("2026-03-01T10:00:30Z");
const minute = (n: number) => Date.parse("2026-03-01T10:00:00Z") + n * 60_000;

type Policy = MessageInitShape<typeof SchedulePolicySchema>;

describe.each(DATABASE_KINDS)("schedules on %s", (kind) => {
  let engine: TestEngine;
  let now = T0;
  let counter = 0;

  beforeAll(async () => {
    engine = await startEngine(kind, { schedules: { fire: false, clock: async () => now } });
  });
  afterAll(async () => {
    await engine?.[Symbol.asyncDispose]();
  });

  const scheduler = () => engine.engine.hub.schedules;
  const tick = async (at: number) => {
    now = at;
    await scheduler().tick(at);
  };
  const uniqueName = (base: string) => `${base}-${++counter}`;

  function cronSchedule(
    name: string,
    script: string,
    policy: Policy = {},
    expression = "* * * * *",
  ): ScheduleSpec {
    return create(ScheduleSpecSchema, {
      name,
      run: runSpec(name, [shellTask("work", script)]),
      trigger: { case: "cron", value: { expression, timezone: "UTC" } },
      policy,
    });
  }

  async function register(spec: ScheduleSpec, at = T0) {
    now = at;
    const { schedules } = await engine.client.putSchedules({ schedules: [spec] });
    return schedules[0]!;
  }

  async function fires(name: string): Promise<ScheduleFire[]> {
    const { fires } = await engine.client.getScheduleHistory({ name, limit: 500 });
    return [...fires].reverse();
  }

  const describeFire = (fire: ScheduleFire) =>
    `${new Date(Number(fire.slotUnixMs)).toISOString().slice(11, 19)} ${FireCause[fire.cause]} ${FireOutcome[fire.outcome]}`;

  /** A script that waits until `release` exists: a run that stays RUNNING as long as the test wants. */
  const blockingScript = (release: string) => `while [ ! -e '${release}' ]; do sleep 0.05; done`;

  it("fires each slot once, with its run labelled, and says when it fires next", async () => {
    const name = uniqueName("every-minute");
    const registered = await register(cronSchedule(name, "echo tick"));
    expect(Number(registered.nextFireUnixMs)).toBe(minute(1));

    await tick(minute(1) + 100);
    await tick(minute(1) + 200); // a second pass at the same slot fires nothing more
    const [fire] = await fires(name);
    expect((await fires(name)).map(describeFire)).toEqual(["10:01:00 SCHEDULE STARTED"]);
    const finished = await waitForRun(engine.client, fire!.runId);
    expect(finished.run.state).toBe(RunState.SUCCEEDED);
    expect(finished.run.labels["taskframe.schedule"]).toBe(name);
    expect(finished.run.labels["taskframe.slot"]).toBe("2026-03-01T10:01:00.000Z");

    const [listed] = (await engine.client.listSchedules({ names: [name] })).schedules;
    expect(Number(listed!.nextFireUnixMs)).toBe(minute(2));
    expect(listed!.lastFire?.runId).toBe(fire!.runId);
  });

  it("many passes at once, on two schedulers, still fire each slot once", async () => {
    const name = uniqueName("contended");
    await register(cronSchedule(name, "true", { overlap: OverlapPolicy.ALLOW }, "* * * * * *"));
    const { Scheduler } = await import("../hub/schedules/scheduler.js");
    const other = new Scheduler({
      store: engine.engine.store,
      publish: async () => {},
      cancelRun: async () => {},
      clock: async () => now,
    });
    now = T0 + 5_000;
    await Promise.all([scheduler().tick(now), other.tick(now), scheduler().tick(now), other.tick(now)]);
    const history = await fires(name);
    // the slots T0 .. T0+5s, each once (runs the other scheduler did not publish are the outbox sweep's)
    expect(history.map(describeFire)).toEqual([
      "10:00:30 SCHEDULE STARTED",
      "10:00:31 SCHEDULE STARTED",
      "10:00:32 SCHEDULE STARTED",
      "10:00:33 SCHEDULE STARTED",
      "10:00:34 SCHEDULE STARTED",
      "10:00:35 SCHEDULE STARTED",
    ]);
    expect(new Set(history.map((f) => f.runId)).size).toBe(6);
    await engine.client.deleteSchedule({ name });
  });

  // PGlite runs in this process and takes its clock from it: one host, nothing to be skewed against
  it.skipIf(kind === "pglite")(
    "reads the time from Postgres: a host clock an hour fast fires nothing early",
    async () => {
      const { Scheduler } = await import("../hub/schedules/scheduler.js");
      const { databaseNowMs } = await import("../hub/store/queries/database-clock.js");
      const dbClock = new Scheduler({
        store: engine.engine.store,
        publish: async () => {},
        cancelRun: async () => {},
      });
      const name = uniqueName("skewed");
      const startMs =
        Math.ceil(((await databaseNowMs(engine.engine.store.database)) + 1_500) / 1_000) * 1_000;
      await dbClock.put([
        cronSchedule(
          name,
          "true",
          { overlap: OverlapPolicy.ALLOW, startUnixMs: BigInt(startMs) },
          "* * * * * *",
        ),
      ]);
      vi.useFakeTimers({ now: Date.now() + 3_600_000, toFake: ["Date"] });
      try {
        await dbClock.tick();
        expect(await fires(name)).toEqual([]);
        await sleep(Math.max(0, startMs - (await databaseNowMs(engine.engine.store.database))) + 300);
        await dbClock.tick();
      } finally {
        vi.useRealTimers();
      }
      const fired = await fires(name);
      expect(fired.length).toBeGreaterThanOrEqual(1);
      expect(fired.length).toBeLessThanOrEqual(3);
      expect(Number(fired[0]!.slotUnixMs)).toBe(startMs);
      await engine.client.deleteSchedule({ name });
    },
  );

  it("a schedule that cannot fire does not hold up the others", async () => {
    const broken = uniqueName("broken-spec");
    const healthy = uniqueName("healthy");
    await register(cronSchedule(broken, "true"));
    await register(cronSchedule(healthy, "true"));
    // what a newer version could have stored, or a damaged row: not a ScheduleSpec
    await engine.engine.store.database.rows(
      sql`update schedules set spec = ${new Uint8Array([0xff, 0xff, 0xff])} where name = ${broken}`,
    );
    await tick(minute(1));
    expect((await fires(healthy)).map(describeFire)).toEqual(["10:01:00 SCHEDULE STARTED"]);
    expect(await fires(broken)).toEqual([]);
    await engine.client.deleteSchedule({ name: broken });
  });

  it("after downtime: catch-up latest, skip and backfill(max=3)", async () => {
    const latest = uniqueName("latest");
    const skip = uniqueName("skip");
    const backfill = uniqueName("backfill");
    await register(cronSchedule(latest, "true"));
    await register(cronSchedule(skip, "true", { catchUp: CatchUpPolicy.SKIP }));
    await register(
      cronSchedule(backfill, "true", {
        catchUp: CatchUpPolicy.BACKFILL,
        backfillMax: 3,
        overlap: OverlapPolicy.ALLOW,
      }),
    );
    await tick(minute(10) + 30_000); // no hub ran from 10:00:30 to 10:10:30

    expect((await fires(latest)).map(describeFire)).toEqual([
      "10:01:00 SCHEDULE MISSED",
      "10:10:00 CATCH_UP STARTED",
    ]);
    expect((await fires(latest))[0]!.detail).toContain("9 slots missed");
    expect((await fires(skip)).map(describeFire)).toEqual(["10:01:00 SCHEDULE MISSED"]);
    expect((await fires(skip))[0]!.detail).toContain("10 slots missed");
    expect((await fires(backfill)).map(describeFire)).toEqual([
      "10:01:00 SCHEDULE MISSED",
      "10:08:00 CATCH_UP STARTED",
      "10:09:00 CATCH_UP STARTED",
      "10:10:00 CATCH_UP STARTED",
    ]);
    for (const name of [latest, skip, backfill]) {
      const [schedule] = (await engine.client.listSchedules({ names: [name] })).schedules;
      expect(Number(schedule!.nextFireUnixMs)).toBe(minute(11));
    }
  });

  it("overlap skip: a slot whose previous run still runs is recorded as skipped", async () => {
    const name = uniqueName("overlap-skip");
    const release = join(engine.dir, `${name}.release`);
    await register(cronSchedule(name, blockingScript(release)));
    await tick(minute(1));
    await tick(minute(2));
    const [first, second] = await fires(name);
    expect(second!.outcome).toBe(FireOutcome.SKIPPED);
    expect(second!.detail).toContain(first!.runId);
    await writeFile(release, "");
    await waitForRun(engine.client, first!.runId);
    await tick(minute(3));
    expect((await fires(name)).map(describeFire)).toEqual([
      "10:01:00 SCHEDULE STARTED",
      "10:02:00 SCHEDULE SKIPPED",
      "10:03:00 SCHEDULE STARTED",
    ]);
  });

  it("overlap queue: slots wait for the previous run and start one at a time, in order", async () => {
    const name = uniqueName("overlap-queue");
    const release = join(engine.dir, `${name}.release`);
    await register(cronSchedule(name, blockingScript(release), { overlap: OverlapPolicy.QUEUE }));
    await tick(minute(1));
    await tick(minute(2));
    await tick(minute(3));
    expect((await fires(name)).map(describeFire)).toEqual([
      "10:01:00 SCHEDULE STARTED",
      "10:02:00 SCHEDULE QUEUED",
      "10:03:00 SCHEDULE QUEUED",
    ]);
    expect((await engine.client.listSchedules({ names: [name] })).schedules[0]!.queued).toBe(2);
    const [first] = await fires(name);
    await writeFile(release, "");
    await waitForRun(engine.client, first!.runId);
    await tick(minute(3) + 1_000);
    const second = (await fires(name))[1]!;
    expect(second.outcome).toBe(FireOutcome.STARTED);
    expect((await fires(name))[2]!.outcome).toBe(FireOutcome.QUEUED);
    await waitForRun(engine.client, second.runId);
    await tick(minute(3) + 2_000);
    const history = await fires(name);
    expect(history.map((f) => f.outcome)).toEqual([
      FireOutcome.STARTED,
      FireOutcome.STARTED,
      FireOutcome.STARTED,
    ]);
    expect(new Set(history.map((f) => f.runId)).size).toBe(3);
    await waitForRun(engine.client, history[2]!.runId);
  });

  it("overlap allow: runs overlap", async () => {
    const name = uniqueName("overlap-allow");
    const release = join(engine.dir, `${name}.release`);
    await register(cronSchedule(name, blockingScript(release), { overlap: OverlapPolicy.ALLOW }));
    await tick(minute(1));
    await tick(minute(2));
    const history = await fires(name);
    expect(history.map(describeFire)).toEqual(["10:01:00 SCHEDULE STARTED", "10:02:00 SCHEDULE STARTED"]);
    const runs = await Promise.all(history.map((f) => engine.client.getRun({ runId: f.runId })));
    expect(runs.map((r) => r.run!.state)).toEqual([RunState.RUNNING, RunState.RUNNING]);
    await writeFile(release, "");
    for (const fire of history)
      expect((await waitForRun(engine.client, fire.runId)).run.state).toBe(RunState.SUCCEEDED);
  });

  it("overlap cancel-previous: the running run is cancelled and the new one starts", async () => {
    const name = uniqueName("overlap-cancel");
    const release = join(engine.dir, `${name}.release`);
    await register(cronSchedule(name, blockingScript(release), { overlap: OverlapPolicy.CANCEL_PREVIOUS }));
    await tick(minute(1));
    await tick(minute(2));
    const [first, second] = await fires(name);
    expect(second!.outcome).toBe(FireOutcome.STARTED);
    expect((await waitForRun(engine.client, first!.runId)).run.state).toBe(RunState.CANCELLED);
    expect((await engine.client.getRun({ runId: second!.runId })).run!.state).toBe(RunState.RUNNING);
    await writeFile(release, "");
    expect((await waitForRun(engine.client, second!.runId)).run.state).toBe(RunState.SUCCEEDED);
  });

  describe("conditions", () => {
    /**
     * A condition that answers from a list, one answer per evaluation
     * (`1 1 0 0 1 0`), counting its evaluations in a file.
     */
    async function scriptedCondition(name: string, answers: number[], mode: ConditionMode) {
      const counter = join(engine.dir, `${name}.count`);
      const script = [
        `n=$(cat '${counter}' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '${counter}'`,
        `set -- ${answers.join(" ")}; shift $((n - 1)); echo "evaluation $n says $1"; exit $1`,
      ].join("; ");
      const spec = create(ScheduleSpecSchema, {
        name,
        run: runSpec(name, [shellTask("prune", "echo pruned", { condition: script })]),
        trigger: { case: "condition", value: { task: "prune", intervalMs: 30_000n, mode } },
        policy: { overlap: OverlapPolicy.ALLOW },
      });
      await register(spec, minute(0));
      return spec;
    }

    /** Evaluates once at `at` and, once the check has ended, lets a pass record it. */
    async function evaluate(name: string, at: number) {
      await tick(at);
      const { evaluations } = await engine.client.getScheduleHistory({ name, limit: 100 });
      const pending = evaluations.find((e) => e.outcome === EvaluationOutcome.PENDING);
      expect(pending, `an evaluation started at ${new Date(at).toISOString()}`).toBeDefined();
      await waitForRun(engine.client, pending!.runId);
      await tick(at + 1);
    }

    async function evaluationsOf(name: string) {
      const { evaluations, fires } = await engine.client.getScheduleHistory({ name, limit: 100 });
      return { evaluations: [...evaluations].reverse(), fires: [...fires].reverse() };
    }

    it("edge: fires exactly once per flip from 1 to 0", async () => {
      const name = uniqueName("edge");
      await scriptedCondition(name, [1, 1, 0, 0, 1, 0, 0], ConditionMode.EDGE);
      for (let k = 0; k < 7; k++) await evaluate(name, minute(0) + k * 30_000);
      const { evaluations, fires } = await evaluationsOf(name);
      expect(evaluations.map((e) => EvaluationOutcome[e.outcome])).toEqual([
        "NOT_MET",
        "NOT_MET",
        "MET",
        "MET",
        "NOT_MET",
        "MET",
        "MET",
      ]);
      expect(evaluations.map((e) => e.fired)).toEqual([false, false, true, false, false, true, false]);
      expect(fires.map((f) => [FireCause[f.cause], FireOutcome[f.outcome]])).toEqual([
        ["CONDITION", "STARTED"],
        ["CONDITION", "STARTED"],
      ]);
      for (const fire of fires) {
        const run = await waitForRun(engine.client, fire.runId);
        // the fired run does not evaluate the condition again
        expect(run.tasks.get("prune")?.state).toBe(TaskState.SUCCEEDED);
      }
      expect(evaluations[0]!.exitCode).toBe(1);
      expect(evaluations[0]!.host).not.toBe("");
      const logs = [];
      for await (const chunk of engine.client.getLogs({ task: { taskId: evaluations[0]!.taskId } }))
        logs.push(...chunk.entries.map((e) => Buffer.from(e.data).toString()));
      expect(logs.join("")).toContain("evaluation 1 says 1");
    });

    it("level: fires at every evaluation that holds", async () => {
      const name = uniqueName("level");
      await scriptedCondition(name, [1, 0, 0, 1, 0], ConditionMode.LEVEL);
      for (let k = 0; k < 5; k++) await evaluate(name, minute(0) + k * 30_000);
      const { evaluations, fires } = await evaluationsOf(name);
      expect(evaluations.map((e) => e.fired)).toEqual([false, true, true, false, true]);
      expect(fires).toHaveLength(3);
      expect(fires.map((f) => Number(f.slotUnixMs))).toEqual(
        evaluations.filter((e) => e.fired).map((e) => Number(e.slotUnixMs)),
      );
    });

    it("a check that fails is recorded with its exit code and output, and fires nothing", async () => {
      const name = uniqueName("broken");
      await register(
        create(ScheduleSpecSchema, {
          name,
          run: runSpec(name, [shellTask("prune", "true", { condition: "echo no database >&2; exit 3" })]),
          trigger: { case: "condition", value: { task: "prune", intervalMs: 60_000n } },
        }),
        minute(0),
      );
      await evaluate(name, minute(0));
      const { evaluations, fires } = await evaluationsOf(name);
      expect(evaluations[0]!.outcome).toBe(EvaluationOutcome.FAILED);
      expect(evaluations[0]!.exitCode).toBe(3);
      expect(evaluations[0]!.detail).toContain("3");
      expect(fires).toEqual([]);
    });

    it("a check that hangs is killed at its timeout and recorded", async () => {
      const name = uniqueName("hangs");
      const started = join(engine.dir, `${name}.started`);
      await register(
        create(ScheduleSpecSchema, {
          name,
          run: runSpec(name, [
            shellTask("prune", "true", { condition: `touch '${started}'; exec sleep 60` }),
          ]),
          trigger: { case: "condition", value: { task: "prune", intervalMs: 60_000n, timeoutMs: 1_000n } },
        }),
        minute(0),
      );
      const wallStart = Date.now();
      await evaluate(name, minute(0));
      expect(Date.now() - wallStart).toBeLessThan(15_000);
      expect(existsSync(started)).toBe(true);
      const { evaluations, fires } = await evaluationsOf(name);
      expect(evaluations[0]!.outcome).toBe(EvaluationOutcome.TIMED_OUT);
      expect(fires).toEqual([]);
    });

    it("condition runs stay out of `task ls` unless asked for", async () => {
      const { runs } = await engine.client.listRuns({ limit: 1000 });
      expect(runs.some((r) => r.labels["taskframe.evaluation"])).toBe(false);
      const all = await engine.client.listRuns({ limit: 1000, includeEvaluations: true });
      expect(all.runs.some((r) => r.labels["taskframe.evaluation"])).toBe(true);
    });
  });

  it("pause, resume, trigger, backfill and delete through the API", async () => {
    const name = uniqueName("controls");
    await register(cronSchedule(name, "true", { overlap: OverlapPolicy.ALLOW }, "*/10 * * * *"));
    const paused = await engine.client.pauseSchedule({ name, reason: "maintenance" });
    expect(paused.schedule!.paused).toBe(true);
    expect(paused.schedule!.nextFireUnixMs).toBe(0n);
    await tick(minute(30) + 5_000);
    expect(await fires(name)).toEqual([]);
    const resumed = await engine.client.resumeSchedule({ name });
    expect(Number(resumed.schedule!.nextFireUnixMs)).toBe(minute(40)); // from now: nothing missed while paused fires

    const triggered = await engine.client.triggerSchedule({ name });
    expect((await waitForRun(engine.client, triggered.run!.id)).run.state).toBe(RunState.SUCCEEDED);
    expect((await fires(name)).map((f) => FireCause[f.cause])).toEqual(["MANUAL"]);

    const backfill = async (from: number, to: number) => {
      const steps = [];
      for await (const step of engine.client.backfillSchedule({
        name,
        fromUnixMs: BigInt(from),
        toUnixMs: BigInt(to),
      }))
        steps.push(step);
      return steps.at(-1)!;
    };
    const first = await backfill(minute(-60), minute(0));
    expect([first.slots, first.started, first.alreadyFired]).toEqual([6, 6, 0]);
    const again = await backfill(minute(-60), minute(0));
    expect([again.slots, again.started, again.alreadyFired]).toEqual([6, 0, 6]);
    const future = await backfill(now - 30 * 60_000, now + 60 * 60_000); // the slots to come are left to their time
    expect(future.slots).toBe(3);

    const tooMany = engine.client.backfillSchedule({
      name,
      fromUnixMs: BigInt(minute(-60 * 24 * 30)),
      toUnixMs: BigInt(minute(0)),
      maxSlots: 100,
    });
    await expect(async () => {
      for await (const _ of tooMany);
    }).rejects.toThrow(/more than 100 slots/);

    await engine.client.deleteSchedule({ name });
    await expect(engine.client.listSchedules({ names: [name] })).rejects.toMatchObject({
      code: Code.NotFound,
    });
  });

  it("the request's examples run as written: heartbeat every minute, prune-users when its check says so", async () => {
    const seed = join(packageRoot, "examples", "seed");
    const specs = [
      ...(await loadSchedules(join(seed, "heartbeat.task"))),
      ...(await loadSchedules(join(seed, "prune-users.task"))),
    ];
    expect(specs.map((spec) => `${spec.name} ${spec.trigger.case}`)).toEqual([
      "heartbeat cron",
      "prune-users condition",
    ]);
    now = minute(0) + 10_000;
    await engine.client.putSchedules({ schedules: specs });
    await tick(minute(1)); // heartbeat's slot, and prune-users' first evaluation
    const evaluation = (await engine.client.getScheduleHistory({ name: "prune-users" })).evaluations[0]!;
    await waitForRun(engine.client, evaluation.runId);
    await tick(minute(1) + 1);

    const [beat] = (await engine.client.getScheduleHistory({ name: "heartbeat" })).fires;
    const heartbeat = await waitForRun(engine.client, beat!.runId);
    expect(heartbeat.tasks.get("heartbeat")?.state).toBe(TaskState.SUCCEEDED);
    const { evaluations, fires } = await engine.client.getScheduleHistory({ name: "prune-users" });
    expect(evaluations.map((e) => [EvaluationOutcome[e.outcome], e.fired])).toEqual([["MET", true]]);
    const prune = await waitForRun(engine.client, fires[0]!.runId);
    expect(prune.tasks.get("prune-users")?.state).toBe(TaskState.SUCCEEDED);
    const output: string[] = [];
    for await (const chunk of engine.client.getLogs({ task: { taskId: prune.tasks.get("prune-users")!.id } }))
      output.push(...chunk.entries.map((e) => Buffer.from(e.data).toString()));
    expect(output.join("")).toContain("would prune inactive user");
    for (const name of ["heartbeat", "prune-users"]) await engine.client.deleteSchedule({ name });
  });

  it("refuses a schedule it could not fire, saying why", async () => {
    const bad = (init: { name?: string; trigger?: MessageInitShape<typeof ScheduleSpecSchema>["trigger"] }) =>
      engine.client
        .putSchedules({
          schedules: [
            create(ScheduleSpecSchema, {
              name: init.name ?? "bad",
              run: runSpec("bad", [shellTask("work", "true")]),
              trigger: init.trigger ?? { case: "cron", value: { expression: "* * * * *" } },
            }),
          ],
        })
        .then(
          () => "accepted",
          (error: ConnectError) => `${Code[error.code]}: ${error.rawMessage}`,
        );
    expect(await bad({ trigger: { case: "cron", value: { expression: "61 * * * *" } } })).toMatch(
      /^InvalidArgument: schedule "bad": cron "61 \* \* \* \*"/,
    );
    expect(
      await bad({ trigger: { case: "cron", value: { expression: "* * * * *", timezone: "Mars/Olympus" } } }),
    ).toMatch(/unknown time zone "Mars\/Olympus"/);
    expect(
      await bad({ trigger: { case: "condition", value: { task: "work", intervalMs: 30_000n } } }),
    ).toMatch(/task "work" has no condition/);
    expect(await bad({ name: "no spaces" })).toMatch(/expected a name of letters/);
    expect(await bad({ trigger: { case: undefined } })).toMatch(/expected a trigger/);
  });
});
