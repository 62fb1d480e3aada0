import { describe, expect, it } from "vitest";
import { cronProblem } from "./cron.js";
import { splitListWords } from "./list-words.js";
import { parseSizeBytes } from "./size.js";
import { parseArgs, parseCommandLine, parseRestart, parseUnitDuration } from "./unit-values.js";

const GiB = 1024n ** 3n;

describe("parseSizeBytes", () => {
  it.each([
    ["8G", 8n * GiB],
    ["4G", 4n * GiB],
    ["512M", 512n * 1024n ** 2n],
    ["1.5G", (3n * GiB) / 2n],
    ["100K", 102_400n],
    ["1T", 1024n ** 4n],
    ["2E", 2n * 1024n ** 6n],
    ["4096", 4096n],
    ["0.5K", 512n],
    [" 8G ", 8n * GiB],
    ["infinity", 0n],
  ])("%s -> %d bytes", (text, bytes) => {
    expect(parseSizeBytes(text)).toBe(bytes);
  });

  it.each([
    ["8GB", 'sizes are powers of 1024 written without "B": "8G"'],
    ["8 GiB", '"8G"'],
    ["8g", 'suffixes are upper case: "8G"'],
    ["50%", "percentages of physical memory are not supported"],
    ["-1G", "a size cannot be negative"],
    ["1.5", "expected a whole number of bytes"],
    ["0", 'for no limit write "infinity"'],
    ["0K", "expected a size above 0"],
    ["16E", "expected a size below 16E"],
    [
      "lots",
      'expected a size such as "512M", "8G", "1.5G", "100K", a number of bytes, or "infinity", got "lots"',
    ],
    ["", 'got ""'],
    ["Infinity", 'got "Infinity"'],
  ])("rejects %j", (text, expected) => {
    expect(() => parseSizeBytes(text)).toThrow(expected);
  });
});

describe("parseRestart", () => {
  it("maps systemd's values to a number of retries", () => {
    expect(parseRestart("never")).toBe(0);
    expect(parseRestart("no")).toBe(0);
    expect(parseRestart("5")).toBe(5);
    expect(parseRestart("0")).toBe(0);
    expect(parseRestart("on-failure")).toBe(5);
  });

  it("rejects what a task cannot do", () => {
    expect(() => parseRestart("always")).toThrow("a task is retried only when it fails");
    expect(() => parseRestart("sometimes")).toThrow(
      'expected "never", "on-failure" (5 retries) or a number of retries such as 5, got "sometimes"',
    );
    expect(() => parseRestart("99999999999")).toThrow("expected at most 4294967295 retries");
    expect(() => parseRestart("-1")).toThrow('got "-1"');
  });
});

describe("parseUnitDuration", () => {
  it.each([
    ["2s", 2000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1min 30s", 90_000],
    ["90", 90_000],
    ["0.5", 500],
    ["100ms", 100],
  ])("%s -> %d ms", (text, ms) => {
    expect(parseUnitDuration(text, false)).toBe(ms);
  });

  it("reads infinity as no limit only where allowed", () => {
    expect(parseUnitDuration("infinity", true)).toBe(0);
    expect(() => parseUnitDuration("infinity", false)).toThrow("a bare number is seconds)");
  });

  it("says what was expected", () => {
    expect(() => parseUnitDuration("soon", true)).toThrow(
      'expected a duration such as "500ms", "30s", "10m" or "1h30m", got "soon" (a bare number is seconds, or "infinity" for no limit)',
    );
    expect(() => parseUnitDuration("-5s", false)).toThrow("expected a non-negative duration");
  });
});

describe("command lines and arguments", () => {
  it("splits like a shell", () => {
    expect(parseCommandLine(`python3 "my script.py" -v`)).toEqual(["python3", "my script.py", "-v"]);
    expect(parseArgs(`site.html -o site.html --template=_template.html`)).toEqual([
      "site.html",
      "-o",
      "site.html",
      "--template=_template.html",
    ]);
    expect(parseArgs(`"" 'a b'`)).toEqual(["", "a b"]);
    expect(parseArgs("  ")).toEqual([]);
  });

  it("rejects shell syntax without advice that only fits YAML", () => {
    expect(() => parseCommandLine("a | b")).toThrow(
      "for pipes, redirection or variables write `sh -c '...'`",
    );
    expect(() => parseCommandLine("a | b")).not.toThrow("list form");
    expect(() => parseArgs(`x "unclosed`)).toThrow(
      'cannot split "x \\"unclosed" into words: a quote is not closed',
    );
  });
});

describe("splitListWords", () => {
  it("splits on whitespace with offsets and honours quotes", () => {
    expect(splitListWords(`a.service  "b c" d'e'`)).toEqual({
      words: [
        { text: "a.service", offset: 0 },
        { text: "b c", offset: 11 },
        { text: "de", offset: 17 },
      ],
    });
    expect(splitListWords(`a "b`)).toEqual({
      words: [
        { text: "a", offset: 0 },
        { text: "b", offset: 2 },
      ],
      unclosedAt: 2,
    });
  });
});

describe("cronProblem", () => {
  it.each([
    "* * * * *",
    "*/5 * * * *",
    "0 9-17 * * MON-FRI",
    "0 0 1,15 * ?",
    "30 2 * JAN,jul sun",
    "0 0 * * 7",
    "*/10 * * * * *",
    "@hourly",
    "@daily",
    "@annually",
  ])("accepts %j", (expression) => {
    expect(cronProblem(expression)).toBeUndefined();
  });

  it.each([
    ["", 0, "expected 5 fields"],
    ["* * * *", 0, "got 4 fields"],
    ["* * * * * * *", 0, "got 7 fields"],
    ["60 * * * *", 0, 'cron minute field "60": expected 0-59, got "60"'],
    ["* 24 * * *", 2, 'cron hour field "24": expected 0-23'],
    ["* * 0 * *", 4, 'cron day of month field "0": expected 1-31'],
    ["* * * 13 *", 6, "cron month field"],
    ["* * * * 8", 8, "cron day of week field"],
    ["* * * * FUNDAY", 8, 'expected 0-7 or a name like MON, got "FUNDAY"'],
    ["*/0 * * * *", 0, "expected a step from 1 after '/'"],
    ["5-1 * * * *", 0, 'a range goes from low to high, got "5-1"'],
    ["? * * * *", 0, "cron minute field"],
    ["1-2-3 * * * *", 0, "a range a-b, or *"],
    ["1/2/3 * * * *", 0, "more than one '/'"],
    ["* * * * * 1L", 10, "cron day of week field"],
    ["@reboot", 0, "@reboot is not supported"],
    ["@often", 0, 'got "@often"'],
    ["@daily extra", 0, "got"],
  ])("rejects %j at offset %d", (expression, offset, expected) => {
    const problem = cronProblem(expression);
    expect(problem?.offset).toBe(offset);
    expect(problem?.message).toContain(expected);
  });
});
