import { splitListWords } from "./list-words.js";

/** A problem in a cron expression and the offset in the expression it is about. */
export interface CronProblem {
  message: string;
  offset: number;
}

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Whether `?` ("no specific value") is allowed, as in day-of-month and day-of-week. */
  question?: boolean;
}

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const SECOND: Field = { name: "second", min: 0, max: 59 };
const FIELDS: readonly Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31, question: true },
  { name: "month", min: 1, max: 12, names: MONTHS },
  // 7 is Sunday too, as in most crons.
  { name: "day of week", min: 0, max: 7, names: DAYS, question: true },
];
const MACROS = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);
const SHAPE =
  'expected 5 fields ("minute hour day-of-month month day-of-week", e.g. "*/5 * * * *"), 6 with seconds first, or a macro such as @hourly';

/**
 * Checks the shape of a cron expression: 5 fields, or 6 with seconds first, each a comma list of
 * `*`, values, ranges `a-b` and steps `/n`, with month and weekday names; or a macro like `@daily`.
 * Structural only: the scheduler's cron library decides when it fires.
 */
export function cronProblem(expression: string): CronProblem | undefined {
  const { words } = splitListWords(expression);
  const first = words[0];
  if (first === undefined) return { message: `${SHAPE}, got nothing`, offset: 0 };
  if (first.text.startsWith("@")) {
    if (words.length === 1 && MACROS.has(first.text)) return undefined;
    if (first.text === "@reboot") {
      return {
        message: "@reboot is not supported: a unit runs when its run is submitted",
        offset: first.offset,
      };
    }
    return { message: `${SHAPE}, got ${JSON.stringify(expression)}`, offset: first.offset };
  }
  if (words.length !== 5 && words.length !== 6) {
    return { message: `${SHAPE}, got ${words.length} field${words.length === 1 ? "" : "s"}`, offset: 0 };
  }
  const fields = words.length === 6 ? [SECOND, ...FIELDS] : FIELDS;
  for (const [index, word] of words.entries()) {
    const problem = fieldProblem(word.text, fields[index]!);
    if (problem) return { message: problem, offset: word.offset };
  }
  return undefined;
}

function fieldProblem(text: string, field: Field): string | undefined {
  const expected = `expected ${field.min}-${field.max}${field.names ? ` or a name like ${field.names[1]}` : ""}`;
  const bad = (what: string) => `cron ${field.name} field ${JSON.stringify(text)}: ${what}`;
  for (const item of text.split(",")) {
    const [range = "", step, ...extra] = item.split("/");
    if (extra.length > 0) return bad(`more than one '/' in ${JSON.stringify(item)}`);
    if (step !== undefined && !/^[1-9]\d{0,3}$/.test(step)) {
      return bad(`expected a step from 1 after '/', got ${JSON.stringify(step)}`);
    }
    if (range === "*" || (range === "?" && field.question && step === undefined)) continue;
    const [low = "", high, ...more] = range.split("-");
    if (more.length > 0 || range === "") return bad(`${expected}, a range a-b, or *`);
    const from = fieldValue(low, field);
    const to = high === undefined ? from : fieldValue(high, field);
    if (from === undefined || to === undefined) {
      const wrong = from === undefined ? low : high;
      return bad(`${expected}, got ${JSON.stringify(wrong)}`);
    }
    if (from > to) return bad(`a range goes from low to high, got ${JSON.stringify(range)}`);
  }
  return undefined;
}

function fieldValue(text: string, field: Field): number | undefined {
  if (/^\d{1,2}$/.test(text)) {
    const value = Number(text);
    return value >= field.min && value <= field.max ? value : undefined;
  }
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return index < 0 ? undefined : index + field.min;
}
