import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../errors.js";
import {
  CatchUpPolicy,
  ConditionMode,
  OverlapPolicy,
  type ScheduleSpec,
} from "../gen/taskframe/v1/schedule_pb.js";
import { packagePath } from "../package-root.js";
import {
  cronScheduleProblem,
  instantOf,
  parseCatchUp,
  parseConditionMode,
  parseDateTime,
  parseOverlap,
  parseTimeZone,
} from "./schedule-values.js";
import { loadSchedules } from "./schedules.js";

const SEED = packagePath("examples", "seed");
const unit = (...lines: string[]): string => `${lines.join("\n")}\n`;
const RUNS = ["[Command]", "command=./run.sh"];
const utc = (iso: string): bigint => BigInt(Date.parse(iso));

let dir = "";
let count = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-schedules-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes files into a new directory of their own; returns its path. */
async function files(contents: Record<string, string>): Promise<string> {
  const where = join(dir, `case-${++count}`);
  await mkdir(where);
  for (const [name, text] of Object.entries(contents)) await writeFile(join(where, name), text);
  return where;
}

/** The one schedule of a unit written with these lines. */
async function scheduleOf(...lines: string[]): Promise<ScheduleSpec> {
  const where = await files({ "job.task": unit(...lines) });
  const schedules = await loadSchedules(join(where, "job.task"));
  expect(schedules).toHaveLength(1);
  return schedules[0]!;
}

/** The messages of what loading `path` throws. */
async function problemsOf(path: string): Promise<string[]> {
  try {
    await loadSchedules(path);
  } catch (error) {
    if (error instanceof DefinitionErrors) return error.problems.map((problem) => problem.message);
    if (error instanceof DefinitionError) return [error.message];
    throw error;
  }
  throw new Error(`expected ${path} to be rejected`);
}

const names = (schedule: ScheduleSpec): string[] =>
  (schedule.run?.tasks ?? []).map((task) => task.name).sort();

describe("loadSchedules: the seed's [RunIf] examples, as written", () => {
  it("heartbeat.task is a cron schedule, every minute, in UTC, with the default policy", async () => {
    const path = join(SEED, "heartbeat.task");
    const [heartbeat, ...more] = await loadSchedules(path);
    expect(more).toEqual([]);
    expect(heartbeat).toMatchObject({
      name: "heartbeat",
      source: path,
      trigger: { case: "cron", value: { expression: "* * * * *", timezone: "" } },
      policy: {
        overlap: OverlapPolicy.SKIP,
        catchUp: CatchUpPolicy.LATEST,
        backfillMax: 0,
        jitterMs: 0n,
        startUnixMs: 0n,
        endUnixMs: 0n,
      },
    });
    expect(heartbeat!.run).toMatchObject({ name: "heartbeat", source: path });
    expect(names(heartbeat!)).toEqual(["heartbeat"]);
  });

  it("prune-users.task is a condition schedule: every minute, timeout the interval, on the edge", async () => {
    const path = join(SEED, "prune-users.task");
    const [prune, ...more] = await loadSchedules(path);
    expect(more).toEqual([]);
    expect(prune).toMatchObject({
      name: "prune-users",
      source: path,
      trigger: {
        case: "condition",
        value: { task: "prune-users", intervalMs: 60_000n, timeoutMs: 0n, mode: ConditionMode.EDGE },
      },
      policy: { overlap: OverlapPolicy.SKIP, catchUp: CatchUpPolicy.LATEST },
    });
    // The task that carries the condition is the run's: the hub evaluates that check.
    const task = prune!.run!.tasks.find((candidate) => candidate.name === "prune-users");
    expect(task?.condition).toMatchObject({
      name: "./check-if-too-many-users.sh",
      command: join(SEED, "check-if-too-many-users.sh"),
    });
  });

  it("a unit without [RunIf] has none", async () => {
    expect(await loadSchedules(join(SEED, "pandoc.task"))).toEqual([]);
    expect(await loadSchedules(join(SEED, "flaky.service"))).toEqual([]);
  });

  it("the seed directory schedules heartbeat only: prune-users' condition is checked when it runs", async () => {
    const schedules = await loadSchedules(SEED);
    expect(schedules.map((schedule) => [schedule.name, schedule.source])).toEqual([
      ["heartbeat", join(SEED, "heartbeat.task")],
    ]);
    expect(names(schedules[0]!)).toEqual(["heartbeat"]);
  });
});

