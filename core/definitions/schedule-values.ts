import { errorMessage } from "../errors.js";
import { CronSchedule } from "../schedules/cron-schedule.js";
import { zoneFormat } from "../schedules/time-zones.js";
import { closestMatch } from "./suggest.js";
import { ValueProblem } from "./units/unit-values.js";

/*
 * The values of a schedule, shared by INI units (`[RunIf] TimeZone=`, `Overlap=`, ...) and YAML
 * pipelines (`schedule: { timezone, overlap, ... }`): each parser returns plain data or throws a
 * ValueProblem saying what was expected.
 */

const show = (text: string): string => JSON.stringify(text);

/** What a slot does when the schedule's previous run is still going (OverlapPolicy). */
export type Overlap = "skip" | "queue" | "allow" | "cancel-previous";
export const OVERLAPS: readonly Overlap[] = ["skip", "queue", "allow", "cancel-previous"];

/** What happens to slots missed while no hub could fire them (CatchUpPolicy). */
export interface CatchUp {
  policy: "skip" | "latest" | "backfill";
  /** For "backfill": how many of the most recent missed slots fire. */
  max?: number;
}
/** `CatchUp=backfill` without `(max=N)`. */
export const DEFAULT_BACKFILL_MAX = 10;
export const MAX_BACKFILL = 10_000;

/** When a condition that holds fires its unit (ConditionMode). */
export type ConditionModeName = "edge" | "level";
export const CONDITION_MODES: readonly ConditionModeName[] = ["edge", "level"];

/** A schedule's settings besides its trigger, as units and pipelines give them; unset: the default. */
export interface ScheduleSettings {
  /** An IANA name; unset: UTC. */
  timezone?: string;
  overlap?: Overlap;
  catchUp?: CatchUp;
  jitterMs?: number;
  /** When the schedule starts and ends, in ms since the epoch. */
  startMs?: number;
  endMs?: number;
}

/** How often `Requires=` is evaluated when `Interval=` is not set. */
export const DEFAULT_CONDITION_INTERVAL_MS = 60_000;

/** `"a", "b" or "c"`. */
function choices(values: readonly string[]): string {
  const quoted = values.map(show);
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

/** One of a few words; a near miss gets a "did you mean". */
function parseChoice<T extends string>(text: string, values: readonly T[], extra = ""): T {
  const word = text.trim();
  if ((values as readonly string[]).includes(word)) return word as T;
  const suggestion = closestMatch(word, values);
  const hint = suggestion === undefined ? "" : `; did you mean ${show(suggestion)}?`;
  throw new ValueProblem(`expected ${choices(values)}${extra}, got ${show(text)}${hint}`);
}

/** `skip` (the default), `queue`, `allow` or `cancel-previous`. */
export function parseOverlap(text: string): Overlap {
  return parseChoice(text, OVERLAPS);
}

/** `edge` (the default) or `level`. */
export function parseConditionMode(text: string): ConditionModeName {
  return parseChoice(text, CONDITION_MODES);
}

const CATCH_UP_EXPECTED = `expected "skip", "latest", "backfill" or "backfill(max=N)" (N from 1 to ${MAX_BACKFILL})`;
const BACKFILL = /^backfill\s*\(\s*max\s*=\s*([^)\s]*)\s*\)$/;

