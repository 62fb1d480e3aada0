/** systemd time span units (systemd.time(7)); month and year as systemd counts them. */
const UNIT_MS: Readonly<Record<string, number>> = {
  usec: 0.001,
  us: 0.001,
  µs: 0.001,
  msec: 1,
  ms: 1,
  seconds: 1000,
  second: 1000,
  sec: 1000,
  s: 1000,
  minutes: 60_000,
  minute: 60_000,
  min: 60_000,
  m: 60_000,
  hours: 3_600_000,
  hour: 3_600_000,
  hr: 3_600_000,
  h: 3_600_000,
  days: 86_400_000,
  day: 86_400_000,
  d: 86_400_000,
  weeks: 604_800_000,
  week: 604_800_000,
  w: 604_800_000,
  months: 2_629_800_000,
  month: 2_629_800_000,
  M: 2_629_800_000,
  years: 31_557_600_000,
  year: 31_557_600_000,
  y: 31_557_600_000,
};

const PART = /\s*(\d+(?:\.\d+)?)\s*([A-Za-zµ]*)/y;

/**
 * A systemd time span in milliseconds: "90" (seconds), "5min 30s", "1h30min", "500ms"; "infinity"
 * is undefined. Throws an Error for anything else.
 */
export function parseTimeSpanMs(text: string): number | undefined {
  const value = text.trim();
  if (value === "infinity") return undefined;
  if (value === "") throw new Error("expected a time span such as 30s or 5min, got nothing");
  let total = 0;
  let at = 0;
  while (at < value.length) {
    PART.lastIndex = at;
    const part = PART.exec(value);
    if (!part) throw new Error(`expected a time span such as 30s or 5min, got ${JSON.stringify(text)}`);
    const unit = part[2] ?? "";
    const factor = unit === "" ? 1000 : UNIT_MS[unit];
    if (factor === undefined)
      throw new Error(`unknown time unit ${JSON.stringify(unit)} in ${JSON.stringify(text)}`);
    total += Number(part[1]) * factor;
    at = PART.lastIndex;
    while (value[at] === " ") at++;
  }
  return Math.round(total);
}

/** A duration as Taskframe units write it: "1h30m", "45s", "1s500ms". */
export function formatTimeSpan(ms: number): string {
  if (ms === 0) return "0s";
  const parts: [number, string][] = [
    [Math.floor(ms / 3_600_000), "h"],
    [Math.floor(ms / 60_000) % 60, "m"],
    [Math.floor(ms / 1000) % 60, "s"],
    [ms % 1000, "ms"],
  ];
  return parts
    .filter(([count]) => count > 0)
    .map(([count, unit]) => `${count}${unit}`)
    .join("");
}