describe("loadSchedules: a unit's [RunIf] keys", () => {
  it("reads every key of a cron schedule", async () => {
    const schedule = await scheduleOf(
      "[RunIf]",
      'cron="30 2 * * 1-5"',
      "TimeZone=Europe/Berlin",
      "Overlap=cancel-previous",
      "CatchUp=backfill(max=25)",
      "Jitter=1min 30s",
      "Start=2026-12-01",
      "End=2027-06-30T18:00",
      ...RUNS,
    );
    expect(schedule.trigger).toMatchObject({
      case: "cron",
      value: { expression: "30 2 * * 1-5", timezone: "Europe/Berlin" },
    });
    expect(schedule.policy).toMatchObject({
      overlap: OverlapPolicy.CANCEL_PREVIOUS,
      catchUp: CatchUpPolicy.BACKFILL,
      backfillMax: 25,
      jitterMs: 90_000n,
      // Midnight in Berlin in winter is 23:00 UTC the day before; 18:00 in summer is 16:00 UTC.
      startUnixMs: utc("2026-11-30T23:00:00Z"),
      endUnixMs: utc("2027-06-30T16:00:00Z"),
    });
  });

  it.each([
    ["skip", OverlapPolicy.SKIP],
    ["queue", OverlapPolicy.QUEUE],
    ["allow", OverlapPolicy.ALLOW],
    ["cancel-previous", OverlapPolicy.CANCEL_PREVIOUS],
  ])("Overlap=%s", async (value, overlap) => {
    const schedule = await scheduleOf("[RunIf]", "cron=@hourly", `Overlap=${value}`, ...RUNS);
    expect(schedule.policy?.overlap).toBe(overlap);
  });

  it.each([
    ["skip", CatchUpPolicy.SKIP, 0],
    ["latest", CatchUpPolicy.LATEST, 0],
    ["backfill", CatchUpPolicy.BACKFILL, 10],
    ["backfill(max=1)", CatchUpPolicy.BACKFILL, 1],
    ["backfill(max=10000)", CatchUpPolicy.BACKFILL, 10_000],
  ])("CatchUp=%s", async (value, catchUp, backfillMax) => {
    const schedule = await scheduleOf("[RunIf]", "cron=@daily", `CatchUp=${value}`, ...RUNS);
    expect(schedule.policy).toMatchObject({ catchUp, backfillMax });
  });

  it("reads Interval=, Timeout= and Mode= of a condition, and the policy keys too", async () => {
    const schedule = await scheduleOf(
      "[RunIf]",
      'Requires="./due.sh --soon"',
      "Interval=5m",
      "Timeout=30s",
      "Mode=level",
      "Overlap=queue",
      "Start=2026-12-01T08:00:00Z",
      "End=2026-12-24T12:00+01:00",
      ...RUNS,
    );
    expect(schedule.trigger).toMatchObject({
      case: "condition",
      value: { task: "job", intervalMs: 300_000n, timeoutMs: 30_000n, mode: ConditionMode.LEVEL },
    });
    expect(schedule.policy).toMatchObject({
      overlap: OverlapPolicy.QUEUE,
      catchUp: CatchUpPolicy.LATEST,
      startUnixMs: utc("2026-12-01T08:00:00Z"),
      endUnixMs: utc("2026-12-24T11:00:00Z"),
    });
  });

  it("reads Start= and End= without an offset in UTC when there is no TimeZone=", async () => {
    const schedule = await scheduleOf(
      "[RunIf]",
      "cron=@daily",
      "Start=2026-03-29T02:30",
      "End=2026-10-25 02:30:15.5",
      ...RUNS,
    );
    expect(schedule.policy).toMatchObject({
      startUnixMs: utc("2026-03-29T02:30:00Z"),
      endUnixMs: utc("2026-10-25T02:30:15.500Z"),
    });
  });

  it("reads a local time that does not exist as the change, and one that happens twice as its first", async () => {
    const schedule = await scheduleOf(
      "[RunIf]",
      "cron=@daily",
      "TimeZone=Europe/Berlin",
      // 02:30 on 29 March 2026 is skipped in Berlin: clocks go from 02:00 CET to 03:00 CEST.
      "Start=2026-03-29T02:30",
      // 02:30 on 25 October 2026 happens twice: first in CEST (+02:00), then in CET.
      "End=2026-10-25T02:30",
      ...RUNS,
    );
    expect(schedule.policy).toMatchObject({
      startUnixMs: utc("2026-03-29T01:00:00Z"),
      endUnixMs: utc("2026-10-25T00:30:00Z"),
    });
  });

  it("runs the unit with the units it requires, and names the schedule after the unit", async () => {
    const where = await files({
      "report.service": unit("[Dependencies]", "Requires=fetch", "[RunIf]", "cron=@daily", ...RUNS),
      "fetch.task": unit("[RunIf]", "cron=@hourly", ...RUNS),
      "other.task": unit(...RUNS),
    });
    const [report] = await loadSchedules(join(where, "report.service"));
    expect(report?.name).toBe("report");
    expect(report?.run?.name).toBe("report");
    expect(names(report!)).toEqual(["fetch", "report"]);
    expect(report?.run?.tasks.find((task) => task.name === "report")?.needs).toEqual(["fetch"]);
  });

  it("refuses --param for a unit, and reports a broken unit at its line", async () => {
    const where = await files({ "job.task": unit("[RunIf]", "cron=@daily", "Overlap=later", ...RUNS) });
    const path = join(where, "job.task");
    await expect(loadSchedules(path, { params: { day: "x" } })).rejects.toThrow(
      "--param applies to YAML pipelines",
    );
    expect(await problemsOf(path)).toEqual([
      `${path}:3:9: RunIf.Overlap: expected "skip", "queue", "allow" or "cancel-previous", got "later"`,
    ]);
  });
});

