import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../../errors.js";
import { buildCatalogue } from "./catalogue.js";
import { parseIni } from "./ini-parser.js";
import { MAX_CPU_PERCENT, PIDS_INFINITY } from "./jail-settings.js";
import { parseUnitText } from "./unit-file.js";
import { compileUnitRun } from "./unit-run.js";
import { SECTION_KEYS } from "./unit-schema.js";

const RUNS = 400;

/** Runs `action`; anything thrown must be a DefinitionError or DefinitionErrors. */
function onlyDefinitionErrors(action: () => unknown): void {
  try {
    action();
  } catch (error) {
    if (!(error instanceof DefinitionError || error instanceof DefinitionErrors)) throw error;
  }
}

const lineCount = (text: string): number =>
  (text.startsWith("\uFEFF") ? text.slice(1) : text).split("\n").length;

const anyText = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc
    .array(
      fc.constantFrom("[", "]", "=", "#", ";", '"', "'", "\\", " ", "\t", "\n", "\r\n", "a", "K", "X-"),
      {
        maxLength: 200,
      },
    )
    .map((parts) => parts.join("")),
);

const SECTIONS = [
  ...SECTION_KEYS.keys(),
  "Checks",
  "Environment",
  "Servce",
  "X-Mine",
  "service",
  "__proto__",
  "constructor",
];
const KEYS = [
  ...new Set([...SECTION_KEYS.values()].flat()),
  "check-a",
  "DOCKER_PORT",
  "usr",
  "X-Note",
  "1BAD",
  "__proto__",
  "constructor",
  "toString",
];
const VALUES = [
  "",
  "./run.sh",
  "pandoc",
  '"./check-pandoc"',
  "'single'",
  '"unclosed',
  "it's",
  "a b c",
  "a # comment",
  "a;b ; comment",
  "x \\",
  "\\",
  "never",
  "on-failure",
  "always",
  "5",
  "-1",
  "8G",
  "1.5G",
  "8GB",
  "infinity",
  "2s",
  "1min 30s",
  "soon",
  "* * * * *",
  "@hourly",
  "*/0 * * * *",
  "a.task",
  "b.service",
  "network.target",
  "a",
  "../x.task",
  "sh -c 'echo hi'",
  "a | b",
  "$(x)",
  '"a \\" b"',
  "99999999999999999999999",
  "0.0000000000000000001G",
  "64",
  "4194305",
  "150%",
  "0%",
  "12.5%",
  "yes",
  "off",
  "strict",
  "none",
  `https://example.com/x sha256=${"a".repeat(64)}`,
  "/opt/x sha256=abc",
  `sha256=${"a".repeat(64)} /opt/x`,
  "ftp://x",
  "Europe/Berlin",
  "Mars/Olympus",
  "+01:00",
  "queue",
  "cancel-previous",
  "backfill",
  "backfill(max=5)",
  "backfill(max=0)",
  "2026-12-01",
  "2026-03-29T02:30",
  "2026-12-01T08:00+01:00",
  "2026-02-30",
  "level",
  "0 0 30 2 *",
];

const nearValidLine = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...SECTIONS).map((name) => `[${name}]`) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...KEYS),
        fc.constantFrom("=", " = ", "="),
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...VALUES) },
          { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
        ),
      )
      .map(([key, equals, value]) => `${key}${equals}${value}`),
  },
  { weight: 1, arbitrary: fc.constantFrom("# comment", "; comment", "", "   ", "stray words", "[", "=x") },
);

const nearValidUnit = fc.array(nearValidLine, { maxLength: 25 }).map((lines) => lines.join("\n"));

