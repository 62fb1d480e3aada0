import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DefinitionError } from "../errors.js";
import { compilePipeline, loadPipelineFile } from "./yaml-pipeline.js";

const FILE = "pipes/etl.yaml";
const yaml = (...lines: string[]): string => `${lines.join("\n")}\n`;

function compileError(text: string): DefinitionError {
  try {
    compilePipeline(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(DefinitionError);
    const definitionError = error as DefinitionError;
    expect(definitionError.message).not.toContain("\n");
    return definitionError;
  }
  throw new Error("expected the pipeline to be rejected");
}

/** Asserts `FILE:LINE:COL: PATH: ...` and that the message says what was expected. */
function expectProblem(text: string, where: string, path: string | undefined, ...expected: string[]): void {
  const { message } = compileError(text);
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

  it("reports malformed YAML at the parser's position", () => {
    expectProblem(yaml("tasks:", "  a: { run: [x, y }"), "2:19", undefined, "invalid YAML");
    expectProblem(
      yaml("tasks:", "  a: { run: x }", "  a: { run: y }"),
      "3:3",
      undefined,
      "invalid YAML",
      "unique",
    );
    expectProblem(yaml("steps:", "  - *nothing"), "2:5", undefined, "invalid YAML", "alias");
  });

  it("rejects a top level that is not a map", () => {
    expectProblem(
      yaml("- ./a.sh", "- ./b.sh"),
      "1:1",
      undefined,
      "expected a map with `tasks:` and/or `steps:`",
      "got a list",
    );
    expectProblem(yaml("just words"), "1:1", undefined, 'got "just words"');
  });

  it("rejects an empty pipeline", () => {
    const expectation = "the pipeline defines no tasks: expected a `tasks:` map or a `steps:` list";
    expectProblem("", "1:1", undefined, expectation);
    expectProblem(yaml("# nothing here"), "1:1", undefined, expectation);
    expectProblem(yaml("name: etl", "tasks: {}", "steps: []"), "1:1", undefined, expectation);
  });
});