describe("loadSchedules: a directory of units", () => {
  it("makes one schedule per unit with cron= or Interval=, each running its own closure", async () => {
    const where = await files({
      "nightly.task": unit("[Dependencies]", "Requires=fetch", "[RunIf]", "cron=0 2 * * *", ...RUNS),
      "fetch.task": unit(...RUNS),
      "watch.service": unit("[RunIf]", "Requires=./changed.sh", "Interval=30s", ...RUNS),
      "gate.task": unit("[RunIf]", "Requires=./ready.sh", "Overlap=queue", ...RUNS),
      "plain.task": unit(...RUNS),
    });
    const schedules = await loadSchedules(where);
    expect(schedules.map((schedule) => [schedule.name, schedule.trigger.case, schedule.source])).toEqual([
      ["nightly", "cron", join(where, "nightly.task")],
      ["watch", "condition", join(where, "watch.service")],
    ]);
    expect(names(schedules[0]!)).toEqual(["fetch", "nightly"]);
    expect(schedules[0]!.run?.source).toBe(join(where, "nightly.task"));
    expect(names(schedules[1]!)).toEqual(["watch"]);
    expect(schedules[1]!.trigger.value).toMatchObject({ task: "watch", intervalMs: 30_000n });
  });

  it("is empty for a directory whose units have no schedule, and an error for one without units", async () => {
    expect(await loadSchedules(await files({ "a.task": unit(...RUNS) }))).toEqual([]);
    const empty = await files({});
    expect(await problemsOf(empty)).toEqual([
      `${empty}: no units here: expected *.task, *.service or *.target files (subdirectories are not read)`,
    ]);
  });

  it("refuses two scheduled units that would have the same name", async () => {
    const where = await files({
      "x.task": unit("[RunIf]", "cron=@daily", ...RUNS),
      "x.service": unit("[RunIf]", "cron=@hourly", ...RUNS),
    });
    expect(await problemsOf(where)).toEqual([
      `${join(where, "x.task")}:1:1: units x.service and x.task would both be the schedule "x"; rename one`,
    ]);
  });

  it("reports every broken unit of the directory", async () => {
    const where = await files({
      "a.task": unit("[RunIf]", "cron=@daily", "TimeZone=Mars/Olympus", ...RUNS),
      "b.task": unit("[RunIf]", "Interval=5m", ...RUNS),
    });
    expect(await problemsOf(where)).toEqual([
      `${join(where, "a.task")}:3:10: RunIf.TimeZone: unknown time zone "Mars/Olympus": expected an IANA time zone such as Europe/Berlin, America/New_York or UTC`,
      `${join(where, "b.task")}:2:1: RunIf.Interval: Interval= says how often to evaluate Requires=, and this unit has no Requires=; for a periodic run use cron=, e.g. cron="*/5 * * * *"`,
    ]);
  });
});

