import { errorMessage } from "../errors.js";
import { parseTimeZone } from "./schedule-values.js";

/**
 * systemd OnCalendar= expressions (systemd.time(7)) as 5-field cron, for the forms cron can say:
 * the shorthands (minutely ... yearly) and `[WEEKDAYS] [*-MONTH-DAY] [HOUR:MINUTE[:00]]` with
 * values, lists, `a..b` ranges and `a/step` repetitions, and a time zone last (which a unit says
 * with TimeZone=). Anything else is refused, naming why.
 */

const SHORTHANDS: Readonly<Record<string, string>> = {
  minutely: "* * * * *",
  hourly: "0 * * * *",
  daily: "0 0 * * *",
  weekly: "0 0 * * 1",
  monthly: "0 0 1 * *",
  quarterly: "0 0 1 1,4,7,10 *",
  semiannually: "0 0 1 1,7 *",
  yearly: "0 0 1 1 *",
  annually: "0 0 1 1 *",
};

const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const EXAMPLES =
  'expected minutely, hourly, daily, weekly, monthly, yearly, or a form such as "*-*-* 02:00:00" or "Mon..Fri *-*-* 09:00"';

interface Field {
  name: string;
  min: number;
  max: number;
}

const MINUTE: Field = { name: "minute", min: 0, max: 59 };
const HOUR: Field = { name: "hour", min: 0, max: 23 };
const DAY: Field = { name: "day of the month", min: 1, max: 31 };
const MONTH: Field = { name: "month", min: 1, max: 12 };

/** An OnCalendar= value as a unit says it: cron=, and TimeZone= when the value names a zone. */
export interface CalendarSchedule {
  cron: string;
  /** An IANA name; undefined: the value names none (systemd then uses the host's zone). */
  timezone?: string;
}

/** The cron expression for an OnCalendar= value without a time zone; throws an Error that names the form otherwise. */
export function calendarToCron(expression: string): string {
  const { cron, timezone } = calendarToSchedule(expression);
  if (timezone !== undefined) {
    throw new Error(
      `cannot convert OnCalendar=${expression.trim()} to cron: the time zone (${timezone}) goes in TimeZone=`,
    );
  }
  return cron;
}

/** The cron expression and time zone of an OnCalendar= value; throws an Error that names the form otherwise. */
export function calendarToSchedule(expression: string): CalendarSchedule {
  const text = expression.trim();
  const words = text.split(/\s+/).filter((word) => word !== "");
  const refuse = (why: string): never => {
    throw new Error(`cannot convert OnCalendar=${text} to cron: ${why} (${EXAMPLES})`);
  };
  // systemd's last word may be a time zone: "*-*-* 02:00 Europe/Berlin".
  const last = words.at(-1);
  let timezone: string | undefined;
  if (words.length > 1 && last !== undefined && /^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/.test(last)) {
    try {
      timezone = parseTimeZone(last);
    } catch (error) {
      refuse(errorMessage(error));
    }
    words.pop();
  }
  const cron = wordsToCron(words.join(" "), refuse);
  return timezone === undefined ? { cron } : { cron, timezone };
}