const VALID_BLOCKS = [
  '[Command]\ncommand="./run.sh" # runs',
  "[Service]\nRestart=5\nLimitMem=8G\nMaxTime=1min 30s",
  '[Checks]\nc1="./check one"\nc2=which pandoc',
  "[Environment]\nA=1\nB='two words'",
  "[Dependencies]\nRequires=a.task",
  "[Dependencies]\nWants=b \\\n  d.task\nAfter=network.target c.target",
  "[RunIf]\ncron=*/5 * * * *",
  "[RunIf]\nRequires=./due.sh\nInterval=30s",
  "[RunIf]\nTimeZone=Europe/Berlin\nOverlap=queue\nCatchUp=backfill(max=3)\nJitter=5s\nStart=2026-12-01\nEnd=2027-01-01",
  "[RunIf]\nTimeout=10s\nMode=level",
  "[Install]\npip=requests\npip=numpy\nFrom=deps.json",
  "[Service]\nLimitPids=256\nLimitCPU=150%\nPrivateNetwork=yes\nJail=strict",
  `[Install]\nArtifact=file:///opt/jq sha256=${"0".repeat(64)}`,
  "[Args]\nargs=-v --out 'a b'",
];

/** Mostly valid units, so that compiling runs (and cycles, references, targets) get exercised too. */
const mostlyValidUnit = fc
  .tuple(fc.subarray(VALID_BLOCKS), fc.option(nearValidLine, { nil: undefined }))
  .map(([blocks, extra]) => [...blocks, ...(extra === undefined ? [] : [extra])].join("\n"));
const unitFileName = fc.constantFrom(
  "a.task",
  "b.service",
  "c.target",
  "network.target",
  "a.service",
  "d.task",
);

describe("property: never throws anything but DefinitionError, never hangs", () => {
  it("parseIni on any text returns problems with positions inside the text", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const { sections, problems } = parseIni(text, "f.task");
        const lines = lineCount(text);
        for (const problem of problems) {
          expect(problem).toBeInstanceOf(DefinitionError);
          expect(problem.location.line).toBeGreaterThanOrEqual(1);
          expect(problem.location.line).toBeLessThanOrEqual(lines);
          expect(problem.location.column).toBeGreaterThanOrEqual(1);
        }
        for (const section of sections) {
          for (const entry of section.entries) {
            const end = entry.value.positionAt(entry.value.text.length);
            expect(end.line).toBeLessThanOrEqual(lines);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("parseUnitText on any text or near-valid unit reports problems instead of throwing", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, nearValidUnit), unitFileName, (text, fileName) => {
        const { unit, problems } = parseUnitText(text, `d/${fileName}`, fileName);
        for (const problem of problems) {
          expect(problem).toBeInstanceOf(DefinitionError);
          expect(problem.message).not.toContain("\n");
        }
        expect(unit !== undefined).toBe(problems.length === 0);
      }),
      { numRuns: RUNS },
    );
  });

  it("catalogues of near-valid units compile or fail with DefinitionError(s) only", () => {
    const catalogueFiles = fc.uniqueArray(fc.tuple(unitFileName, fc.oneof(nearValidUnit, mostlyValidUnit)), {
      maxLength: 5,
      selector: ([name]) => name,
    });
    let compiled = 0;
    fc.assert(
      fc.property(catalogueFiles, (files) => {
        onlyDefinitionErrors(() => {
          const catalogue = buildCatalogue(
            "d",
            files.map(([fileName, text]) => ({ fileName, text })),
          );
          const run = compileUnitRun(catalogue);
          for (const task of run.tasks) expect(task.name).not.toBe("");
          compiled++;
        });
      }),
      { numRuns: RUNS },
    );
    expect(compiled).toBeGreaterThan(RUNS / 20);
  });

  it("handles long and pathological lines quickly", () => {
    const long = [
      `[Service]\nLimitMem=${"9".repeat(100_000)}.${"9".repeat(100_000)}K`,
      `[RunIf]\ncron=${"1,".repeat(50_000)}1 * * * *`,
      `[Dependencies]\nRequires=${"a.task ".repeat(20_000)}`,
      `[Args]\nargs=${"\\\n".repeat(20_000)}`,
      `[Checks]\n${"c=".repeat(50_000)}`,
      `${'"'.repeat(100_000)}`,
      `[Command]\ncommand=${"'a' ".repeat(20_000)}`,
      "[Service]\nUser=a\n".repeat(20_000),
      `[Service]\n${Array.from({ length: 20_000 }, (_, i) => `K${i}=v`).join("\n")}`,
      `[Dependencies]\nRequires=${Array.from({ length: 20_000 }, (_, i) => `u${i}.task \\`).join("\n")}`,
      `[Checks]\n${Array.from({ length: 20_000 }, (_, i) => `c${i % 100}=./x`).join("\n")}`,
      "x\n".repeat(100_000),
      `[A]\n${"k".repeat(100_000)}`,
    ];
    for (const text of long) {
      const started = performance.now();
      onlyDefinitionErrors(() => buildCatalogue("d", [{ fileName: "a.task", text }]));
      expect(performance.now() - started).toBeLessThan(5_000);
    }
  });
});

