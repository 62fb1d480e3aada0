import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadHubConfig, loadSidecarConfig } from "../../core/config.js";
import { parseDurationMs } from "../../core/definitions/duration.js";
import { cronScheduleProblem, parseDateTime, parseTimeZone } from "../../core/definitions/schedule-values.js";
import { calendarToSchedule } from "../../core/definitions/systemd-calendar.js";
import { parseTimeSpanMs } from "../../core/definitions/systemd-time.js";
import { parseIni } from "../../core/definitions/units/ini-parser.js";
import { parseSizeBytes } from "../../core/definitions/units/size.js";
import { parseUnitText } from "../../core/definitions/units/unit-file.js";
import { ValueProblem } from "../../core/definitions/units/unit-values.js";
import { compilePipeline } from "../../core/definitions/yaml-pipeline.js";
import { durationSchema } from "../../core/duration-schema.js";
import { TaskframeError } from "../../core/errors.js";
import { parseFailpoints } from "../../core/failpoints.js";
import { parseDescriptor } from "../../core/mapreduce/descriptor.js";
import { CronSchedule, ScheduleError } from "../../core/schedules/cron-schedule.js";
import { parseTaskToken, verifyTaskToken } from "../../core/task-token.js";
import { parsePoolPolicy } from "../../hub/admission.js";

/*
 * RELIABILITY.md test 39 / CVE-2026-40886: every parser a user or a stored record reaches
 * either returns a value or throws a deliberate error with a message: the project's
 * TaskframeError (DefinitionError and its kin) at the top, or, from the small value parsers whose
 * callers wrap it with a file position, a plain Error (or the named subclasses below). Never a
 * TypeError, RangeError, SyntaxError or a stack overflow. Random text and random structures,
 * thousands of runs each, a few seconds at most per property.
 */

/** Errors a parser throws on purpose; anything else (TypeError, RangeError, ...) is a bug. */
const DELIBERATE = new Set<unknown>([Error, ScheduleError, ValueProblem]);

function deliberate(error: unknown, strict: boolean): void {
  if (error instanceof TaskframeError) {
    expect(error.message.length).toBeGreaterThan(0);
    return;
  }
  if (strict || !(error instanceof Error) || !DELIBERATE.has(error.constructor)) {
    throw new Error(`not a deliberate parse error: ${String(error)}`, { cause: error });
  }
  expect(error.message.length).toBeGreaterThan(0);
}

/** Calls `parse`; its error must be deliberate (strict: a TaskframeError). */
function returnsOrExplains(parse: () => unknown, strict = false): void {
  try {
    parse();
  } catch (error) {
    deliberate(error, strict);
  }
}

async function returnsOrExplainsAsync(parse: () => Promise<unknown>, strict = false): Promise<void> {
  try {
    await parse();
  } catch (error) {
    deliberate(error, strict);
  }
}

const RUNS = { numRuns: 2_000 } as const;

/** Text that looks a bit like what the parser expects: its vocabulary, mixed with noise. */
const textOf = (vocabulary: readonly string[], maxLength = 12) =>
  fc
    .array(
      fc.oneof(
        fc.constantFrom(...vocabulary),
        fc.string({ maxLength: 4 }),
        fc.string({ unit: "binary", maxLength: 3 }),
      ),
      { maxLength },
    )
    .map((parts) => parts.join(""));

/** Maps with the keys that pollute prototypes and the keys a pipeline knows. */
const hostileKey = fc.constantFrom(
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "tasks",
  "run",
  "needs",
  "env",
  "params",
  "for_each",
  "timeout",
  "retries",
  "handler",
  "input",
  "limits",
  "memory",
  "a",
  "b",
);
const structure = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.string({ maxLength: 8 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    tie("map"),
  ),
  map: fc.dictionary(fc.oneof(hostileKey, fc.string({ maxLength: 6 })), tie("value"), { maxKeys: 5 }),
})).map;