describe("loadSchedules: a YAML pipeline", () => {
  it("makes one cron schedule of a pipeline with schedule:, whose run is the pipeline", async () => {
    const where = await files({
      "etl.yaml": unit(
        `name: etl-\${{ params.region }}`,
        "params: { region: eu }",
        "schedule:",
        '  cron: "0 6 * * 1-5"',
        "  timezone: America/New_York",
        "  overlap: allow",
        "  catch_up: backfill(max=3)",
        "  jitter: 2m",
        "  start: 2026-12-01",
        '  end: "2027-01-01T00:00:00Z"',
        "steps: [./extract.sh, ./load.sh]",
      ),
    });
    const path = join(where, "etl.yaml");
    const [etl, ...more] = await loadSchedules(path, { params: { region: "us" } });
    expect(more).toEqual([]);
    expect(etl).toMatchObject({
      name: "etl-us",
      source: path,
      trigger: { case: "cron", value: { expression: "0 6 * * 1-5", timezone: "America/New_York" } },
      policy: {
        overlap: OverlapPolicy.ALLOW,
        catchUp: CatchUpPolicy.BACKFILL,
        backfillMax: 3,
        jitterMs: 120_000n,
        // Midnight in New York in December is 05:00 UTC.
        startUnixMs: utc("2026-12-01T05:00:00Z"),
        endUnixMs: utc("2027-01-01T00:00:00Z"),
      },
    });
    expect(etl!.run).toMatchObject({ name: "etl-us", source: path });
    expect(names(etl!)).toEqual(["extract", "load"]);
  });

  it("names the schedule after the file without name:, with the default policy", async () => {
    const where = await files({ "nightly.yml": unit("schedule: { cron: '@daily' }", "steps: [./a.sh]") });
    const [nightly] = await loadSchedules(join(where, "nightly.yml"));
    expect(nightly).toMatchObject({
      name: "nightly",
      trigger: { case: "cron", value: { expression: "@daily", timezone: "" } },
      policy: { overlap: OverlapPolicy.SKIP, catchUp: CatchUpPolicy.LATEST, backfillMax: 0, jitterMs: 0n },
    });
  });

  it("is empty without schedule:, and reports problems of schedule: at their lines", async () => {
    const where = await files({
      "plain.yaml": unit("steps: [./a.sh]"),
      "bad.yaml": unit("schedule:", "  cron: '0 25 * * *'", "  timezon: UTC", "steps: [./a.sh]"),
    });
    expect(await loadSchedules(join(where, "plain.yaml"))).toEqual([]);
    const bad = join(where, "bad.yaml");
    expect(await problemsOf(bad)).toEqual([
      `${bad}:2:9: schedule.cron: cron hour field "25": expected 0-23, got "25"`,
      `${bad}:3:3: schedule.timezon: unknown key 'timezon'; did you mean 'timezone'? (expected one of: cron, timezone, overlap, catch_up, jitter, start, end)`,
    ]);
  });

  it("refuses other files, naming the kinds it reads", async () => {
    const where = await files({ "notes.txt": "hello\n" });
    await expect(loadSchedules(join(where, "notes.txt"))).rejects.toThrow(
      "expected a YAML pipeline (.yaml, .yml), a unit (.task, .service, .target) or a directory of units",
    );
  });
});