function wordsToCron(text: string, refuse: (why: string) => never): string {
  const shorthand = SHORTHANDS[text.toLowerCase()];
  if (shorthand) return shorthand;
  const words = text.split(/\s+/).filter((word) => word !== "");
  if (words.length === 0) throw new Error(`${EXAMPLES}, got nothing`);
  let weekdays = "*";
  let day = "*";
  let month = "*";
  let hour = "0";
  let minute = "0";
  let index = 0;
  if (/^[A-Za-z]/.test(words[0]!) && !words[0]!.includes(":")) {
    weekdays = weekdayField(words[0]!, refuse);
    index++;
  }
  const dateWord = words[index];
  if (dateWord?.includes("-") && !dateWord.includes(":")) {
    const parts = dateWord.split("-");
    if (parts.length === 3) {
      if (parts[0] !== "*") refuse(`a year (${parts[0]}) has no cron field`);
      parts.shift();
    }
    if (parts.length !== 2)
      refuse(`expected a date such as *-*-01 or *-MM-DD, got ${JSON.stringify(dateWord)}`);
    month = field(parts[0]!, MONTH, refuse);
    if (parts[1]!.includes("~")) refuse("days counted from the end of the month (~) have no cron form");
    day = field(parts[1]!, DAY, refuse);
    index++;
  }
  const timeWord = words[index];
  if (timeWord?.includes(":")) {
    const [h = "", m = "", s, ...more] = timeWord.split(":");
    if (more.length > 0) refuse(`expected a time such as 02:00 or 02:00:00, got ${JSON.stringify(timeWord)}`);
    if (s !== undefined && !/^0{1,2}(?:\.0+)?$/.test(s)) {
      refuse(`cron fires on whole minutes, so the seconds must be 00, got ${JSON.stringify(s)}`);
    }
    hour = field(h, HOUR, refuse);
    minute = field(m, MINUTE, refuse);
    index++;
  }
  if (index < words.length) {
    refuse(`unexpected ${JSON.stringify(words[index]!)}`);
  }
  if (day !== "*" && weekdays !== "*") {
    refuse("a day of the month and a weekday together: systemd runs when both match, cron when either does");
  }
  return `${minute} ${hour} ${day} ${month} ${weekdays}`;
}

function field(text: string, spec: Field, refuse: (why: string) => never): string {
  return text
    .split(",")
    .map((item) => {
      if (item === "*") return "*";
      const [range = "", step, ...more] = item.split("/");
      if (more.length > 0) refuse(`more than one '/' in ${JSON.stringify(item)}`);
      if (step !== undefined && !/^\d+$/.test(step))
        refuse(`expected a number after '/', got ${JSON.stringify(step)}`);
      let low: number;
      let high: number | undefined;
      if (range === "*") {
        low = spec.min;
        high = spec.max;
      } else {
        const [from = "", to, ...rest] = range.split("..");
        if (rest.length > 0) refuse(`expected a range a..b, got ${JSON.stringify(range)}`);
        low = value(from, spec, refuse);
        high = to === undefined ? undefined : value(to, spec, refuse);
        if (high !== undefined && high < low)
          refuse(`a ${spec.name} range goes from low to high, got ${range}`);
      }
      if (step === undefined) return high === undefined ? String(low) : `${low}-${high}`;
      const every = Number(step);
      if (every === 0) refuse("a repetition of 0");
      if (low === spec.min && (high === undefined || high === spec.max)) return `*/${every}`;
      return `${low}-${high ?? spec.max}/${every}`;
    })
    .join(",");
}

function value(text: string, spec: Field, refuse: (why: string) => never): number {
  if (!/^\d{1,2}$/.test(text))
    refuse(`expected a ${spec.name} from ${spec.min} to ${spec.max}, got ${JSON.stringify(text)}`);
  const number = Number(text);
  if (number < spec.min || number > spec.max) {
    refuse(`expected a ${spec.name} from ${spec.min} to ${spec.max}, got ${text}`);
  }
  return number;
}

/** `Mon`, `Mon,Wed`, `Mon..Fri` (`Mon-Fri` too) as cron weekdays (0 = Sunday). */
function weekdayField(text: string, refuse: (why: string) => never): string {
  const day = (name: string): number => {
    const index = WEEKDAYS.indexOf(name.slice(0, 3).toLowerCase());
    const full = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
    if (index < 0 || (name.length > 3 && full[index] !== name.toLowerCase())) {
      refuse(`expected a weekday such as Mon or Monday, got ${JSON.stringify(name)}`);
    }
    return index;
  };
  return text
    .split(",")
    .map((item) => {
      const [from = "", to, ...rest] = item.split(/\.\.|-/);
      if (rest.length > 0) refuse(`expected a weekday range such as Mon..Fri, got ${JSON.stringify(item)}`);
      const low = day(from);
      if (to === undefined) return String(low);
      const high = day(to);
      if (high >= low) return `${low}-${high}`;
      // Fri..Mon wraps around the week's end.
      return `${low === 6 ? "6" : `${low}-6`},${high === 0 ? "0" : `0-${high}`}`;
    })
    .join(",");
}
