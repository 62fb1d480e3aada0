import parse from "parse-duration";

const EXAMPLES = `such as "500ms", "30s", "10m" or "1h30m"`;
// parse-duration skips anything it does not understand, so the text is checked to be nothing but
// number+unit pairs first.
const PART = /(\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?\s*(\p{L}*)/uy;
const SEPARATOR = /[\s,]*(?:and\s+)?/y;

/**
 * Parses a duration into whole milliseconds. A string needs a unit on every number ("1h30m",
 * "2 hours", "500ms"); a number is seconds. Throws an Error saying what was expected otherwise.
 */
export function parseDurationMs(value: string | number): number {
  const ms = typeof value === "number" ? secondsToMs(value) : textToMs(value);
  if (ms > Number.MAX_SAFE_INTEGER) {
    throw new Error(`expected a duration of at most ~285,000 years, got ${show(value)}`);
  }
  return ms;
}

function secondsToMs(seconds: number): number {
  if (!Number.isFinite(seconds)) throw new Error(`expected a finite number of seconds, got ${seconds}`);
  if (seconds < 0) throw new Error(`expected a non-negative duration, got ${seconds}`);
  return Math.round(seconds * 1000);
}

function textToMs(text: string): number {
  const trimmed = text.trim();
  if (trimmed.startsWith("-")) throw new Error(`expected a non-negative duration, got ${show(text)}`);
  const body = trimmed.startsWith("+") ? trimmed.slice(1) : trimmed;
  if (body === "") throw new Error(`expected a duration ${EXAMPLES}, got ${show(text)}`);
  let at = 0;
  while (at < body.length) {
    PART.lastIndex = at;
    const part = PART.exec(body);
    if (!part) throw new Error(`expected a duration ${EXAMPLES}, got ${show(text)}`);
    const unit = part[2] ?? "";
    if (unit === "") {
      throw new Error(
        `expected a unit after ${part[1]}, as in "${part[1]}s" or "${part[1]}m", got ${show(text)}`,
      );
    }
    if (parse(`1${unit}`) === null) {
      throw new Error(`expected a duration ${EXAMPLES}, got ${show(text)} (unknown unit "${unit}")`);
    }
    at = PART.lastIndex;
    SEPARATOR.lastIndex = at;
    SEPARATOR.exec(body);
    at = SEPARATOR.lastIndex;
  }
  const ms = parse(body, "ms");
  if (ms === null) throw new Error(`expected a duration ${EXAMPLES}, got ${show(text)}`);
  return Math.round(ms);
}

const show = (value: string | number): string =>
  typeof value === "string" ? JSON.stringify(value) : String(value);

/** Short human form: "250ms", "1.2s", "3m04s", "2h05m09s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 999.5) return `${Math.round(ms)}ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  const pad = (n: number): string => String(n).padStart(2, "0");
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${pad(Math.floor(seconds / 60) % 60)}m${pad(seconds % 60)}s`;
}
