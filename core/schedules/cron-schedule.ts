import { Cron } from "croner";
import { zoneFormat } from "./time-zones.js";

/** A cron expression or time zone that cannot be scheduled; the message says what was expected. */
export class ScheduleError extends Error {}

/**
 * When a cron schedule fires: croner does the calendar arithmetic, in the
 * schedule's IANA time zone. Pure: every answer is computed from the instant
 * it is given, never from the wall clock, so the hub asks it with Postgres'
 * `now()` and tests with any date.
 *
 * Expressions: 5 fields (minute hour day-of-month month day-of-week), 6 with
 * seconds first, ranges, steps, lists, month and weekday names, and the
 * macros @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly.
 * When both day fields are restricted, either matching fires (classic cron).
 *
 * Daylight saving time, in the schedule's zone (test: cron-schedule.test.ts):
 * - a local time that does not exist (the spring-forward gap, e.g. 02:30 in
 *   Europe/Berlin on the last Sunday of March) fires once, at the next valid
 *   instant (03:00);
 * - a local time that happens twice (the fall-back hour) fires once, at its
 *   first occurrence; a schedule firing every hour or more often fires every
 *   real hour (25 times on the fall-back day, 23 on the spring-forward day).
 * Answers do not depend on where the question starts: asked from any fire
 * time, `next` gives the same following slot, which is what lets many hubs
 * agree on each slot.
 */
export class CronSchedule {
  readonly #cron: Cron;

  private constructor(
    readonly expression: string,
    readonly timezone: string,
  ) {
    this.#cron = new Cron(expression, { timezone, paused: true, legacyMode: true });
  }

  static parse(expression: string, timezone = "UTC"): CronSchedule {
    if (zoneFormat(timezone) === undefined)
      throw new ScheduleError(
        `unknown time zone ${JSON.stringify(timezone)}: expected an IANA name such as Europe/Berlin or UTC`,
      );
    const text = expression.trim();
    if (text === "@reboot")
      throw new ScheduleError("@reboot is not a schedule: a unit runs when it is submitted");
    try {
      return new CronSchedule(text, timezone);
    } catch (error) {
      throw new ScheduleError(
        `cron ${JSON.stringify(expression)}: ${(error as Error).message.replace(/^CronPattern: /, "")}`,
      );
    }
  }

  /** The first fire time strictly after `after`; undefined when the expression never fires again. */
  next(after: Date): Date | undefined {
    return this.#cron.nextRun(after) ?? undefined;
  }

  /** The last `count` fire times strictly before `before`, newest first. */
  previous(count: number, before: Date): Date[] {
    return this.#cron.previousRuns(count, before);
  }

  /** Fire times in (`from`, `to`], in order, at most `limit` of them. */
  *between(from: Date, to: Date, limit = Number.POSITIVE_INFINITY): Generator<Date> {
    let at = from;
    for (let count = 0; count < limit; count++) {
      const next = this.next(at);
      if (!next || next > to) return;
      yield next;
      at = next;
    }
  }
}