describe("pipeline errors: keys", () => {
  it("names an unknown key, lists the expected keys and suggests the closest", () => {
    expectProblem(
      yaml("tasks:", "  extract:", "    run: ./extract.sh", "    retires: 2"),
      "4:5",
      "tasks.extract.retires",
      "unknown key 'retires'",
      "did you mean 'retries'?",
      "expected one of: run, args, needs, retries, retry_interval",
    );
  });

  it("does not suggest a key when none is close", () => {
    const { message } = compileError(yaml("tasks:", "  a: { run: x, image: ubuntu }"));
    expect(message).toContain("unknown key 'image'");
    expect(message).not.toContain("did you mean");
  });

  it("checks keys at the top level, in defaults, in steps and in groups", () => {
    expectProblem(
      yaml("step:", "  - ./a.sh"),
      "1:1",
      "step",
      "did you mean 'steps'?",
      "name, labels, defaults, tasks, steps",
    );
    expectProblem(
      yaml("defaults:", "  timout: 5s", "steps: [./a.sh]"),
      "2:3",
      "defaults.timout",
      "did you mean 'timeout'?",
    );
    expectProblem(
      yaml("steps:", "  - ./a.sh", "  - { name: b, rn: ./b.sh }"),
      "3:16",
      "steps[1].rn",
      "did you mean 'run'?",
    );
    expectProblem(
      yaml("steps:", "  - parallel: [./a.sh]", "    name: group"),
      "3:5",
      "steps[0].name",
      "unknown key 'name'",
      "expected one of: parallel",
    );
  });

  it("explains that a task's name is its key under tasks", () => {
    expectProblem(
      yaml("tasks:", "  a: { run: x, name: b }"),
      "2:16",
      "tasks.a.name",
      "its key under `tasks:`",
    );
  });

  it("has a specific message for handler tasks", () => {
    const handler = "handler tasks need SDK workers, which this version does not run yet; use run:";
    expectProblem(yaml("tasks:", "  a:", "    handler: resize"), "3:5", "tasks.a.handler", handler);
    expectProblem(yaml("steps:", "  - { name: a, handler: resize }"), "2:16", "steps[0].handler", handler);
  });

  it("requires run", () => {
    expectProblem(
      yaml("tasks:", "  a:", "    retries: 1"),
      "3:5",
      "tasks.a.run",
      "missing; expected a command string or a list of argv words",
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
  ])("rejects %s", (line, path, expected) => {
    // The value starts after "key: "; an empty value is right after the colon.
    const column = 4 + line.indexOf(":") + (line.endsWith(":") ? 2 : 3);
    expectProblem(yaml("tasks:", "  a:", "    run: ./a.sh", `    ${line}`), `4:${column}`, path, expected);
  });

  it("points at the element of a list or map that is wrong", () => {
    expectProblem(
      yaml("tasks:", "  a:", "    run: ./a.sh", "    env:", "      OK: yes", "      BAD: [1, 2]"),
      "6:12",
      "tasks.a.env.BAD",
      "expected a string, number or boolean, got a list",
    );
    expectProblem(
      yaml("tasks:", "  a:", "    run: [./a.sh, null]"),
      "3:19",
      "tasks.a.run[1]",
      "got an empty value",
    );
  });

  it("rejects run values that are not commands", () => {
    expectProblem(
      yaml("tasks:", "  a: { run: 5 }"),
      "2:13",
      "tasks.a.run",
      "expected a command string or a list of argv words, got 5",
    );
    expectProblem(
      yaml("tasks:", "  a: { run: [] }"),
      "2:13",
      "tasks.a.run",
      "non-empty list of argv words, got an empty list",
    );
    expectProblem(yaml("tasks:", "  a: { run: '' }"), "2:13", "tasks.a.run", 'expected a command, got ""');
    expectProblem(
      yaml("tasks:", `  a: { run: 'echo "unclosed' }`),
      "2:13",
      "tasks.a.run",
      "a quote is not closed",
    );
  });

  it("rejects shell operators in run strings and shorthand steps", () => {
    const noShell =
      "is split into words and run without a shell; for pipes, redirection or variables write `sh -c '...'`";
    expectProblem(
      yaml("tasks:", "  a:", "    run: ./a.sh | gzip > out.gz"),
      "3:10",
      "tasks.a.run",
      "found `|`",
      noShell,
    );
    expectProblem(
      yaml("steps:", "  - ./a.sh", "  - ./b.sh && ./c.sh"),
      "3:5",
      "steps[1]",
      "found `&&`",
      noShell,
    );
    expectProblem(
      yaml("steps:", "  - ./a.sh", "  - parallel:", "      - { name: x, run: echo $(date) }"),
      "4:25",
      "steps[1].parallel[0].run",
      "found `$(date)`",
    );
  });

  it("rejects invalid task names", () => {
    expectProblem(
      yaml("tasks:", '  "bad name": { run: x }'),
      "2:3",
      'tasks["bad name"]',
      'invalid task name "bad name"',
      "letters, digits",
    );
    expectProblem(
      yaml("steps:", "  - { name: -x, run: y }"),
      "2:13",
      "steps[0].name",
      "expected a task name of 1-128 letters",
      'got "-x"',
    );
  });

  it("rejects steps that are neither commands, tasks nor groups", () => {
    expectProblem(
      yaml("steps:", "  - 5"),
      "2:5",
      "steps[0]",
      "expected a step: a command string, a map with `run:`",
      "got 5",
    );
    expectProblem(
      yaml("steps:", "  - parallel: []"),
      "2:15",
      "steps[0].parallel",
      "expected a non-empty list of steps",
    );
    expectProblem(yaml("steps: { a: ./a.sh }"), "1:8", "steps", "expected a list of steps, got a map");
    expectProblem(
      yaml("tasks: [./a.sh]"),
      "1:8",
      "tasks",
      "expected a map from task names to tasks, got a list",
    );
    expectProblem(
      yaml("tasks:", "  a: ./a.sh"),
      "2:6",
      "tasks.a",
      'expected a task: a map with at least `run:`, got "./a.sh"',
    );
  });
});

describe("pipeline errors: names and needs", () => {
  it("points at a need that names no task, suggesting the closest and listing the few known", () => {
    expectProblem(
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
    expectProblem(
      yaml("steps:", "  - { name: a, run: x, needs: ghost }"),
      "2:31",
      "steps[0].needs",
      'no task named "ghost"',
    );
  });

  it("does not list names when there are many", () => {
    const lines = Array.from({ length: 12 }, (_, i) => `  t${i}: { run: x }`);
    const { message } = compileError(yaml("tasks:", ...lines, "  last: { run: x, needs: [nope] }"));
    expect(message).toContain('no task named "nope"');
    expect(message).not.toContain("tasks in this file");
  });

  it("rejects duplicate names across tasks and steps", () => {
    expectProblem(
      yaml("tasks:", "  build: { run: ./b.sh }", "steps:", "  - { name: build, run: ./c.sh }"),
      "4:13",
      "steps[0].name",
      'duplicate task name "build": already used at line 2 (tasks.build)',
    );
    expectProblem(
      yaml("steps:", "  - { name: a, run: x }", "  - parallel:", "      - { name: a, run: y }"),
      "4:17",
      "steps[1].parallel[0].name",
      'duplicate task name "a": already used at line 2 (steps[0].name)',
    );
  });

  it("rejects dependency cycles at a needs entry on the cycle", () => {
    expectProblem(
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
    expectProblem(
      yaml("tasks:", "  a: { run: x, needs: a }"),
      "2:23",
      "tasks.a.needs",
      "dependency cycle: a -> a (a task cannot need itself)",
    );
  });

  it("finds cycles formed with the needs implied by steps", () => {
    expectProblem(
      yaml("steps:", "  - { name: first, run: x, needs: [second] }", "  - { name: second, run: y }"),
      "2:36",
      "steps[0].needs[0]",
      "dependency cycle: first -> second -> first",
    );
  });
});

describe("pipeline errors: empty commands", () => {
  it("rejects an empty first word", () => {
    expectProblem(
      yaml("tasks:", "  a: { run: ['', x] }"),
      "2:13",
      "tasks.a.run",
      "first word to be the command",
    );
    expectProblem(yaml("tasks:", `  a: { run: '"" x' }`), "2:13", "tasks.a.run", "expected a command");
  });
});
