import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  CatchUpPolicy,
  FireCause,
  type SchedulePolicySchema,
  type ScheduleSpec,
  ScheduleSpecSchema,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import {
  dueAt,
  firstSlot,
  MISFIRE_GRACE_MS,
  planCronSlots,
  planEvaluation,
  slotTimesOf,
} from "./slot-plan.js";

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

function cronSpec(
  expression: string,
  policy: MessageInitShape<typeof SchedulePolicySchema> = {},
  timezone = "UTC",
): ScheduleSpec {
  return create(ScheduleSpecSchema, {
    name: "nightly",
    trigger: { case: "cron", value: { expression, timezone } },
    policy,
  });
}

function plan(spec: ScheduleSpec, next: string, now: string) {
  const result = planCronSlots(spec, slotTimesOf(spec), t(next), t(now));
  return {
    fired: result.slots.filter((s) => s.fire).map((s) => `${iso(s.slotMs)} ${FireCause[s.cause]}`),
    missed: result.slots.filter((s) => !s.fire).map((s) => `${iso(s.slotMs)} ${s.detail}`),
    next: result.nextSlotMs === undefined ? undefined : iso(result.nextSlotMs),
  };
}

describe("planCronSlots", () => {
  it("fires a slot that is due, and waits for the next one", () => {
    expect(plan(cronSpec("*/5 * * * *"), "2026-03-01T10:05:00Z", "2026-03-01T10:05:00.200Z")).toEqual({
      fired: ["2026-03-01T10:05:00.000Z SCHEDULE"],
      missed: [],
      next: "2026-03-01T10:10:00.000Z",
    });
  });

  it("fires every slot within the grace, a few seconds late after a failover", () => {
    const result = plan(cronSpec("* * * * * *"), "2026-03-01T10:00:00Z", "2026-03-01T10:00:03.500Z");
    expect(result.fired).toHaveLength(4);
    expect(result.missed).toEqual([]);
    expect(result.next).toBe("2026-03-01T10:00:04.000Z");
  });

  it("after downtime, CatchUp=latest fires the latest missed slot and counts the rest", () => {
    const result = plan(cronSpec("* * * * *"), "2026-03-01T10:02:00Z", "2026-03-01T10:10:30Z");
    expect(result.fired).toEqual(["2026-03-01T10:10:00.000Z CATCH_UP"]);
    expect(result.missed).toEqual([
      "2026-03-01T10:02:00.000Z 8 slots missed, 2026-03-01T10:02:00.000Z to 2026-03-01T10:09:00.000Z (older than what catch-up fires)",
    ]);
  });

  it("CatchUp=latest fires nothing late when a slot on time fires anyway", () => {
    const result = plan(cronSpec("* * * * *"), "2026-03-01T10:02:00Z", "2026-03-01T10:10:05Z");
    expect(result.fired).toEqual(["2026-03-01T10:10:00.000Z SCHEDULE"]);
    expect(result.missed).toHaveLength(1);
  });

  it("CatchUp=skip fires none of the missed slots", () => {
    const spec = cronSpec("* * * * *", { catchUp: CatchUpPolicy.SKIP });
    const result = plan(spec, "2026-03-01T10:02:00Z", "2026-03-01T10:10:30Z");
    expect(result.fired).toEqual([]);
    expect(result.missed[0]).toContain("9 slots missed");
    expect(result.missed[0]).toContain("CatchUp=skip");
    expect(result.next).toBe("2026-03-01T10:11:00.000Z");
  });

  it("CatchUp=backfill(max=3) fires the three latest missed slots, oldest first", () => {
    const spec = cronSpec("* * * * *", { catchUp: CatchUpPolicy.BACKFILL, backfillMax: 3 });
    const result = plan(spec, "2026-03-01T10:02:00Z", "2026-03-01T10:10:30Z");
    expect(result.fired).toEqual([
      "2026-03-01T10:08:00.000Z CATCH_UP",
      "2026-03-01T10:09:00.000Z CATCH_UP",
      "2026-03-01T10:10:00.000Z CATCH_UP",
    ]);
    expect(result.missed[0]).toContain("6 slots missed");
  });

  it("a backfill larger than the gap fires every missed slot and records none as missed", () => {
    const spec = cronSpec("* * * * *", { catchUp: CatchUpPolicy.BACKFILL, backfillMax: 50 });
    const result = plan(spec, "2026-03-01T10:02:00Z", "2026-03-01T10:04:30Z");
    expect(result.fired).toEqual([
      "2026-03-01T10:02:00.000Z CATCH_UP",
      "2026-03-01T10:03:00.000Z CATCH_UP",
      "2026-03-01T10:04:00.000Z CATCH_UP",
    ]);
    expect(result.missed).toEqual([]);
  });

  it("a year of downtime on a per-second cron is planned quickly, its count capped", () => {
    const started = performance.now();
    const result = plan(cronSpec("* * * * * *"), "2025-03-01T00:00:00Z", "2026-03-01T00:00:30Z");
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(result.missed[0]).toContain("10000+ slots missed");
    expect(result.fired).toHaveLength(16); // the slots within the grace
  });

  it("no slot fires at or after the end, and the schedule then has no next slot", () => {
    const spec = cronSpec("* * * * *", { endUnixMs: BigInt(t("2026-03-01T10:03:00Z")) });
    const result = plan(spec, "2026-03-01T10:02:00Z", "2026-03-01T10:02:00.100Z");
    expect(result.fired).toEqual(["2026-03-01T10:02:00.000Z SCHEDULE"]);
    expect(result.next).toBeUndefined();
    const late = plan(spec, "2026-03-01T10:02:00Z", "2026-03-01T10:05:00Z");
    expect(late.fired).toEqual(["2026-03-01T10:02:00.000Z CATCH_UP"]);
  });

  it("the first slot is the next cron time at or after the start, in the schedule's time zone", () => {
    const spec = cronSpec("0 9 * * *", { startUnixMs: BigInt(t("2026-06-10T00:00:00Z")) }, "Europe/Berlin");
    expect(iso(firstSlot(spec, slotTimesOf(spec), t("2026-06-01T12:00:00Z"))!)).toBe(
      "2026-06-10T07:00:00.000Z",
    );
    const noStart = cronSpec("0 9 * * *", {}, "Europe/Berlin");
    expect(iso(firstSlot(noStart, slotTimesOf(noStart), t("2026-01-05T12:00:00Z"))!)).toBe(
      "2026-01-06T08:00:00.000Z",
    );
  });
});

