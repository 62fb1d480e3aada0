import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CronSchedule, ScheduleError } from "./cron-schedule.js";

/*
 * Fire times over ten years of dates, in zones with daylight saving time,
 * checked against what the calendar says: local wall times read back with
 * Intl (not with cron arithmetic of the test's own). No clock is read.
 */

const ZONES = ["Europe/Berlin", "America/New_York", "UTC"] as const;
const TEN_YEARS = { from: new Date("2026-01-01T00:00:00Z"), to: new Date("2036-01-01T00:00:00Z") };

interface Local {
  day: string;
  time: string;
  weekday: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function local(instant: Date, zone: string): Local {
  let format = formatters.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      weekday: "short",
      hourCycle: "h23",
    });
    formatters.set(zone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(instant).map((p) => [p.type, p.value]));
  return {
    day: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}:${parts.second}`,
    weekday: parts.weekday!,
  };
}

/** Local calendar days from `from` to `to` (exclusive) in `zone`, with their length in hours. */
function localDays(zone: string): Map<string, number> {
  const days = new Map<string, number>();
  for (let t = TEN_YEARS.from.getTime(); t < TEN_YEARS.to.getTime(); t += 3_600_000) {
    const { day } = local(new Date(t), zone);
    days.set(day, (days.get(day) ?? 0) + 1);
  }
  return days;
}

const all = (schedule: CronSchedule) => [...schedule.between(TEN_YEARS.from, TEN_YEARS.to)];

describe.each(ZONES)("a cron schedule in %s, over ten years", (zone) => {
  const days = localDays(zone);
  const hoursOf = (day: string) => days.get(day) ?? 0;
  // the first and last local days are cut by the UTC window in zones west or east of it
  const whole = [...days.keys()].filter((day) => hoursOf(day) >= 23).slice(1, -1);

  it("fires a daily 02:30 exactly once a local day: at 02:30, or 03:00 when the clocks skip 02:00-03:00", () => {
    const fires = all(CronSchedule.parse("30 2 * * *", zone));
    const byDay = new Map<string, string[]>();
    for (const fire of fires) {
      const { day, time } = local(fire, zone);
      byDay.set(day, [...(byDay.get(day) ?? []), time]);
    }
    for (const day of whole) {
      const expected = hoursOf(day) === 23 ? ["03:00:00"] : ["02:30:00"];
      expect(byDay.get(day), day).toEqual(expected);
    }
  });

  it("fires hourly once per real hour: 23 times on the spring-forward day, 25 on the fall-back day", () => {
    const fires = all(CronSchedule.parse("@hourly", zone));
    const perDay = new Map<string, number>();
    for (const fire of fires) {
      const { day, time } = local(fire, zone);
      expect(time.endsWith(":00:00"), `${fire.toISOString()} is ${time} in ${zone}`).toBe(true);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
    }
    for (const day of whole) expect(perDay.get(day), day).toBe(hoursOf(day));
    // ten years of them, strictly increasing
    for (let i = 1; i < fires.length; i++)
      expect(fires[i]!.getTime()).toBeGreaterThan(fires[i - 1]!.getTime());
  });

  it("fires 09:00 on weekdays only, named days and ranges included", () => {
    const fires = all(CronSchedule.parse("0 9 * * MON-FRI", zone));
    const weekdays = whole.filter((day) => {
      const { weekday } = local(new Date(`${day}T12:00:00Z`), "UTC");
      return !["Sat", "Sun"].includes(weekday);
    });
    const fired = new Set(fires.map((fire) => local(fire, zone).day));
    for (const day of weekdays) expect(fired.has(day), day).toBe(true);
    for (const fire of fires) {
      const { time, weekday } = local(fire, zone);
      expect(time).toBe("09:00:00");
      expect(["Sat", "Sun"]).not.toContain(weekday);
    }
  });
});

describe("cron schedules", () => {
  it("never fires twice for one instant, nor out of order, whatever the expression and start", () => {
    const expressions = fc.constantFrom(
      "*/7 * * * *",
      "0 0-6/2 * * *",
      "15,45 3 * * SUN",
      "0 0 1 JAN,JUL *",
      "*/20 * * * * *",
      "0 12 L * *",
      "@daily",
      "@weekly",
      "0 2 29 2 *",
    );
    fc.assert(
      fc.property(
        expressions,
        fc.constantFrom(...ZONES),
        fc.date({ min: TEN_YEARS.from, max: new Date("2031-01-01T00:00:00Z"), noInvalidDate: true }),
        (expression, zone, start) => {
          const schedule = CronSchedule.parse(expression, zone);
          // five years: a 29 February is in there
          const fires = [...schedule.between(start, new Date(start.getTime() + 1_830 * 86_400_000), 200)];
          expect(fires.length).toBeGreaterThan(0);
          expect(fires[0]!.getTime()).toBeGreaterThan(start.getTime());
          for (let i = 1; i < fires.length; i++)
            expect(fires[i]!.getTime()).toBeGreaterThan(fires[i - 1]!.getTime());
          // asking from any fire time gives the one after it: slots are stable, whoever asks
          for (let i = 0; i + 1 < fires.length; i++) expect(schedule.next(fires[i]!)).toEqual(fires[i + 1]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("takes seconds as a sixth field first", () => {
    const fires = [
      ...CronSchedule.parse("*/20 * * * * *").between(
        new Date("2026-05-01T00:00:00Z"),
        new Date("2026-05-01T00:01:00Z"),
      ),
    ];
    expect(fires.map((f) => f.toISOString())).toEqual([
      "2026-05-01T00:00:20.000Z",
      "2026-05-01T00:00:40.000Z",
      "2026-05-01T00:01:00.000Z",
    ]);
  });

  it("refuses a bad expression or time zone, saying what was expected", () => {
    expect(() => CronSchedule.parse("0 25 * * *")).toThrow(ScheduleError);
    expect(() => CronSchedule.parse("0 25 * * *")).toThrow(/^cron "0 25 \* \* \*": /);
    expect(() => CronSchedule.parse("0 * * * *", "Mars/Olympus")).toThrow(
      'unknown time zone "Mars/Olympus": expected an IANA name such as Europe/Berlin or UTC',
    );
    expect(() => CronSchedule.parse("@reboot")).toThrow("@reboot is not a schedule");
  });
});