describe("YAML pipelines", () => {
  it("random text compiles or fails with DefinitionError(s)", async () => {
    const vocabulary = [
      "tasks:",
      "\n",
      "  ",
      "- ",
      "run: ",
      "needs: [",
      "]",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal text of an expression
      "${{ params.x }}",
      "&a",
      "*a",
      "<<: *a",
      "!!js/function",
      "{",
      "}",
      ":",
      "'",
      '"',
      "#",
      "---\n",
      "?",
      "|\n",
    ];
    await fc.assert(
      fc.asyncProperty(textOf(vocabulary, 30), (text) =>
        returnsOrExplainsAsync(() => compilePipeline(text, "/fuzz/p.yaml", { env: {}, params: {} }), true),
      ),
      { numRuns: 1_500 },
    );
  });

  it("random structures (with __proto__ and constructor keys) compile or fail with DefinitionError(s), and pollute nothing", async () => {
    await fc.assert(
      fc.asyncProperty(structure, async (value) => {
        const text = stringify({ tasks: value }, { aliasDuplicateObjects: false });
        await returnsOrExplainsAsync(
          () => compilePipeline(text, "/fuzz/s.yaml", { env: {}, params: {} }),
          true,
        );
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.keys(Object.prototype)).toEqual([]);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe("INI units", () => {
  const vocabulary = [
    "[Unit]",
    "[Task]",
    "[Service]",
    "[Install]",
    "[RunIf]",
    "\n",
    "ExecStart=",
    "Requires=",
    "After=",
    "LimitMemory=",
    "Environment=",
    "Timeout=",
    "OnCalendar=",
    "\\\n",
    ";",
    "#",
    "=",
    " ",
    '"',
    "%",
    "$",
    "-",
    "infinity",
    "1G",
    "5s",
  ];
  it("parseIni never throws; parseUnitText returns a unit or DefinitionErrors", () => {
    fc.assert(
      fc.property(
        textOf(vocabulary, 40),
        fc.constantFrom("a.task", "b.service", "c.target", "d.txt", ".task"),
        (text, name) => {
          parseIni(text, `/fuzz/${name}`);
          const { problems } = parseUnitText(text, `/fuzz/${name}`, name);
          for (const problem of problems) expect(problem).toBeInstanceOf(TaskframeError);
        },
      ),
      RUNS,
    );
  });
});

describe("values: durations, sizes, time spans", () => {
  it("parseDurationMs, durationSchema, parseSizeBytes and parseTimeSpanMs return or explain", () => {
    const vocabulary = [
      "1",
      "0",
      ".5",
      "e9",
      "e999",
      "-",
      "+",
      "h",
      "m",
      "s",
      "ms",
      "us",
      "d",
      "y",
      " ",
      "and",
      ",",
      "G",
      "K",
      "infinity",
      "%",
      "999999999999999999999",
    ];
    fc.assert(
      fc.property(textOf(vocabulary), fc.double(), (text, number) => {
        returnsOrExplains(() => parseDurationMs(text));
        returnsOrExplains(() => parseDurationMs(number));
        const parsed = durationSchema().safeParse(text);
        if (parsed.success) expect(Number.isSafeInteger(parsed.data)).toBe(true);
        returnsOrExplains(() => parseSizeBytes(text));
        returnsOrExplains(() => parseTimeSpanMs(text));
      }),
      { numRuns: 3_000 },
    );
  });
});

describe("schedules", () => {
  it("cron expressions, systemd calendars, date-times and time zones return or explain", () => {
    const vocabulary = [
      "*",
      "/",
      ",",
      "-",
      "0",
      "5",
      "59",
      "60",
      "99999999999",
      "L",
      "W",
      "#",
      "?",
      " ",
      "MON",
      "jan",
      "@daily",
      "@every",
      "*-*-*",
      ":",
      "..",
      "~",
      "Europe/Paris",
      "UTC",
      "T",
      "2026-02-30",
      "24:00",
    ];
    fc.assert(
      fc.property(
        textOf(vocabulary, 16),
        fc.constantFrom("UTC", "Europe/Paris", "Nowhere/City", "", "+25:00"),
        (text, zone) => {
          returnsOrExplains(() => CronSchedule.parse(text, zone || "UTC"));
          returnsOrExplains(() => cronScheduleProblem(text, zone || "UTC"));
          returnsOrExplains(() => calendarToSchedule(text));
          returnsOrExplains(() => parseDateTime(text));
          returnsOrExplains(() => parseTimeZone(text));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe("stored records and operator input", () => {
  it("MapReduce descriptors: random JSON and text return a descriptor or a TaskframeError", () => {
    const descriptor = fc.record(
      {
        phase: fc.constantFrom("map", "reduce", "combine", 1),
        maps: fc.oneof(fc.integer(), fc.string()),
        __proto__: structure,
        constructor: structure,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          descriptor.map((d) => JSON.stringify(d)),
          fc.string(),
          fc.json(),
        ),
        (text) => returnsOrExplains(() => parseDescriptor(text), true),
      ),
      RUNS,
    );
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it("TASKFRAME_FAILPOINTS: a map of points or a TaskframeError", () => {
    fc.assert(
      fc.property(
        textOf(["a.b", "=", ",", "exit", "throw", "sleep(1)", " ", "__proto__", "constructor"]),
        (text) => returnsOrExplains(() => parseFailpoints(text), true),
      ),
      RUNS,
    );
  });

  it("task tokens: parsed or undefined, verified or undefined, never a throw", () => {
    const secret = Buffer.alloc(32, 7);
    const vocabulary = [
      "01a21b2d-0000-7000-8000-000000000000",
      ":",
      "1",
      "0",
      "99999999999999999999",
      "-",
      "ff",
      "a".repeat(64),
    ];
    fc.assert(
      fc.property(textOf(vocabulary), (text) => {
        parseTaskToken(text);
        verifyTaskToken(text, secret);
      }),
      RUNS,
    );
  });

  it("hub and sidecar settings: a config or a TaskframeError naming the setting", () => {
    const keys = fc.constantFrom(
      "listen",
      "ack-wait",
      "replicas",
      "max-deliveries",
      "retention",
      "storage",
      "max-task-spec-bytes",
      "max-request-bytes",
      "pool",
      "slots",
      "labels",
      "allow-env",
      "__proto__",
      "unknown-key",
    );
    const values = fc.oneof(
      fc.string({ maxLength: 10 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
    );
    fc.assert(
      fc.property(fc.dictionary(keys, values, { maxKeys: 4 }), (flags) => {
        const base = { nats: "nats://127.0.0.1:4222", db: "postgres://x/y", ...flags };
        returnsOrExplains(() => loadHubConfig(base), true);
        returnsOrExplains(() => loadSidecarConfig({ nats: "nats://127.0.0.1:4222", ...flags }), true);
      }),
      { numRuns: 1_000 },
    );
  });

  it("--config files: a config or a TaskframeError naming the file (found: an unresolved alias was a ReferenceError)", () => {
    const dir = mkdtempSync(join(tmpdir(), "taskframe-fuzz-config-"));
    const file = join(dir, "hub.yaml");
    const vocabulary = [
      "listen: ",
      "ack-wait: ",
      "autoscale:",
      "\n",
      "  ",
      "pools:",
      "&a",
      "*a",
      "[",
      "]",
      "{",
      "}",
      ": ",
      "- ",
      "1s",
      "127.0.0.1:0",
      "!!binary",
      "<<: *a",
      "__proto__: ",
    ];
    try {
      fc.assert(
        fc.property(textOf(vocabulary, 20), (text) => {
          writeFileSync(file, text);
          returnsOrExplains(
            () => loadHubConfig({ nats: "nats://127.0.0.1:4222", db: "postgres://x/y" }, file),
            true,
          );
        }),
        { numRuns: 1_000 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--pool-policy files: policies or a TaskframeError naming the file", () => {
    const vocabulary = [
      "pools:",
      "\n",
      "  ",
      '"*":',
      "gpu:",
      "max_memory: ",
      "max_cpu: ",
      "max_timeout: ",
      "allow_env: [",
      "]",
      "LD_PRELOAD",
      "TASKFRAME_X",
      "1G",
      "150%",
      "2",
      "-1",
      "1h",
      "{",
      "}",
      ",",
      "__proto__:",
      "&a",
      "*a",
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          textOf(vocabulary, 24),
          structure.map((s) => stringify({ pools: s })),
        ),
        (text) => returnsOrExplains(() => parsePoolPolicy(text, "/fuzz/policy.yaml"), true),
      ),
      RUNS,
    );
  });
});
