import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { findCycle } from "../dag.js";
import { DefinitionError, DefinitionErrors } from "../errors.js";
import type { RunSpec } from "../gen/taskframe/v1/spec_pb.js";
import { PROBLEM_LIMIT } from "./pipeline-problems.js";
import { TASK_NAME } from "./pipeline-schema.js";
import { MAX_CPU_PERCENT, PIDS_INFINITY } from "./units/jail-settings.js";
import { compilePipeline } from "./yaml-pipeline.js";

const FILE = "/srv/pipes/fuzz.yaml";
const ENV = { HOME: "/home/me", EMPTY: "" };

/**
 * Compiles `text`: it must either give a run that the hub would accept (valid unique names, needs
 * and after naming tasks of the run, no cycle) or fail with positioned DefinitionError(s), never
 * anything else, and never more problems than the limit (plus the line saying it stopped).
 */
async function compilesOrExplains(text: string, params: Record<string, string> = {}): Promise<void> {
  let spec: RunSpec;
  try {
    spec = await compilePipeline(text, FILE, { env: ENV, params });
  } catch (error) {
    if (error instanceof DefinitionErrors) {
      expect(error.problems.length).toBeGreaterThan(1);
      expect(error.problems.length).toBeLessThanOrEqual(PROBLEM_LIMIT + 1);
      for (const problem of error.problems) expect(problem.message).not.toContain("\n");
      return;
    }
    if (error instanceof DefinitionError) {
      expect(error.message.startsWith(FILE)).toBe(true);
      expect(error.message).not.toContain("\n");
      return;
    }
    throw error;
  }
  const names = new Set(spec.tasks.map((task) => task.name));
  expect(names.size).toBe(spec.tasks.length);
  for (const task of spec.tasks) {
    expect(task.name).toMatch(TASK_NAME);
    for (const name of [...task.needs, ...task.after]) expect(names.has(name)).toBe(true);
    expect(task.target.case).toBeDefined();
  }
  expect(
    findCycle(spec.tasks.map((task) => ({ name: task.name, needs: [...task.needs, ...task.after] }))),
  ).toBe(undefined);
}

const names = fc.constantFrom("a", "b", "c", "fan", "fan-0", "fan-x", "bad name", "", "-x", "ünï");
const words = fc.constantFrom(
  "./a.sh",
  "python3 x.py",
  `echo \${{ env.HOME }}`,
  `echo \${{ env.MISSING }}`,
  `echo '\${{ params.p }}'`,
  `echo \${{ params.q }}`,
  `echo \${{ item }} \${{ index }}`,
  `echo \${{ item.key }}`,
  `echo \${{ matrix.os }}`,
  `echo \${{ unclosed`,
  `echo $\${{ literal }}`,
  "a | b",
  'echo "open',
  "",
  "   ",
);
const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double(),
);
const anyValue = fc.oneof(
  scalar,
  words,
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), scalar, { maxKeys: 3 }),
);
const nameList = fc.oneof(names, fc.array(names, { maxLength: 3 }), anyValue);

