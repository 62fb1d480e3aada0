import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../errors.js";
import { compilePipeline, loadPipelineFile } from "./yaml-pipeline.js";

const FILE = "pipes/etl.yaml";
const yaml = (...lines: string[]): string => `${lines.join("\n")}\n`;

async function compileError(text: string): Promise<DefinitionError> {
  try {
    await compilePipeline(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(DefinitionError);
    const definitionError = error as DefinitionError;
    expect(definitionError.message).not.toContain("\n");
    return definitionError;
  }
  throw new Error("expected the pipeline to be rejected");
}

/** Asserts `FILE:LINE:COL: PATH: ...` and that the message says what was expected. */
async function expectProblem(
  text: string,
  where: string,
  path: string | undefined,
  ...expected: string[]
): Promise<void> {
  const { message } = await compileError(text);
  expect(message.startsWith(path ? `${FILE}:${where}: ${path}: ` : `${FILE}:${where}: `), message).toBe(true);
  for (const part of expected) expect(message).toContain(part);
}

describe("pipeline errors: reading and parsing", () => {
  it("reports a file that cannot be read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "taskframe-missing-"));
    const file = join(dir, "nope.yaml");
    try {
      await expect(loadPipelineFile(file)).rejects.toThrow(`${file}: cannot read pipeline file: ENOENT`);
      await expect(loadPipelineFile(dir)).rejects.toThrow(`${dir}: cannot read pipeline file: EISDIR`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports malformed YAML at the parser's position", async () => {
    await expectProblem(yaml("tasks:", "  a: { run: [x, y }"), "2:19", undefined, "invalid YAML");
    await expectProblem(
      yaml("tasks:", "  a: { run: x }", "  a: { run: y }"),
      "3:3",
      undefined,
      "invalid YAML",
      "unique",
    );
    await expectProblem(yaml("steps:", "  - *nothing"), "2:5", undefined, "invalid YAML", "alias");
  });

  it("rejects a top level that is not a map", async () => {
    await expectProblem(
      yaml("- ./a.sh", "- ./b.sh"),
      "1:1",
      undefined,
      "expected a map with `tasks:` and/or `steps:`",
      "got a list",
    );
    await expectProblem(yaml("just words"), "1:1", undefined, 'got "just words"');
  });

  it("rejects an empty pipeline", async () => {
    const expectation = "the pipeline defines no tasks: expected a `tasks:` map or a `steps:` list";
    await expectProblem("", "1:1", undefined, expectation);
    await expectProblem(yaml("# nothing here"), "1:1", undefined, expectation);
    await expectProblem(yaml("name: etl", "tasks: {}", "steps: []"), "1:1", undefined, expectation);
  });
});

describe("pipeline errors: keys", () => {
  it("names an unknown key, lists the expected keys and suggests the closest", async () => {
    await expectProblem(
      yaml("tasks:", "  extract:", "    run: ./extract.sh", "    retires: 2"),
      "4:5",
      "tasks.extract.retires",
      "unknown key 'retires'",
      "did you mean 'retries'?",
      "expected one of: run, args, env, cwd, needs, after, continue_on_error, for_each",
    );
  });

  it("does not suggest a key when none is close", async () => {
    const { message } = await compileError(yaml("tasks:", "  a: { run: x, zebra: ubuntu }"));
    expect(message).toContain("unknown key 'zebra'");
    expect(message).not.toContain("did you mean");
  });

  it("checks keys at the top level, in defaults, in steps and in groups", async () => {
    await expectProblem(
      yaml("step:", "  - ./a.sh"),
      "1:1",
      "step",
      "did you mean 'steps'?",
      "name, labels, params, defaults, tasks, steps",
    );
    await expectProblem(
      yaml("defaults:", "  timout: 5s", "steps: [./a.sh]"),
      "2:3",
      "defaults.timout",
      "did you mean 'timeout'?",
    );
    await expectProblem(
      yaml("steps:", "  - ./a.sh", "  - { name: b, rn: ./b.sh }"),
      "3:16",
      "steps[1].rn",
      "did you mean 'run'?",
    );
    await expectProblem(
      yaml("steps:", "  - parallel: [./a.sh]", "    name: group"),
      "3:5",
      "steps[0].name",
      "unknown key 'name'",
      "expected one of: parallel",
    );
  });

  it("explains that a task's name is its key under tasks", async () => {
    await expectProblem(
      yaml("tasks:", "  a: { run: x, name: b }"),
      "2:16",
      "tasks.a.name",
      "its key under `tasks:`",
    );
  });

  it("says which kind of task a misplaced key belongs to", async () => {
    await expectProblem(
      yaml("tasks:", "  a:", "    handler: resize", "    env: { A: b }"),
      "4:5",
      "tasks.a.env",
      "unknown key 'env': applies to `run:` tasks, not to `handler:` tasks",
    );
    await expectProblem(
      yaml("tasks:", "  a:", "    unit: a.task", "    retries: 2"),
      "4:5",
      "tasks.a.retries",
      "a `unit:` task takes its command and settings from the unit file",
    );
    await expectProblem(
      yaml("tasks:", "  a:", "    run: ./a.sh", "    handler: resize"),
      "4:5",
      "tasks.a.handler",
      "a task has one of `run:`, `handler:` or `unit:`, got both `run:` and `handler:`",
    );
  });

  it("requires run", async () => {
    await expectProblem(
      yaml("tasks:", "  a:", "    retries: 1"),
      "3:5",
      "tasks.a.run",
      "missing; expected `run:` with a command string or a list of argv words (or `handler:`",
    );
  });
});

describe("pipeline errors: values", () => {
  it.each([
    ["retries: two", "tasks.a.retries", 'expected a non-negative integer, got "two"'],
    ["retries: -1", "tasks.a.retries", "expected a non-negative integer, got -1"],
    ["retries: 1.5", "tasks.a.retries", "expected a non-negative integer, got 1.5"],
    ["retries:", "tasks.a.retries", "expected a non-negative integer, got an empty value"],
    [
      "timeout: soon",
      "tasks.a.timeout",
      'expected a duration such as "500ms", "30s", "10m" or "1h30m", got "soon"',
    ],
    ["timeout: -5s", "tasks.a.timeout", 'expected a non-negative duration, got "-5s"'],
    ["timeout: [1]", "tasks.a.timeout", "got a list"],
    ["retry_interval: '10'", "tasks.a.retry_interval", "expected a unit after 10"],
    ["retry_backoff: linear", "tasks.a.retry_backoff", 'expected "fixed" or "exponential", got "linear"'],
    ["retry_jitter: 2", "tasks.a.retry_jitter", "expected a number from 0 to 1, got 2"],
    ["env: [A=1]", "tasks.a.env", "expected a map of names to strings, got a list"],
    ["cwd: 3", "tasks.a.cwd", "expected a directory path, got 3"],
    ["args: { a: 1 }", "tasks.a.args", "expected a list of strings, numbers or booleans, got a map"],
    ["needs: 3", "tasks.a.needs", "expected a task name or a list of task names, got 3"],
  ])("rejects %s", async (line, path, expected) => {
    // The value starts after "key: "; an empty value is right after the colon.
    const column = 4 + line.indexOf(":") + (line.endsWith(":") ? 2 : 3);
    await expectProblem(
      yaml("tasks:", "  a:", "    run: ./a.sh", `    ${line}`),
      `4:${column}`,
      path,
      expected,
    );
  });

  it("points at the element of a list or map that is wrong", async () => {
    await expectProblem(
      yaml("tasks:", "  a:", "    run: ./a.sh", "    env:", "      OK: yes", "      BAD: [1, 2]"),
      "6:12",
      "tasks.a.env.BAD",
      "expected a string, number or boolean, got a list",
    );
    await expectProblem(
      yaml("tasks:", "  a:", "    run: [./a.sh, null]"),
      "3:19",
      "tasks.a.run[1]",
      "got an empty value",
    );
  });

  it("rejects run values that are not commands", async () => {
    await expectProblem(
      yaml("tasks:", "  a: { run: 5 }"),
      "2:13",
      "tasks.a.run",
      "expected a command string or a list of argv words, got 5",
    );
    await expectProblem(
      yaml("tasks:", "  a: { run: [] }"),
      "2:13",
      "tasks.a.run",
      "non-empty list of argv words, got an empty list",
    );
    await expectProblem(
      yaml("tasks:", "  a: { run: '' }"),
      "2:13",
      "tasks.a.run",
      'expected a command, got ""',
    );
    await expectProblem(
      yaml("tasks:", `  a: { run: 'echo "unclosed' }`),
      "2:13",
      "tasks.a.run",
      "a quote is not closed",
    );
  });

  it("rejects shell operators in run strings and shorthand steps", async () => {
    const noShell =
      "is split into words and run without a shell; for pipes, redirection or variables write `sh -c '...'`";
    await expectProblem(
      yaml("tasks:", "  a:", "    run: ./a.sh | gzip > out.gz"),
      "3:10",
      "tasks.a.run",
      "found `|`",
      noShell,
    );
    await expectProblem(
      yaml("steps:", "  - ./a.sh", "  - ./b.sh && ./c.sh"),
      "3:5",
      "steps[1]",
      "found `&&`",
      noShell,
    );
    await expectProblem(
      yaml("steps:", "  - ./a.sh", "  - parallel:", "      - { name: x, run: echo $(date) }"),
      "4:25",
      "steps[1].parallel[0].run",
      "found `$(date)`",
    );
  });

  it("rejects invalid task names", async () => {
    await expectProblem(
      yaml("tasks:", '  "bad name": { run: x }'),
      "2:3",
      'tasks["bad name"]',
      'invalid task name "bad name"',
      "letters, digits",
    );
    await expectProblem(
      yaml("steps:", "  - { name: -x, run: y }"),
      "2:13",
      "steps[0].name",
      "expected a task name of 1-128 letters",
      'got "-x"',
    );
  });

  it("rejects steps that are neither commands, tasks nor groups", async () => {
    await expectProblem(
      yaml("steps:", "  - 5"),
      "2:5",
      "steps[0]",
      "expected a step: a command string, a map with `run:`",
      "got 5",
    );
    await expectProblem(
      yaml("steps:", "  - parallel: []"),
      "2:15",
      "steps[0].parallel",
      "expected a non-empty list of steps",
    );
    await expectProblem(yaml("steps: { a: ./a.sh }"), "1:8", "steps", "expected a list of steps, got a map");
    await expectProblem(
      yaml("tasks: [./a.sh]"),
      "1:8",
      "tasks",
      "expected a map from task names to tasks, got a list",
    );
    await expectProblem(
      yaml("tasks:", "  a: ./a.sh"),
      "2:6",
      "tasks.a",
      'expected a task: a map with `run:`, `handler:` or `unit:`, got "./a.sh"',
    );
  });
});

describe("pipeline errors: limits, private_network, jail and install", () => {
  const HEX = "a".repeat(64);
  const task = (...lines: string[]) =>
    yaml("tasks:", "  a:", "    run: ./a.sh", ...lines.map((l) => `    ${l}`));

  it.each([
    [
      "limits: { pids: 0 }",
      "4:21",
      "tasks.a.limits.pids",
      `expected a number of processes from 1 to 4194304, or "infinity", got 0; leave it out for the pool's default, or write "infinity" for as many as the pool allows`,
    ],
    [
      "limits: { pids: 5000000 }",
      "4:21",
      "tasks.a.limits.pids",
      `expected at most 4194304 processes (Linux's largest pid_max), got 5000000; "infinity" is as many as the pool allows`,
    ],
    [
      "limits: { pids: [1] }",
      "4:21",
      "tasks.a.limits.pids",
      'expected a number of processes, or "infinity", got a list',
    ],
    [
      "limits: { cpu: 1.5 }",
      "4:20",
      "tasks.a.limits.cpu",
      `expected a percentage of one CPU such as "50%", "150%" or "200%" (1% to 100000%), or "infinity", got 1.5 (add "%": "150%" is 1.5 CPUs)`,
    ],
    ["limits: { cpu: 0% }", "4:20", "tasks.a.limits.cpu", `got "0%"; for no quota write "infinity"`],
    [
      "limits: { memory: 8GB }",
      "4:23",
      "tasks.a.limits.memory",
      `expected a size such as "512M", "8G", "1.5G", "100K", a number of bytes, or "infinity", got "8GB" (sizes are powers of 1024 written without "B": "8G")`,
    ],
    [
      "limits: { pid: 4 }",
      "4:15",
      "tasks.a.limits.pid",
      "unknown key 'pid'; did you mean 'pids'? (expected one of: memory, disk, pids, cpu)",
    ],
    ["limits: 4", "4:13", "tasks.a.limits", "expected a map of limits: memory, disk, pids, cpu, got 4"],
    ["private_network: yes", "4:22", "tasks.a.private_network", 'expected true or false, got "yes"'],
    [
      "jail: none",
      "4:11",
      "tasks.a.jail",
      `expected "standard" or "strict", got "none": a task can ask for a stricter jail than its pool's, never a looser one; only the operator chooses "none", for a whole pool`,
    ],
    [
      "install: { apt: jq }",
      "4:21",
      "tasks.a.install.apt",
      'expected a list of package names, such as [jq, curl], got "jq"',
    ],
    [
      "install: { pip: [-e, x] }",
      "4:22",
      "tasks.a.install.pip[0]",
      'expected a package name, got "-e": installer options are not allowed',
    ],
    [
      "install: { artifact: [] }",
      "4:16",
      "tasks.a.install.artifact",
      "unknown key 'artifact'; did you mean 'artifacts'? (expected one of: pip, npm, apt, from, artifacts)",
    ],
    [
      "install: { artifacts: [{ url: https://example.com/x }] }",
      "4:28",
      "tasks.a.install.artifacts[0].sha256",
      "missing; expected the file's `sha256:` (64 hex digits): an artifact is pinned by its checksum",
    ],
    [
      `install: { artifacts: [{ url: x.tgz, sha256: ${HEX} }] }`,
      "4:35",
      "tasks.a.install.artifacts[0].url",
      'expected an absolute path, a file:// URL or an http(s):// URL, got "x.tgz" (a path must be absolute)',
    ],
    [
      "install: { artifacts: [{ url: /opt/x, sha256: abc }] }",
      "4:51",
      "tasks.a.install.artifacts[0].sha256",
      `expected 64 hex digits (the file's sha256, as sha256sum prints it), got "abc" (3 digits)`,
    ],
    [
      `install: { artifacts: [{ url: /opt/x, sha256: ${"1".repeat(64)} }] }`,
      "4:51",
      "tasks.a.install.artifacts[0].sha256",
      "expected 64 hex digits, got a number: quote the sha256 so that YAML reads it as text",
    ],
    [
      `install: { artifacts: [{ url: /opt/x, sha256: ${HEX}, size: 3 }] }`,
      "4:117",
      "tasks.a.install.artifacts[0].size",
      "unknown key 'size' (expected one of: url, sha256)",
    ],
  ])("%s", async (line, where, path, expected) => {
    await expectProblem(task(line), where, path, expected);
  });

  it("checks them in defaults too", async () => {
    await expectProblem(
      yaml("defaults: { limits: { cpu: 50 } }", "steps: [./a.sh]"),
      "1:28",
      "defaults.limits.cpu",
      'got 50 (add "%": "5000%" is 50 CPUs)',
    );
    await expectProblem(
      yaml("defaults: { install: { apt: [jq] } }", "steps: [./a.sh]"),
      "1:13",
      "defaults.install",
      "unknown key 'install'",
    );
  });
});

describe("pipeline errors: names and needs", () => {
  it("points at a need that names no task, suggesting the closest and listing the few known", async () => {
    await expectProblem(
      yaml(
        "tasks:",
        "  extract: { run: ./e.sh }",
        "  load: { run: ./l.sh, needs: [extract, transfrom] }",
        "  transform: { run: ./t.sh }",
      ),
      "3:41",
      "tasks.load.needs[1]",
      'no task named "transfrom"',
      "did you mean 'transform'?",
      "(tasks in this file: extract, load, transform)",
    );
    await expectProblem(
      yaml("steps:", "  - { name: a, run: x, needs: ghost }"),
      "2:31",
      "steps[0].needs",
      'no task named "ghost"',
    );
  });

  it("does not list names when there are many", async () => {
    const lines = Array.from({ length: 12 }, (_, i) => `  t${i}: { run: x }`);
    const { message } = await compileError(yaml("tasks:", ...lines, "  last: { run: x, needs: [nope] }"));
    expect(message).toContain('no task named "nope"');
    expect(message).not.toContain("tasks in this file");
  });

  it("rejects duplicate names across tasks and steps", async () => {
    await expectProblem(
      yaml("tasks:", "  build: { run: ./b.sh }", "steps:", "  - { name: build, run: ./c.sh }"),
      "4:13",
      "steps[0].name",
      'duplicate task name "build": already used at line 2 (tasks.build)',
    );
    await expectProblem(
      yaml("steps:", "  - { name: a, run: x }", "  - parallel:", "      - { name: a, run: y }"),
      "4:17",
      "steps[1].parallel[0].name",
      'duplicate task name "a": already used at line 2 (steps[0].name)',
    );
  });

  it("rejects dependency cycles at a needs entry on the cycle", async () => {
    await expectProblem(
      yaml(
        "tasks:",
        "  a: { run: x, needs: [b] }",
        "  b: { run: y, needs: [c] }",
        "  c: { run: z, needs: [a] }",
      ),
      "2:24",
      "tasks.a.needs[0]",
      "dependency cycle: a -> b -> c -> a",
    );
    await expectProblem(
      yaml("tasks:", "  a: { run: x, needs: a }"),
      "2:23",
      "tasks.a.needs",
      "dependency cycle: a -> a (a task cannot need itself)",
    );
  });

  it("finds cycles formed with the needs implied by steps", async () => {
    await expectProblem(
      yaml("steps:", "  - { name: first, run: x, needs: [second] }", "  - { name: second, run: y }"),
      "2:36",
      "steps[0].needs[0]",
      "dependency cycle: first -> second -> first",
    );
  });
});

describe("pipeline errors: empty commands", () => {
  it("rejects an empty first word", async () => {
    await expectProblem(
      yaml("tasks:", "  a: { run: ['', x] }"),
      "2:13",
      "tasks.a.run",
      "first word to be the command",
    );
    await expectProblem(yaml("tasks:", `  a: { run: '"" x' }`), "2:13", "tasks.a.run", "expected a command");
  });
});

describe("pipeline errors: several at once", () => {
  async function problems(text: string): Promise<string[]> {
    try {
      await compilePipeline(text, FILE);
    } catch (error) {
      expect(error).toBeInstanceOf(DefinitionErrors);
      return (error as DefinitionErrors).problems.map((problem) => problem.message);
    }
    throw new Error("expected the pipeline to be rejected");
  }

  it("reports every problem of the file in one pass, in file order, one line each", async () => {
    const found = await problems(
      yaml(
        "name: etl",
        "defaults: { retries: -1 }",
        "tasks:",
        "  a: { run: ./a.sh, retires: 2, timeout: soon }",
        "  b: { run: ./b.sh, needs: [a, ghost] }",
        "steps:",
        "  - 5",
        "  - { name: c, run: 'x | y' }",
      ),
    );
    expect(found).toEqual([
      `${FILE}:2:22: defaults.retries: expected a non-negative integer, got -1`,
      expect.stringContaining(
        `${FILE}:4:21: tasks.a.retires: unknown key 'retires'; did you mean 'retries'?`,
      ),
      `${FILE}:4:42: tasks.a.timeout: expected a duration such as "500ms", "30s", "10m" or "1h30m", got "soon"`,
      `${FILE}:5:32: tasks.b.needs[1]: no task named "ghost" (tasks in this file: a, b, c)`,
      expect.stringContaining(`${FILE}:7:5: steps[0]: expected a step`),
      expect.stringContaining(`${FILE}:8:21: steps[1].run: found \`|\``),
    ]);
  });

  it("does not report needs on a task that is itself broken", async () => {
    const found = await problems(
      yaml("tasks:", "  a: { run: 5 }", "  b: { run: ./b.sh, needs: [a] }", "  c: { rn: ./c.sh }"),
    );
    expect(found).toEqual([
      expect.stringContaining(`${FILE}:2:13: tasks.a.run: expected a command string`),
      expect.stringContaining(`${FILE}:4:8: tasks.c.rn: unknown key 'rn'; did you mean 'run'?`),
    ]);
  });

  it("stops after 20 problems and says so", async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `  t${i}: { run: x, retries: bad }`);
    const found = await problems(yaml("tasks:", ...lines));
    expect(found).toHaveLength(21);
    expect(found[0]).toBe(`${FILE}:2:26: tasks.t0.retries: expected a non-negative integer, got "bad"`);
    expect(found[20]).toBe(`${FILE}: stopped after 20 problems; fix these and run again to see the rest`);
  });
});