/** `skip`, `latest` (the default), `backfill` (the 10 most recent missed slots) or `backfill(max=N)`. */
export function parseCatchUp(text: string): CatchUp {
  const word = text.trim();
  if (word === "skip" || word === "latest") return { policy: word };
  if (word === "backfill") return { policy: "backfill", max: DEFAULT_BACKFILL_MAX };
  const backfill = BACKFILL.exec(word);
  if (backfill) {
    const count = backfill[1] ?? "";
    if (/^\d{1,5}$/.test(count) && Number(count) >= 1 && Number(count) <= MAX_BACKFILL) {
      return { policy: "backfill", max: Number(count) };
    }
    throw new ValueProblem(
      `expected backfill(max=N) with N a number of slots from 1 to ${MAX_BACKFILL}, got ${show(count)}`,
      text.indexOf(count, text.indexOf("=")),
    );
  }
  const suggestion = closestMatch(word.replace(/\(.*$/, ""), ["skip", "latest", "backfill"]);
  const hint = suggestion === undefined ? "" : `; did you mean ${show(suggestion)}?`;
  throw new ValueProblem(`${CATCH_UP_EXPECTED}, got ${show(text)}${hint}`);
}

const ZONE_EXAMPLES = "an IANA time zone such as Europe/Berlin, America/New_York or UTC";
let zoneNames: readonly string[] | undefined;
/** A zone close to a misspelt one: `Europe/Berln`, or a city alone (`Berlin`). */
function zoneSuggestion(text: string): string | undefined {
  zoneNames ??= [...Intl.supportedValuesOf("timeZone"), "UTC"];
  const city = zoneNames.find((name) => name.split("/").at(-1)!.toLowerCase() === text.toLowerCase());
  return city ?? closestMatch(text, zoneNames);
}

/**
 * An IANA time zone (`Europe/Berlin`, `UTC`), as the name Intl knows it by (`europe/berlin` is
 * `Europe/Berlin`). Fixed offsets (`+01:00`) are refused: they do not follow daylight saving time.
 */
export function parseTimeZone(text: string): string {
  const zone = text.trim();
  if (zone === "") throw new ValueProblem(`expected ${ZONE_EXAMPLES}, got nothing`);
  if (/^(?:[+-]|(?:UTC|GMT)[+-])\d/i.test(zone)) {
    throw new ValueProblem(
      `expected ${ZONE_EXAMPLES}, got ${show(text)}: a fixed offset does not follow daylight saving time ` +
        "(for one anyway, write Etc/GMT-1 for UTC+01:00: the sign is inverted)",
    );
  }
  const format = zoneFormat(zone);
  if (format === undefined) {
    const suggestion = zoneSuggestion(zone);
    const hint = suggestion === undefined ? "" : `; did you mean ${show(suggestion)}?`;
    throw new ValueProblem(`unknown time zone ${show(text)}: expected ${ZONE_EXAMPLES}${hint}`);
  }
  return format.resolvedOptions().timeZone;
}

/** A date, or a date and time, as written: read in a time zone unless it has an offset. */
export interface LocalDateTime {
  /** As written, for messages. */
  text: string;
  /** Its fields as if it were UTC: the wall-clock time, in ms since the epoch. */
  wallMs: number;
  /** Minutes east of UTC, when the text has `Z` or an offset. */
  offsetMinutes?: number;
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/;
const DATE_TIME_EXAMPLES =
  "an ISO 8601 date or date-time such as 2026-12-01, 2026-12-01T08:00 or 2026-12-01T08:00+01:00";

/** `2026-12-01`, `2026-12-01T08:00`, `2026-12-01T08:00:30`, with an optional `Z` or `+01:00` after a time. */
export function parseDateTime(text: string): LocalDateTime {
  const written = text.trim();
  const match = DATE_TIME.exec(written);
  if (!match) {
    const offsetOnDate = /^\d{4}-\d{2}-\d{2}(?:[Zz]|[+-]\d{2}:?\d{2})$/.test(written);
    const why = offsetOnDate ? ": a zone offset goes after a time (2026-12-01T00:00Z)" : "";
    throw new ValueProblem(`expected ${DATE_TIME_EXAMPLES}, got ${show(text)}${why}`);
  }
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", offset] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const bad = (what: string): never => {
    throw new ValueProblem(`expected ${DATE_TIME_EXAMPLES}, got ${show(text)}: ${what}`);
  };
  if (month < 1 || month > 12) bad(`there is no month ${mo}`);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > days) bad(`${y}-${mo} has no day ${d}`);
  if (hour > 23) bad("the hour goes from 00 to 23");
  if (minute > 59) bad("the minute goes from 00 to 59");
  if (second > 59) bad("the second goes from 00 to 59");
  const wall = new Date(0);
  wall.setUTCFullYear(year, month - 1, day);
  wall.setUTCHours(hour, minute, second, Number(fraction.padEnd(3, "0")));
  const result: LocalDateTime = { text: written, wallMs: wall.getTime() };
  if (offset !== undefined) result.offsetMinutes = offsetMinutesOf(offset, bad);
  return result;
}

