import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { task } from "./helpers/cli.js";

/*
 * `task validate`, `task graph`, `task import-systemd` and `--param` as a user runs them, over the
 * built dist/ (`npm test` builds first).
 */

let cwd: string;
const write = async (name: string, text: string) => {
  await mkdir(join(cwd, name, ".."), { recursive: true });
  await writeFile(join(cwd, name), text);
};

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "taskframe-defs-cli-"));
  // tasks run jailed, as nobody: they must be able to reach their working directory
  await chmod(cwd, 0o755);
  await write("good.yaml", "tasks:\n  a: { run: 'true' }\n  b: { run: 'true', needs: [a] }\n");
  await write(
    "bad.yaml",
    "tasks:\n  a: { run: 'true', retires: 2 }\n  b: { run: 'true', needs: [ghost] }\n  c: { run: 'true', if: x }\n",
  );
  await write(
    "cycle.yaml",
    "tasks:\n  a: { run: x, needs: [b] }\n  b: { run: y, after: [a] }\n  c: { run: z }\n",
  );
  await write("units/site.task", '[Dependencies]\nRequires=lib.service\n[Command]\ncommand="true"\n');
  await write("units/lib.service", '[Command]\ncommand="true"\n');
  await write("units/pipe.yaml", "tasks:\n  s: { unit: site.task }\n");
  await write("units/broken.yaml", "tasks:\n  s: { unit: nope.task }\n");
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe("task validate", () => {
  it("says ok with the task count for valid definitions, exit 0", async () => {
    const result = await task(["validate", "good.yaml", "units/site.task"], { cwd });
    expect(result.stdout.toString()).toBe("ok: good.yaml (2 tasks)\nok: units/site.task (2 tasks)\n");
    expect(result.code).toBe(0);
  });

  it("prints every problem with its position, one per line, exit 2", async () => {
    const result = await task(["validate", "bad.yaml", "good.yaml"], { cwd });
    const lines = result.stdout.toString().trimEnd().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^bad\.yaml:2:21: tasks\.a\.retires: unknown key 'retires'; did you mean 'retries'\?/,
    );
    expect(lines[1]).toMatch(/^bad\.yaml:3:29: tasks\.b\.needs\[0\]: no task named "ghost"/);
    expect(lines[2]).toMatch(/^bad\.yaml:4:21: tasks\.c\.if: unknown key 'if': use `condition: COMMAND`/);
    expect(lines[3]).toBe("ok: good.yaml (2 tasks)");
    expect(result.stderr).toContain("1 of 2 definitions not valid");
    expect(result.code).toBe(2);
  });

  it("checks a directory as its catalogue of units plus each YAML file in it", async () => {
    const result = await task(["validate", "units"], { cwd });
    expect(result.stdout.toString()).toBe(
      [
        "ok: units (2 tasks)",
        "units/broken.yaml:2:14: tasks.s.unit: cannot read the unit " +
          `${join(cwd, "units", "nope.task")}: ENOENT: no such file or directory, stat '${join(cwd, "units", "nope.task")}'`,
        "ok: units/pipe.yaml (2 tasks)",
        "",
      ].join("\n"),
    );
    expect(result.code).toBe(2);
  });

  it("prints JSON with --json", async () => {
    const result = await task(["validate", "--json", "cycle.yaml", "good.yaml", "missing.yaml"], { cwd });
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout.toString())).toEqual({
      ok: false,
      definitions: [
        {
          path: "cycle.yaml",
          ok: false,
          tasks: null,
          problems: [
            {
              file: "cycle.yaml",
              line: 2,
              column: 24,
              path: "tasks.a.needs[0]",
              problem: "dependency cycle: a -> b -> a",
              message: "cycle.yaml:2:24: tasks.a.needs[0]: dependency cycle: a -> b -> a",
            },
          ],
        },
        { path: "good.yaml", ok: true, tasks: 2, problems: [] },
        {
          path: "missing.yaml",
          ok: false,
          tasks: null,
          problems: [expect.objectContaining({ file: "missing.yaml", line: null, path: null })],
        },
      ],
    });
  });

  it("rejects a --param that a single pipeline neither declares nor uses", async () => {
    const result = await task(["validate", "good.yaml", "--param", "day=1"], { cwd });
    expect(result.stdout.toString()).toContain(
      "good.yaml: --param day: the pipeline neither declares nor uses",
    );
    expect(result.code).toBe(2);
  });
});