describe("pipeline errors: schedule", () => {
  const steps = "steps: [./a.sh]";

  it("wants a map with cron:", async () => {
    await expectProblem(
      yaml("schedule: '0 2 * * *'", steps),
      "1:11",
      "schedule",
      'expected a map with `cron:` and optionally `timezone`, `overlap`, `catch_up`, `jitter`, `start`, `end`, got "0 2 * * *"',
    );
    await expectProblem(
      yaml("schedule: { timezone: UTC }", steps),
      "1:11",
      "schedule.cron",
      'missing; expected `cron:` with a cron expression such as "0 2 * * *" (5 fields, 6 with seconds first, or @daily)',
    );
    await expectProblem(
      yaml("schedule:", "  cron: 5", steps),
      "2:9",
      "schedule.cron",
      'expected a cron expression such as "0 2 * * *", got 5',
    );
  });

  it.each([
    [["cron: '*/0 * * * *'"], "2:9", "schedule.cron", "expected a step from 1 after '/', got \"0\""],
    [["cron: '0 0 31 2 *'"], "2:9", "schedule.cron", 'cron "0 0 31 2 *" never fires'],
    [
      ["cron: '@daily'", "timezone: Europe/Berln"],
      "3:13",
      "schedule.timezone",
      'unknown time zone "Europe/Berln": expected an IANA time zone such as Europe/Berlin, America/New_York or UTC; did you mean "Europe/Berlin"?',
    ],
    [
      ["cron: '@daily'", "overlap: replace"],
      "3:12",
      "schedule.overlap",
      'expected "skip", "queue", "allow" or "cancel-previous", got "replace"',
    ],
    [
      ["cron: '@daily'", "catch_up: backfill(max=99999)"],
      "3:13",
      "schedule.catch_up",
      'expected backfill(max=N) with N a number of slots from 1 to 10000, got "99999"',
    ],
    [
      ["cron: '@daily'", "jitter: soon"],
      "3:11",
      "schedule.jitter",
      'expected a duration such as "500ms", "30s", "10m" or "1h30m", got "soon"',
    ],
    [
      ["cron: '@daily'", "start: 2026-13-01"],
      "3:10",
      "schedule.start",
      'got "2026-13-01": there is no month 13',
    ],
    [
      ["cron: '@daily'", "start: 2026-12-01", "end: 2026-12-01"],
      "4:8",
      "schedule.end",
      "expected `end:` after `start:`, got 2026-12-01, which is not after 2026-12-01",
    ],
    [
      [`cron: '\${{ params.cron }}'`],
      "2:9",
      "schedule.cron",
      `\${{ ... }} is not substituted in \`schedule:\`: write the value itself`,
    ],
  ])("schedule: %j", async (lines, where, path, expected) => {
    await expectProblem(yaml("schedule:", ...lines.map((line) => `  ${line}`), steps), where, path, expected);
  });

  it("hints at what other schedulers call its keys", async () => {
    await expectProblem(
      yaml("schedule:", "  cron: '@daily'", "  tz: Europe/Berlin", steps),
      "3:3",
      "schedule.tz",
      "unknown key 'tz': use `timezone:` with an IANA time zone such as Europe/Berlin (default UTC)",
    );
    await expectProblem(
      yaml("schedule:", "  cron: '@daily'", "  concurrencyPolicy: Forbid", steps),
      "3:3",
      "schedule.concurrencyPolicy",
      'use `overlap:` ("skip", "queue", "allow" or "cancel-previous")',
    );
    await expectProblem(
      yaml("schedule:", "  cron: '@daily'", "  catchup: latest", steps),
      "3:3",
      "schedule.catchup",
      "unknown key 'catchup'; did you mean 'catch_up'?",
    );
    await expectProblem(
      yaml("cron: '@daily'", steps),
      "1:1",
      "cron",
      "unknown key 'cron': use `schedule: { cron: \"0 2 * * *\" }`",
    );
  });
});