function offsetMinutesOf(offset: string, bad: (what: string) => never): number {
  if (offset === "Z" || offset === "z") return 0;
  const digits = offset.slice(1).replace(":", "");
  const hours = Number(digits.slice(0, 2));
  const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0;
  if (hours > 23 || minutes > 59) bad(`the offset ${offset} is not a time zone offset`);
  return (offset.startsWith("-") ? -1 : 1) * (hours * 60 + minutes);
}

/** Milliseconds that `zone` is ahead of UTC at `instant`. */
function zoneOffsetMs(format: Intl.DateTimeFormat, instant: number): number {
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(instant)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const wall = new Date(0);
  wall.setUTCFullYear(parts.year!, parts.month! - 1, parts.day!);
  wall.setUTCHours(parts.hour!, parts.minute!, parts.second!);
  return wall.getTime() - (instant - (((instant % 1000) + 1000) % 1000));
}

const DAY_MS = 86_400_000;

/**
 * The instant a date-time names: its own offset if it has one, else the wall-clock time in `zone`
 * (an IANA name; UTC by default). A local time that does not exist (skipped by a daylight saving
 * change) is the next valid instant, the change itself; one that happens twice is its first occurrence.
 */
export function instantOf(dateTime: LocalDateTime, zone = "UTC"): number {
  const { wallMs, offsetMinutes } = dateTime;
  if (offsetMinutes !== undefined) return wallMs - offsetMinutes * 60_000;
  const format = zoneFormat(zone);
  if (format === undefined) throw new ValueProblem(`unknown time zone ${show(zone)}`);
  const before = zoneOffsetMs(format, wallMs - DAY_MS);
  const after = zoneOffsetMs(format, wallMs + DAY_MS);
  const valid = [...new Set([before, after])]
    .map((offset) => wallMs - offset)
    .filter((instant) => zoneOffsetMs(format, instant) === wallMs - instant);
  if (valid.length > 0) return Math.min(...valid);
  // In the gap of a change forward: the change happens between these two instants.
  let low = wallMs - after;
  let high = wallMs - before;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (zoneOffsetMs(format, middle) === after) high = middle;
    else low = middle;
  }
  return high;
}

/** Whether and why a cron expression cannot be scheduled in a zone, kept: catalogues repeat them. */
const cronVerdicts = new Map<string, string | undefined>();
/** Where "never fires" is asked from: any fixed instant does, for the calendar repeats. */
const NEVER_FROM = new Date(Date.UTC(2000, 0, 1));

/**
 * Why the scheduler could not fire `expression` in `zone` (an IANA name, UTC by default), or
 * undefined. The expression has passed cronProblem (its shape); this asks the scheduler's own cron
 * library, and whether the expression ever fires (`0 0 30 2 *` does not).
 */
export function cronScheduleProblem(expression: string, zone = "UTC"): string | undefined {
  const key = `${zone} ${expression}`;
  if (cronVerdicts.has(key)) return cronVerdicts.get(key);
  let verdict: string | undefined;
  try {
    const schedule = CronSchedule.parse(expression, zone);
    if (schedule.next(NEVER_FROM) === undefined) {
      verdict = `cron ${show(expression)} never fires: no date has that day of the month in those months`;
    }
  } catch (error) {
    verdict = errorMessage(error);
  }
  if (cronVerdicts.size >= 1024) cronVerdicts.clear();
  cronVerdicts.set(key, verdict);
  return verdict;
}