describe("task graph", () => {
  it("prints the levels, edges and the cycle of a cyclic pipeline instead of failing", async () => {
    const result = await task(["graph", "cycle.yaml"], { cwd });
    expect(result.code).toBe(0);
    const text = result.stdout.toString();
    expect(text).toContain("cycle: 3 tasks in 1 level, 1 dependency cycle\nlevel 1\n  c\n");
    expect(text).toContain("  a ..> b  (after: order only)  <- cycle");
    expect(text).toContain("cycle (each waits for the next): a -> b -> a");
  });

  it("prints Graphviz and Mermaid, ordering-only edges dashed", async () => {
    const dot = await task(["graph", "units/site.task", "--format", "dot"], { cwd });
    expect(dot.stdout.toString()).toContain('"lib" -> "site";');
    const mermaid = await task(["graph", "cycle.yaml", "--format", "mermaid"], { cwd });
    expect(mermaid.stdout.toString()).toMatch(/^flowchart TD\n/);
    expect(mermaid.stdout.toString()).toContain("t0 -.-> t1");
    const bad = await task(["graph", "cycle.yaml", "--format", "svg"], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Allowed choices are text, dot, mermaid");
  });
});

describe("task import-systemd", () => {
  const service = [
    "[Unit]",
    "Description=Say hello",
    "After=network.target",
    "[Service]",
    "Environment=WHO=world",
    `ExecStart=/bin/echo hello \${WHO}`,
    "Nice=5",
    "",
  ].join("\n");

  it("prints the unit, or writes it with -o, and the unit runs", async () => {
    await write("sd/hello.service", service);
    await write("sd/hello.timer", "[Timer]\nOnCalendar=daily\n");
    const printed = await task(["import-systemd", "sd/hello.service", "sd/hello.timer"], { cwd });
    expect(printed.code).toBe(0);
    expect(printed.stdout.toString()).toContain('[Command]\ncommand="/bin/echo hello world"\n');
    expect(printed.stdout.toString()).toContain('[RunIf]\ncron="0 0 * * *"\n');
    expect(printed.stdout.toString()).toContain("# not converted: Nice=5\n");
    expect(printed.stderr).toContain("1 directive not converted");

    const missingDir = await task(["import-systemd", "sd/hello.service", "-o", "out/hello.task"], { cwd });
    expect(missingDir.code).toBe(2);
    expect(missingDir.stderr).toContain("cannot write out/hello.task: ENOENT");
    await mkdir(join(cwd, "out"));
    const written = await task(["import-systemd", "sd/hello.service", "-o", "out/hello.task"], { cwd });
    expect(written.code).toBe(0);
    expect(written.stderr).toContain("wrote out/hello.task");
    expect(await readFile(join(cwd, "out/hello.task"), "utf8")).toContain('command="/bin/echo hello world"');
    const run = await task(["run", "out/hello.task", "-q"], { cwd });
    expect(run.code).toBe(0);
    const logs = await task(["logs", "hello"], { cwd });
    expect(logs.stdout.toString()).toBe("hello world\n");
  });

  it("refuses what it cannot convert faithfully, at its line, exit 2", async () => {
    await write("sd/ignore.service", "[Service]\nExecStart=-/bin/false\n");
    const result = await task(["import-systemd", "sd/ignore.service"], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^task: sd\/ignore\.service:2:1: Service\.ExecStart: cannot convert ExecStart=: the '-' prefix/,
    );
    const wrong = await task(["import-systemd", "sd/hello.timer"], { cwd });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("expected a systemd .service file and optionally its .timer");
    const clobber = await task(["import-systemd", "sd/hello.service", "-o", "sd/hello.service"], { cwd });
    expect(clobber.code).toBe(2);
    expect(clobber.stderr).toContain("would overwrite the systemd file it converts");
  });
});

describe("task run with --param", () => {
  it("substitutes params and refuses unknown ones", async () => {
    await write(
      "greet.yaml",
      `params: { who: nobody }\ntasks:\n  greet: { run: "sh -c 'echo hi $0' '\${{ params.who }}'" }\n`,
    );
    const run = await task(["run", "greet.yaml", "-q", "--param", "who=the world; rm -rf /"], { cwd });
    expect(run.code).toBe(0);
    const logs = await task(["logs", "greet"], { cwd });
    expect(logs.stdout.toString()).toBe("hi the world; rm -rf /\n");
    const unknown = await task(["run", "greet.yaml", "--param", "whom=x"], { cwd });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      "--param whom: the pipeline neither declares nor uses a param named 'whom'; did you mean 'who'?",
    );
    const malformed = await task(["run", "greet.yaml", "--param", "who"], { cwd });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("expected NAME=VALUE, got 'who'");
  });

  it("runs a directory of units as a catalogue", async () => {
    const result = await task(["run", "units", "-q"], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/SUCCEEDED in .*: 2 succeeded/);
  });
});