describe("schedule values", () => {
  it("reads the overlap, catch-up and condition mode words", () => {
    expect(parseOverlap("cancel-previous")).toBe("cancel-previous");
    expect(() => parseOverlap("Skip")).toThrow('got "Skip"; did you mean "skip"?');
    expect(parseCatchUp("backfill")).toEqual({ policy: "backfill", max: 10 });
    expect(parseCatchUp("backfill( max = 7 )")).toEqual({ policy: "backfill", max: 7 });
    expect(parseCatchUp("latest")).toEqual({ policy: "latest" });
    expect(() => parseCatchUp("backfill(max=10001)")).toThrow("N a number of slots from 1 to 10000");
    expect(() => parseCatchUp("backfil")).toThrow('did you mean "backfill"?');
    expect(parseConditionMode("level")).toBe("level");
    expect(() => parseConditionMode("rising")).toThrow('expected "edge" or "level", got "rising"');
  });

  it("reads IANA time zones, and suggests one for a misspelt zone or a city", () => {
    expect(parseTimeZone("Europe/Berlin")).toBe("Europe/Berlin");
    expect(parseTimeZone("europe/berlin")).toBe("Europe/Berlin");
    expect(parseTimeZone("UTC")).toBe("UTC");
    expect(() => parseTimeZone("Europe/Paros")).toThrow('unknown time zone "Europe/Paros"');
    expect(() => parseTimeZone("Tokyo")).toThrow('did you mean "Asia/Tokyo"?');
    expect(() => parseTimeZone("+02:00")).toThrow("a fixed offset does not follow daylight saving time");
    expect(() => parseTimeZone("")).toThrow("got nothing");
  });

  it("reads ISO 8601 dates and date-times, checking the calendar", () => {
    expect(instantOf(parseDateTime("2028-02-29"))).toBe(Date.parse("2028-02-29T00:00:00Z"));
    expect(instantOf(parseDateTime("2026-12-01T08:00-05:30"))).toBe(Date.parse("2026-12-01T13:30:00Z"));
    expect(instantOf(parseDateTime("2026-12-01T08:00+0100"))).toBe(Date.parse("2026-12-01T07:00:00Z"));
    expect(instantOf(parseDateTime("2026-07-01T12:00"), "Asia/Kolkata")).toBe(
      Date.parse("2026-07-01T06:30:00Z"),
    );
    expect(() => parseDateTime("2026-02-29")).toThrow("2026-02 has no day 29");
    expect(() => parseDateTime("2026-12-01T24:00")).toThrow("the hour goes from 00 to 23");
    expect(() => parseDateTime("12/01/2026")).toThrow("expected an ISO 8601 date or date-time");
    expect(() => parseDateTime("2026-12-01+01:00")).toThrow("a zone offset goes after a time");
  });

  it("asks the scheduler's cron whether an expression fires, in its zone", () => {
    expect(cronScheduleProblem("0 2 * * *", "Europe/Berlin")).toBeUndefined();
    expect(cronScheduleProblem("0 0 31 4 *")).toContain("never fires");
    expect(cronScheduleProblem("0 0 29 2 *")).toBeUndefined();
  });
});
