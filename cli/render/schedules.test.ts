import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { BackfillScheduleResponseSchema, RunSchema } from "../../core/gen/taskframe/v1/hub_pb.js";
import {
  CatchUpPolicy,
  ConditionEvaluationSchema,
  ConditionMode,
  EvaluationOutcome,
  FireCause,
  FireOutcome,
  OverlapPolicy,
  type Schedule,
  ScheduleFireSchema,
  SchedulePolicySchema,
  ScheduleSchema,
  type ScheduleSpec,
  ScheduleSpecSchema,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import { RunState } from "../../core/states.js";
import {
  backfillProgressLine,
  backfillSummary,
  clock,
  compactDuration,
  describeLastFire,
  describeNextFire,
  describePolicy,
  describeTrigger,
  evaluationLine,
  evaluationsTable,
  fireJson,
  fireLine,
  firesTable,
  parseTimeArgument,
  relativeTime,
  runEndLine,
  runEndsLine,
  scheduleJson,
  scheduleTable,
} from "./schedules.js";

// local times print in the process's zone: pin it (Node reads TZ again when it changes)
beforeAll(() => {
  process.env.TZ = "Europe/Berlin";
});

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI color sequences
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

/** 2026-11-27 14:00:00 in Berlin (UTC+1). */
const NOW = Date.UTC(2026, 10, 27, 13, 0, 0);

const cronSpec = (expression: string, timezone = "", policy = {}): ScheduleSpec =>
  create(ScheduleSpecSchema, {
    name: "nightly",
    source: "units/nightly.task",
    trigger: { case: "cron", value: { expression, timezone } },
    policy,
  });

const conditionSpec = (mode = ConditionMode.UNSPECIFIED): ScheduleSpec =>
  create(ScheduleSpecSchema, {
    name: "disk-full",
    run: {
      name: "disk-full",
      tasks: [{ name: "disk-full", condition: { command: "/srv/jobs/check.sh", args: ["/var", "90 %"] } }],
    },
    trigger: { case: "condition", value: { task: "disk-full", intervalMs: 30_000n, mode } },
  });

describe("times", () => {
  it("says how far a time is, in its two largest units", () => {
    expect(relativeTime(NOW + 250_000, NOW)).toBe("in 4m 10s");
    expect(relativeTime(NOW - 12_000, NOW)).toBe("12s ago");
    expect(relativeTime(NOW + 3_600_000 + 5_000, NOW)).toBe("in 1h");
    expect(relativeTime(NOW + 2 * 86_400_000 + 7_200_000 + 60_000, NOW)).toBe("in 2d 2h");
    expect(relativeTime(NOW + 300, NOW)).toBe("now");
  });

  it("writes spans compactly", () => {
    expect(compactDuration(30_000)).toBe("30s");
    expect(compactDuration(90_000)).toBe("1m30s");
    expect(compactDuration(7_200_000)).toBe("2h");
    expect(compactDuration(1_500)).toBe("1.5s");
    expect(compactDuration(250)).toBe("250ms");
  });

  it("prints a clock time today and a full time on other days", () => {
    expect(clock(NOW + 5_000, NOW)).toBe("14:00:05");
    expect(clock(NOW - 86_400_000, NOW)).toBe("2026-11-26 14:00:00");
  });

  it("parses ISO 8601 times, local without an offset", () => {
    expect(parseTimeArgument("2026-11-27T14:00", 0)).toBe(NOW);
    expect(parseTimeArgument("2026-11-27 14:00:00", 0)).toBe(NOW);
    expect(parseTimeArgument("2026-11-27T13:00:00Z", 0)).toBe(NOW);
    expect(parseTimeArgument("2026-11-27T15:30:00+02:30", 0)).toBe(NOW);
    expect(parseTimeArgument("2026-11-27T14:00:00.250", 0)).toBe(NOW + 250);
    // a date alone is local midnight (JavaScript's Date would take it as UTC)
    expect(parseTimeArgument("2026-11-27", 0)).toBe(Date.UTC(2026, 10, 26, 23, 0, 0));
    // summer time: UTC+2
    expect(parseTimeArgument("2026-07-01T02:00", 0)).toBe(Date.UTC(2026, 6, 1, 0, 0, 0));
    expect(parseTimeArgument("now", NOW)).toBe(NOW);
  });

  it("refuses what is not an ISO 8601 time, saying what was expected", () => {
    expect(() => parseTimeArgument("yesterday", NOW)).toThrow(
      'expected an ISO 8601 date or date-time such as 2026-12-01, 2026-12-01T08:00 or 2026-12-01T08:00+01:00, got "yesterday"',
    );
    expect(() => parseTimeArgument("2026-02-30", NOW)).toThrow("2026-02 has no day 30");
    expect(() => parseTimeArgument("2026-11-27T24:00", NOW)).toThrow("the hour goes from 00 to 23");
    expect(() => parseTimeArgument("27.11.2026", NOW)).toThrow("expected an ISO 8601 date");
  });
});

describe("schedules", () => {
  it("describes a cron trigger with its time zone (UTC when none)", () => {
    expect(describeTrigger(cronSpec("*/5 * * * *", "Europe/Berlin"))).toBe(
      'cron "*/5 * * * *" Europe/Berlin',
    );
    expect(describeTrigger(cronSpec("@daily"))).toBe('cron "@daily" UTC');
  });

  it("describes a condition trigger by its check's command line", () => {
    expect(describeTrigger(conditionSpec())).toBe("if /srv/jobs/check.sh /var '90 %' every 30s");
    expect(describeTrigger(conditionSpec(), "/srv/jobs")).toBe("if ./check.sh /var '90 %' every 30s");
    expect(describeTrigger(conditionSpec(), "/srv/job")).toBe("if /srv/jobs/check.sh /var '90 %' every 30s");
    expect(describeTrigger(conditionSpec(ConditionMode.LEVEL), "/srv/jobs/")).toBe(
      "if ./check.sh /var '90 %' every 30s (level)",
    );
  });

  it("describes policies, defaults included", () => {
    expect(describePolicy(undefined)).toBe("skip/latest");
    const policy = (init: MessageInitShape<typeof SchedulePolicySchema>) =>
      create(SchedulePolicySchema, init);
    const queue = policy({
      overlap: OverlapPolicy.QUEUE,
      catchUp: CatchUpPolicy.BACKFILL,
      backfillMax: 5,
      jitterMs: 30_000n,
    });
    expect(describePolicy(queue)).toBe("queue/backfill 5, jitter 30s");
    const cancel = policy({ overlap: OverlapPolicy.CANCEL_PREVIOUS, catchUp: CatchUpPolicy.SKIP });
    expect(describePolicy(cancel)).toBe("cancel previous/skip");
  });

  const schedule = (fields: MessageInitShape<typeof ScheduleSchema>): Schedule =>
    create(ScheduleSchema, { spec: cronSpec("*/5 * * * *", "Europe/Berlin"), ...fields });

  it("shows the next fire as a local time and how far it is", () => {
    expect(describeNextFire(schedule({ nextFireUnixMs: BigInt(NOW + 250_000) }), NOW)).toBe(
      "2026-11-27 14:04:10 (in 4m 10s)",
    );
    expect(describeNextFire(schedule({ paused: true }), NOW)).toBe("- (paused)");
  });

  it("lists schedules as a table", () => {
    const started = schedule({
      nextFireUnixMs: BigInt(NOW + 250_000),
      lastFire: create(ScheduleFireSchema, {
        slotUnixMs: BigInt(NOW - 50_000),
        firedAtUnixMs: BigInt(NOW - 50_000),
        outcome: FireOutcome.STARTED,
        runId: "3f2a1b0c-0000-4000-8000-000000000000",
        runState: RunState.SUCCEEDED,
      }),
    });
    const paused = create(ScheduleSchema, {
      spec: conditionSpec(),
      paused: true,
      pausedReason: "maintenance",
      queued: 2,
      lastEvaluation: { startedAtUnixMs: BigInt(NOW - 3_000), outcome: EvaluationOutcome.NOT_MET },
    });
    const lines = plain(scheduleTable([started, paused], NOW, "/srv/jobs")).split("\n");
    expect(lines[0]).toMatch(/^NAME\s+TRIGGER\s+OVERLAP\/CATCH-UP\s+NEXT\s+LAST FIRE\s+RUN\s+PAUSED$/);
    expect(lines[1]).toMatch(
      /^nightly\s+cron "\*\/5 \* \* \* \*" Europe\/Berlin\s+skip\/latest\s+2026-11-27 14:04:10 \(in 4m 10s\)\s+STARTED 50s ago\s+3f2a1b0c SUCCEEDED$/,
    );
    expect(lines[2]).toMatch(
      /^disk-full\s+if \.\/check\.sh \/var '90 %' every 30s\s+skip\/latest\s+- \(paused\)\s+never, 2 queued, check NOT_MET 3s ago\s+yes: maintenance$/,
    );
    expect(describeLastFire(schedule({}), NOW)).toBe("never");
  });

  it("has a stable JSON shape", () => {
    const json = scheduleJson(
      schedule({
        nextFireUnixMs: BigInt(NOW),
        lastFire: create(ScheduleFireSchema, {
          slotUnixMs: BigInt(NOW),
          outcome: FireOutcome.SKIPPED,
          cause: FireCause.SCHEDULE,
        }),
      }),
    );
    expect(json).toMatchObject({
      name: "nightly",
      trigger: { cron: "*/5 * * * *", timezone: "Europe/Berlin" },
      policy: { overlap: "SKIP", catch_up: "LATEST" },
      next_fire: "2026-11-27T13:00:00.000Z",
      last_fire: { outcome: "SKIPPED", cause: "SCHEDULE", run_id: null, fired_at: null },
      paused: false,
    });
  });
});

describe("history", () => {
  it("lists fires: slot, fired at, cause, outcome, run and its state", () => {
    const fires = [
      create(ScheduleFireSchema, {
        slotUnixMs: BigInt(NOW),
        firedAtUnixMs: BigInt(NOW + 1_200),
        outcome: FireOutcome.STARTED,
        cause: FireCause.CATCH_UP,
        runId: "3f2a1b0c-0000-4000-8000-000000000000",
        runState: RunState.FAILED,
      }),
      create(ScheduleFireSchema, {
        slotUnixMs: BigInt(NOW - 300_000),
        firedAtUnixMs: BigInt(NOW - 300_000),
        outcome: FireOutcome.SKIPPED,
        cause: FireCause.SCHEDULE,
        detail: "run 77aa0012 still running",
      }),
    ];
    const lines = plain(firesTable(fires)).split("\n");
    expect(lines[1]).toMatch(
      /^2026-11-27 14:00:00\s+2026-11-27 14:00:01\s+catch-up\s+STARTED\s+3f2a1b0c\s+FAILED$/,
    );
    expect(lines[2]).toMatch(
      /^2026-11-27 13:55:00\s+2026-11-27 13:55:00\s+schedule\s+SKIPPED\s+run 77aa0012 still running$/,
    );
    expect(fireJson(fires[0]!)).toEqual({
      slot: "2026-11-27T13:00:00.000Z",
      fired_at: "2026-11-27T13:00:01.200Z",
      outcome: "STARTED",
      cause: "CATCH_UP",
      run_id: "3f2a1b0c-0000-4000-8000-000000000000",
      run_state: "FAILED",
      detail: null,
    });
  });

  it("lists evaluations: time, host, exit code, duration, outcome, fired", () => {
    const evaluations = [
      create(ConditionEvaluationSchema, {
        startedAtUnixMs: BigInt(NOW),
        host: "embedded",
        exitCode: 0,
        durationMs: 42n,
        outcome: EvaluationOutcome.MET,
        fired: true,
        runId: "5e5e5e5e-0000-4000-8000-000000000000",
      }),
      create(ConditionEvaluationSchema, {
        startedAtUnixMs: BigInt(NOW - 30_000),
        host: "embedded",
        exitCode: 1,
        durationMs: 1_500n,
        outcome: EvaluationOutcome.NOT_MET,
      }),
    ];
    const lines = plain(evaluationsTable(evaluations)).split("\n");
    expect(lines[0]).toMatch(/^TIME\s+HOST\s+EXIT\s+DURATION\s+OUTCOME\s+FIRED\s+RUN\s+DETAIL$/);
    expect(lines[1]).toMatch(/^2026-11-27 14:00:00\s+embedded\s+0\s+42ms\s+MET\s+yes\s+5e5e5e5e$/);
    expect(lines[2]).toMatch(/^2026-11-27 13:59:30\s+embedded\s+1\s+1\.5s\s+NOT_MET$/);
  });
});

describe("task dev lines", () => {
  it("says when a slot fires and when its run ends", () => {
    const fire = create(ScheduleFireSchema, {
      slotUnixMs: BigInt(NOW),
      firedAtUnixMs: BigInt(NOW + 20),
      outcome: FireOutcome.STARTED,
      cause: FireCause.SCHEDULE,
      runId: "3f2a1b0c-0000-4000-8000-000000000000",
    });
    expect(plain(fireLine("nightly", fire, NOW))).toBe(
      "14:00:00  nightly  slot 14:00:00  STARTED run 3f2a1b0c",
    );
    const manual = create(ScheduleFireSchema, {
      ...fire,
      cause: FireCause.MANUAL,
      detail: "task schedule trigger",
    });
    expect(plain(fireLine("nightly", manual, NOW))).toBe(
      "14:00:00  nightly  slot 14:00:00  STARTED run 3f2a1b0c (manual)",
    );
    const skipped = create(ScheduleFireSchema, {
      slotUnixMs: BigInt(NOW + 60_000),
      firedAtUnixMs: BigInt(NOW + 60_000),
      outcome: FireOutcome.SKIPPED,
      cause: FireCause.SCHEDULE,
      detail: "run 3f2a1b0c was still running (Overlap=skip)",
    });
    expect(plain(fireLine("nightly", skipped, NOW))).toBe(
      "14:01:00  nightly  slot 14:01:00  SKIPPED run 3f2a1b0c was still running (Overlap=skip)",
    );
    const run = create(RunSchema, {
      id: fire.runId,
      state: RunState.SUCCEEDED,
      createdAtUnixMs: BigInt(NOW),
      finishedAtUnixMs: BigInt(NOW + 1_200),
    });
    expect(plain(runEndLine("nightly", run, NOW + 2_000))).toBe(
      "14:00:01  nightly  run 3f2a1b0c SUCCEEDED in 1.2s",
    );
    const failed = create(RunSchema, { ...run, state: RunState.FAILED });
    expect(plain(runEndsLine("nightly", [run, run, failed], NOW))).toBe(
      "14:00:00  nightly  3 runs ended: 2 SUCCEEDED, 1 FAILED",
    );
  });

  it("says when a condition check fails", () => {
    const evaluation = create(ConditionEvaluationSchema, {
      startedAtUnixMs: BigInt(NOW),
      host: "embedded",
      exitCode: 2,
      outcome: EvaluationOutcome.FAILED,
      runId: "5e5e5e5e-0000-4000-8000-000000000000",
      taskId: "6f6f6f6f-0000-4000-8000-000000000000",
    });
    expect(plain(evaluationLine("disk-full", evaluation, NOW))).toBe(
      "14:00:00  disk-full  condition check FAILED: exit code 2 (task logs 6f6f6f6f-0000-4000-8000-000000000000)",
    );
    const timedOut = create(ConditionEvaluationSchema, {
      slotUnixMs: BigInt(NOW),
      outcome: EvaluationOutcome.TIMED_OUT,
      detail: "killed after 30s",
    });
    expect(plain(evaluationLine("disk-full", timedOut, NOW))).toBe(
      "14:00:00  disk-full  condition check TIMED_OUT: killed after 30s",
    );
  });
});

describe("backfill", () => {
  it("reports progress and a summary", () => {
    const progress = create(BackfillScheduleResponseSchema, {
      slots: 300,
      done: 120,
      started: 118,
      alreadyFired: 2,
    });
    expect(backfillProgressLine("nightly", progress)).toBe(
      "backfill nightly: 120/300 slots, 118 started, 2 already fired",
    );
    expect(backfillSummary("nightly", { ...progress, done: 300, started: 298 }, NOW - 86_400_000, NOW)).toBe(
      "backfill nightly: 300/300 slots from 2026-11-26 14:00:00 to 2026-11-27 14:00:00: 298 runs started, 2 had fired already",
    );
    expect(backfillSummary("nightly", undefined, NOW - 1000, NOW)).toBe(
      "backfill nightly: no slots from 2026-11-27 13:59:59 to 2026-11-27 14:00:00",
    );
  });
});
