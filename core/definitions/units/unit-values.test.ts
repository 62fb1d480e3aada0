import { describe, expect, it } from "vitest";
import { cronProblem } from "./cron.js";
import {
  PIDS_INFINITY,
  parseArtifactUrl,
  parseCpuMillis,
  parseJail,
  parsePids,
  parseSha256,
} from "./jail-settings.js";
import { splitListWords } from "./list-words.js";
import { parseSizeBytes } from "./size.js";
import {
  parseArgs,
  parseBoolean,
  parseCommandLine,
  parseExitStatusList,
  parseRestart,
  parseUnitDuration,
} from "./unit-values.js";

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

describe("parseExitStatusList", () => {
  it("reads exit codes separated by spaces", () => {
    expect(parseExitStatusList("2 42  255")).toEqual([2, 42, 255]);
  });

  it("rejects anything but codes from 0 to 255", () => {
    for (const text of ["", "256", "-1", "SIGKILL", "2,42", "1.5"])
      expect(() => parseExitStatusList(text), text).toThrow(/expected exit codes from 0 to 255/);
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

describe("parsePids", () => {
  it.each([
    ["1", 1],
    ["64", 64],
    [" 512 ", 512],
    ["4194304", 4_194_304],
    ["infinity", PIDS_INFINITY],
  ])("%s -> %d", (text, pids) => {
    expect(parsePids(text)).toBe(pids);
  });

  it("reads infinity as Linux's largest pid_max, not as 0 (which is the pool's default)", () => {
    expect(PIDS_INFINITY).toBe(4_194_304);
  });

  it.each([
    [
      "0",
      `expected a number of processes from 1 to 4194304, or "infinity", got "0"; leave it out for the pool's default, or write "infinity" for as many as the pool allows`,
    ],
    [
      "4194305",
      `expected at most 4194304 processes (Linux's largest pid_max), got "4194305"; "infinity" is as many as the pool allows`,
    ],
    [
      "15%",
      `expected a number of processes from 1 to 4194304, or "infinity", got "15%" (percentages of the host's pid limit are not supported)`,
    ],
    ["-1", `got "-1" (a number of processes cannot be negative)`],
    ["1.5", `expected a number of processes from 1 to 4194304, or "infinity", got "1.5"`],
    ["many", `got "many"`],
    ["Infinity", `got "Infinity"`],
    ["", `got ""`],
  ])("rejects %j", (text, expected) => {
    expect(() => parsePids(text)).toThrow(expected);
  });

  it("shows a number from YAML as a number", () => {
    expect(parsePids(64)).toBe(64);
    expect(() => parsePids(0)).toThrow(', or "infinity", got 0;');
  });
});

describe("parseCpuMillis", () => {
  it.each([
    ["1%", 10],
    ["50%", 500],
    ["150%", 1500],
    ["200%", 2000],
    ["100000%", 1_000_000],
    ["infinity", 0],
  ])("%s -> %d thousandths of a CPU", (text, millis) => {
    expect(parseCpuMillis(text)).toBe(millis);
  });

  const EXPECTED = `expected a percentage of one CPU such as "50%", "150%" or "200%" (1% to 100000%), or "infinity"`;

  it.each([
    ["0%", `${EXPECTED}, got "0%"; for no quota write "infinity"`],
    ["100001%", `expected at most 100000% (1000 CPUs), got "100001%"`],
    ["12.5%", `${EXPECTED}, got "12.5%" (a whole percentage)`],
    ["1.5", `${EXPECTED}, got "1.5" (add "%": "150%" is 1.5 CPUs)`],
    ["1", `${EXPECTED}, got "1" (add "%": "100%" is 1 CPU)`],
    ["-50%", `${EXPECTED}, got "-50%" (a CPU quota cannot be negative)`],
    ["half", `${EXPECTED}, got "half"`],
    ["50 %", `got "50 %"`],
  ])("rejects %j", (text, expected) => {
    expect(() => parseCpuMillis(text)).toThrow(expected);
  });

  it("adds a note where the % is missing", () => {
    expect(() => parseCpuMillis("30", "; not CPU seconds")).toThrow(
      `got "30" (add "%": "3000%" is 30 CPUs; not CPU seconds)`,
    );
    expect(() => parseCpuMillis(2)).toThrow(`got 2 (add "%": "200%" is 2 CPUs)`);
  });
});

describe("parseJail", () => {
  it("accepts the profiles a task may ask for", () => {
    expect(parseJail("standard")).toBe("standard");
    expect(parseJail("strict")).toBe("strict");
  });

  it.each([
    ["none", `expected "standard" or "strict", got "none": a task can ask`],
    ["", `got ""`],
    ["Strict", `got "Strict" (names are case-sensitive: "strict")`],
    ["paranoid", `got "paranoid"`],
  ])("rejects %j, saying a task cannot loosen its pool's jail", (text, expected) => {
    expect(() => parseJail(text)).toThrow(expected);
    expect(() => parseJail(text)).toThrow(
      `a task can ask for a stricter jail than its pool's, never a looser one; only the operator chooses "none", for a whole pool`,
    );
  });
});

describe("parseBoolean", () => {
  it.each(["yes", "true", "1", "on", "YES", "True", "y", "t"])("%s is true", (text) => {
    expect(parseBoolean(text)).toBe(true);
  });

  it.each(["no", "false", "0", "off", "NO", "n", "f"])("%s is false", (text) => {
    expect(parseBoolean(text)).toBe(false);
  });

  it.each(["", "maybe", "2", "yess"])("rejects %j", (text) => {
    expect(() => parseBoolean(text)).toThrow(
      `expected "yes" or "no" (or true/false, on/off, 1/0), got ${JSON.stringify(text)}`,
    );
  });
});

describe("artifacts", () => {
  const HEX = "a".repeat(64);
  const URL_EXPECTED = "expected an absolute path, a file:// URL or an http(s):// URL";

  it.each([
    "/opt/tools/jq-1.7",
    "file:///opt/tools/jq.tar.gz",
    "https://example.com/jq-1.7.tar.gz",
    "http://10.0.0.5:8080/x.tgz?v=1",
    "HTTPS://example.com/x",
  ])("accepts the URL %s", (url) => {
    expect(parseArtifactUrl(url)).toBe(url);
  });

  it.each([
    ["", `${URL_EXPECTED}, got nothing`],
    ["tools/jq", `${URL_EXPECTED}, got "tools/jq" (a path must be absolute)`],
    ["./jq", "(a path must be absolute)"],
    ["ftp://example.com/x", `${URL_EXPECTED}, got "ftp://example.com/x" (ftp: is not supported)`],
    ["s3://bucket/x", "(s3: is not supported)"],
    ["file://host/x", `expected a file:// URL of an absolute path on the sidecar's host`],
    ["file:relative", "expected a file:// URL of an absolute path"],
    ["https://", `${URL_EXPECTED}, got "https://", which is not a valid URL`],
    ["https:/example.com/x", "expected an http(s):// URL with a host"],
    ["https://me:secret@example.com/x", "expected a URL without credentials"],
    ["/opt/my tool", "(it has whitespace)"],
  ])("rejects the URL %j", (url, expected) => {
    expect(() => parseArtifactUrl(url)).toThrow(expected);
  });

  it("does not repeat credentials in the message", () => {
    expect(() => parseArtifactUrl("https://me:secret@example.com/x")).not.toThrow("secret");
  });

  it("accepts a sha256 of 64 hex digits, in lower case", () => {
    expect(parseSha256(HEX)).toBe(HEX);
    expect(parseSha256("AB".repeat(32))).toBe("ab".repeat(32));
  });

  it.each([
    ["", "expected 64 hex digits (the file's sha256, as sha256sum prints it), got nothing"],
    ["abc", `got "abc" (3 digits)`],
    [`${HEX}0`, "(65 digits)"],
    [`${"a".repeat(63)}g`, `("g" is not a hex digit)`],
  ])("rejects the sha256 %j", (hex, expected) => {
    expect(() => parseSha256(hex)).toThrow(expected);
  });
});