const taskFields = fc.record(
  {
    run: fc.oneof(words, fc.array(fc.oneof(words, scalar), { maxLength: 3 }), anyValue),
    handler: fc.oneof(fc.constantFrom("resize-image", "pkg.mod.fn", "9bad", "a..b"), anyValue),
    unit: fc.constantFrom("x.task", "y.txt", `\${{ params.p }}.task`),
    input: anyValue,
    content_type: fc.constantFrom("application/json", "text/plain", "bogus"),
    args: fc.oneof(fc.array(fc.oneof(words, scalar), { maxLength: 3 }), anyValue),
    env: fc.oneof(
      fc.dictionary(fc.constantFrom("A", "B", `\${{ x }}`), fc.oneof(words, scalar), { maxKeys: 2 }),
      anyValue,
    ),
    cwd: fc.oneof(words, anyValue),
    needs: nameList,
    after: nameList,
    continue_on_error: fc.oneof(fc.boolean(), anyValue),
    for_each: fc.oneof(
      fc.array(fc.oneof(scalar, fc.record({ key: fc.oneof(names, scalar), v: scalar })), { maxLength: 4 }),
      fc.constant({ file: "no-such-file.txt" }),
      anyValue,
    ),
    condition: fc.oneof(words, anyValue),
    checks: fc.oneof(
      fc.array(fc.oneof(words, fc.record({ name: names, run: words })), { maxLength: 2 }),
      anyValue,
    ),
    retries: fc.oneof(fc.nat(10), anyValue),
    timeout: fc.oneof(fc.constantFrom("30s", "1h30m", "soon", `\${{ params.p }}`), anyValue),
    user: fc.oneof(fc.constantFrom("etl", "0", "bad user"), anyValue),
    limits: fc.oneof(
      fc.record(
        {
          memory: fc.oneof(fc.constantFrom("2G", "8GB", "infinity", 4096, -1), anyValue),
          pids: fc.oneof(
            fc.integer({ min: -1, max: 5_000_000 }),
            fc.constantFrom("infinity", "15%"),
            anyValue,
          ),
          cpu: fc.oneof(fc.constantFrom("150%", "0%", "12.5%", 1.5, "infinity"), anyValue),
          pid: anyValue,
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    private_network: fc.oneof(fc.boolean(), anyValue),
    jail: fc.oneof(fc.constantFrom("standard", "strict", "none", `\${{ params.p }}`), anyValue),
    install: fc.oneof(
      fc.record(
        {
          apt: fc.oneof(fc.array(fc.constantFrom("jq", "-y", ""), { maxLength: 2 }), anyValue),
          from: fc.oneof(fc.constantFrom("deps.json", ""), anyValue),
          artifacts: fc.oneof(
            fc.array(
              fc.record(
                {
                  url: fc.oneof(fc.constantFrom("/opt/x", "https://example.com/x", "x", "ftp://x"), anyValue),
                  sha256: fc.oneof(fc.constantFrom("a".repeat(64), "abc", "1".repeat(64)), anyValue),
                },
                { requiredKeys: [] },
              ),
              { maxLength: 2 },
            ),
            anyValue,
          ),
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    if: anyValue,
    matrix: anyValue,
  },
  { requiredKeys: [] },
);

const pipeline = fc.record(
  {
    name: fc.oneof(fc.constantFrom("etl", `run-\${{ params.p }}`), anyValue),
    params: fc.oneof(
      fc.dictionary(fc.constantFrom("p", "q", "1st"), fc.oneof(scalar, fc.constant({ default: "d" })), {
        maxKeys: 3,
      }),
      anyValue,
    ),
    defaults: fc.oneof(
      fc.record({ retries: fc.nat(3), env: fc.constant({ D: `\${{ env.HOME }}` }) }, { requiredKeys: [] }),
      anyValue,
    ),
    tasks: fc.oneof(fc.dictionary(names, fc.oneof(taskFields, anyValue), { maxKeys: 5 }), anyValue),
    steps: fc.oneof(
      fc.array(
        fc.oneof(
          words,
          fc
            .record({ name: names }, { requiredKeys: [] })
            .chain((base) => taskFields.map((fields) => ({ ...base, ...fields }))),
          fc.record({ parallel: fc.array(fc.oneof(words, taskFields), { maxLength: 3 }) }),
          anyValue,
        ),
        { maxLength: 5 },
      ),
      anyValue,
    ),
    jobs: anyValue,
  },
  { requiredKeys: [] },
);

describe("compilePipeline never crashes or hangs", () => {
  it("on arbitrary bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async (bytes) => {
        await compilesOrExplains(Buffer.from(bytes).toString("utf8"));
      }),
      { numRuns: 300 },
    );
  });

  it("on arbitrary text made of YAML's own characters", async () => {
    const yamlish = fc
      .array(
        fc.constantFrom(
          "tasks:",
          "steps:",
          "\n",
          "  ",
          "- ",
          "a: ",
          "run: ",
          "{",
          "}",
          "[",
          "]",
          ",",
          "&x ",
          "*x",
          "'",
          '"',
          "#",
          "!!str ",
          `\${{ `,
          " }}",
          "x",
        ),
        { maxLength: 60 },
      )
      .map((parts) => parts.join(""));
    await fc.assert(
      fc.asyncProperty(yamlish, async (text) => {
        await compilesOrExplains(text);
      }),
      { numRuns: 500 },
    );
  });

  it("on near-valid pipelines", async () => {
    await fc.assert(
      fc.asyncProperty(
        pipeline,
        fc.dictionary(fc.constantFrom("p", "q", "r"), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
        async (value, params) => {
          await compilesOrExplains(stringify(value), params);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("and compiles every valid pipeline, fan-outs and fan-ins included", async () => {
    const valid = fc.integer({ min: 1, max: 6 }).chain((count) =>
      fc.tuple(
        ...Array.from({ length: count }, (_, i) =>
          fc.record({
            run: fc.constantFrom("./a.sh", `echo \${{ env.HOME }}`, `echo '\${{ params.p }} x'`),
            needs: fc.subarray(Array.from({ length: i }, (_, j) => `t${j}`)),
            after: fc.subarray(Array.from({ length: i }, (_, j) => `t${j}`)),
            for_each: fc.option(
              fc.array(fc.string({ minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 3 }),
              { nil: undefined },
            ),
            continue_on_error: fc.boolean(),
          }),
        ),
      ),
    );
    await fc.assert(
      fc.asyncProperty(valid, async (tasks) => {
        const fields = tasks.map(({ for_each, run, ...rest }) =>
          for_each === undefined ? { run, ...rest } : { run: `${run} \${{ index }}`, for_each, ...rest },
        );
        const text = stringify({
          params: { p: "v" },
          tasks: Object.fromEntries(fields.map((task, i) => [`t${i}`, task])),
        });
        const spec = await compilePipeline(text, FILE, { env: ENV });
        const fanned = tasks.reduce((sum, task) => sum + (task.for_each?.length ?? 1), 0);
        expect(spec.tasks).toHaveLength(fanned);
        await compilesOrExplains(text);
      }),
      { numRuns: 200 },
    );
  });
});

describe("limits reach the TaskSpec as written", () => {
  it("pids: N is N processes and cpu: P% is P*10 thousandths of a CPU, as LimitPids= and LimitCPU=", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: PIDS_INFINITY }),
        fc.integer({ min: 1, max: MAX_CPU_PERCENT }),
        fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
        async (pids, percent, memory) => {
          const limits = { pids, cpu: `${percent}%`, ...(memory === undefined ? {} : { memory }) };
          const spec = await compilePipeline(stringify({ tasks: { a: { run: "./a.sh", limits } } }), FILE);
          expect(spec.tasks[0]?.limits).toMatchObject({
            pids,
            cpuMillis: percent * 10,
            memoryBytes: BigInt(memory ?? 0),
            diskBytes: 0n,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