describe("dueAt", () => {
  it("delays each slot by less than the jitter, the same way on every hub", () => {
    const spec = cronSpec("* * * * *", { jitterMs: 30_000n });
    const delays = new Set<number>();
    for (let minute = 0; minute < 200; minute++) {
      const slot = t("2026-03-01T00:00:00Z") + minute * 60_000;
      const delay = dueAt(spec, slot) - slot;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(30_000);
      expect(dueAt(spec, slot)).toBe(dueAt(cronSpec("* * * * *", { jitterMs: 30_000n }), slot));
      delays.add(delay);
    }
    expect(delays.size).toBeGreaterThan(150);
    expect(dueAt(cronSpec("* * * * *"), 1_000)).toBe(1_000);
  });
});

describe("planEvaluation", () => {
  const spec = create(ScheduleSpecSchema, {
    name: "prune",
    trigger: { case: "condition", value: { task: "prune", intervalMs: 30_000n } },
  });

  it("evaluates once at the latest grid slot, however many were missed", () => {
    const times = slotTimesOf(spec);
    const result = planEvaluation(spec, times, t("2026-03-01T10:00:00Z"), t("2026-03-01T10:07:40Z"));
    expect(result.slots.map((s) => iso(s.slotMs))).toEqual(["2026-03-01T10:07:30.000Z"]);
    expect(iso(result.nextSlotMs!)).toBe("2026-03-01T10:08:00.000Z");
  });

  it("a newly registered condition is evaluated at once", () => {
    const now = t("2026-03-01T10:00:12.345Z");
    const first = firstSlot(spec, slotTimesOf(spec), now)!;
    expect(first).toBe(now);
    const result = planEvaluation(spec, slotTimesOf(spec), first, now + 5);
    expect(result.slots.map((s) => s.slotMs)).toEqual([now]);
    expect(MISFIRE_GRACE_MS).toBeGreaterThan(0);
  });
});