describe("property: what parses is what was written", () => {
  const plainKey = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,10}$/);
  const plainValue = fc.stringMatching(/^[A-Za-z0-9./:_+-]+(?: [A-Za-z0-9./:_+-]+){0,3}$/);

  it("reads back keys and values, with or without quotes and trailing comments", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(plainKey, plainValue, fc.constantFrom("", '"', "'"), fc.boolean()), {
          minLength: 1,
          maxLength: 10,
        }),
        (entries) => {
          const text = [
            "[S]",
            ...entries.map(
              ([key, value, quote, comment]) => `${key}=${quote}${value}${quote}${comment ? " # note" : ""}`,
            ),
          ].join("\n");
          const { sections, problems } = parseIni(text, "f");
          expect(problems).toEqual([]);
          expect(sections[0]!.entries.map((entry) => [entry.key, entry.value.text])).toEqual(
            entries.map(([key, value]) => [key, value]),
          );
          sections[0]!.entries.forEach((entry, index) => {
            const [, , quote] = entries[index]!;
            expect(entry.value.positionAt(0)).toEqual({
              line: index + 2,
              column: entry.key.length + 2 + quote.length,
            });
          });
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe("property: jail settings reach the TaskSpec as written", () => {
  const hex = fc
    .array(fc.constantFrom(..."0123456789abcdefABCDEF"), { minLength: 64, maxLength: 64 })
    .map((digits) => digits.join(""));

  it("LimitPids=N is N processes, LimitCPU=P% is P*10 thousandths of a CPU, artifacts keep their pins", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: PIDS_INFINITY }),
        fc.integer({ min: 1, max: MAX_CPU_PERCENT }),
        fc.boolean(),
        fc.array(fc.tuple(fc.stringMatching(/^\/[A-Za-z0-9._/-]{1,30}$/), hex), { maxLength: 3 }),
        (pids, percent, network, artifacts) => {
          const text = [
            "[Service]",
            `LimitPids=${pids}`,
            `LimitCPU=${percent}%`,
            `PrivateNetwork=${network ? "yes" : "no"}`,
            "[Install]",
            ...artifacts.map(([url, sha]) => `Artifact=${url} sha256=${sha}`),
            "[Command]",
            "command=x",
          ].join("\n");
          const [spec] = compileUnitRun(buildCatalogue("d", [{ fileName: "a.task", text }])).tasks;
          expect(spec?.limits).toMatchObject({ pids, cpuMillis: percent * 10 });
          expect(spec?.privateNetwork).toBe(network);
          expect(spec?.install?.artifacts.map((a) => [a.url, a.sha256])).toEqual(
            artifacts.map(([url, sha]) => [url, sha.toLowerCase()]),
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("any LimitPids= or LimitCPU= outside the range is a problem at its value", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(0), fc.integer({ min: PIDS_INFINITY + 1, max: 2 ** 40 })),
        fc.oneof(fc.constant(0), fc.integer({ min: MAX_CPU_PERCENT + 1, max: 2 ** 40 })),
        (pids, percent) => {
          const text = `[Service]\nLimitPids=${pids}\nLimitCPU=${percent}%\n[Command]\ncommand=x\n`;
          const { problems } = parseUnitText(text, "d/a.task", "a.task");
          expect(problems.map((problem) => problem.message.split(": ").slice(0, 2).join(": "))).toEqual([
            "d/a.task:2:11: Service.LimitPids",
            "d/a.task:3:10: Service.LimitCPU",
          ]);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
