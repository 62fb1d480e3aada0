import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Backoff, type RunSpec, type TaskSpec } from "../gen/taskframe/v1/spec_pb.js";
import { compilePipeline, loadPipelineFile } from "./yaml-pipeline.js";

const FILE = "/srv/pipes/etl.yaml";
const yaml = (...lines: string[]): string => `${lines.join("\n")}\n`;

function task(spec: RunSpec, name: string): TaskSpec {
  const found = spec.tasks.find((t) => t.name === name);
  if (!found) throw new Error(`no task ${name} in ${spec.tasks.map((t) => t.name).join(", ")}`);
  return found;
}

function exec(spec: RunSpec, name: string) {
  const target = task(spec, name).target;
  if (target.case !== "exec") throw new Error(`${name} is not an exec task`);
  return target.value;
}

const needsOf = (spec: RunSpec): Record<string, string[]> =>
  Object.fromEntries(spec.tasks.map((t) => [t.name, t.needs]));

describe("compilePipeline: structure", () => {
  it("compiles the tasks map and expands sequence, parallel and nested steps into needs", async () => {
    const spec = await compilePipeline(
      yaml(
        "tasks:",
        '  extract:   { run: ./extract.sh, args: ["2026-11-26"] }',
        "  transform: { run: python3 transform.py, needs: [extract] }",
        "  load-a:    { run: ./load.sh a, needs: [transform] }",
        "  load-b:    { run: ./load.sh b, needs: [transform] }",
        "steps:",
        "  - { name: a, run: ./a.sh }",
        "  - parallel:",
        "      - { name: b, run: ./b.sh }",
        "      - steps:",
        "          - { name: c1, run: ./c1.sh }",
        "          - { name: c2, run: ./c2.sh }",
        "  - ./final.sh",
      ),
      FILE,
    );
    expect(spec.tasks.map((t) => t.name)).toEqual([
      "extract",
      "transform",
      "load-a",
      "load-b",
      "a",
      "b",
      "c1",
      "c2",
      "final",
    ]);
    expect(needsOf(spec)).toEqual({
      extract: [],
      transform: ["extract"],
      "load-a": ["transform"],
      "load-b": ["transform"],
      a: [],
      b: ["a"],
      c1: ["a"],
      c2: ["c1"],
      final: ["b", "c2"],
    });
  });

  it("nests groups to any depth", async () => {
    const spec = await compilePipeline(
      yaml(
        "steps:",
        "  - { name: start, run: ./start.sh }",
        "  - parallel:",
        "      - steps:",
        "          - { name: p1, run: ./p.sh }",
        "          - parallel:",
        "              - { name: q1, run: ./q.sh }",
        "              - steps: [{ name: r1, run: ./r.sh }, { name: r2, run: ./r.sh }]",
        "          - { name: p2, run: ./p.sh }",
        "      - { name: solo, run: ./solo.sh }",
        "  - { name: end, run: ./end.sh }",
      ),
      FILE,
    );
    expect(needsOf(spec)).toEqual({
      start: [],
      p1: ["start"],
      q1: ["p1"],
      r1: ["p1"],
      r2: ["r1"],
      p2: ["q1", "r2"],
      solo: ["start"],
      end: ["p2", "solo"],
    });
  });

  it("lets needs name any task of the file, as a list or a single name, deduplicated in order", async () => {
    const spec = await compilePipeline(
      yaml(
        "tasks:",
        "  setup: { run: ./setup.sh }",
        "  report: { run: ./report.sh, needs: [last, setup, last] }",
        "steps:",
        "  - { name: first, run: ./first.sh, needs: setup }",
        "  - { name: last, run: ./last.sh, needs: [first, setup] }",
      ),
      FILE,
    );
    expect(needsOf(spec)).toEqual({
      setup: [],
      report: ["last", "setup"],
      first: ["setup"],
      last: ["first", "setup"],
    });
  });

  it("names unnamed steps after the command's basename, de-duplicated, never taking an explicit name", async () => {
    const spec = await compilePipeline(
      yaml(
        "tasks:",
        "  extract: { run: ./other.sh }",
        "steps:",
        "  - ./extract.sh",
        "  - python3 x.py",
        "  - { run: python3 y.py }",
        "  - ./bin/load.sh one",
        "  - ./load.sh two",
        "  - ./load.sh three",
        "  - { name: load-3, run: ./load.sh four }",
        '  - { run: [/usr/bin/env, "true"] }',
      ),
      FILE,
    );
    expect(spec.tasks.map((t) => t.name)).toEqual([
      "extract",
      "extract-2",
      "python3",
      "python3-2",
      "load",
      "load-2",
      "load-4",
      "load-3",
      "env",
    ]);
    expect(needsOf(spec)["load-4"]).toEqual(["load-2"]);
  });

  it("uses the file's basename as the default name and keeps name, labels and source", async () => {
    const unnamed = await compilePipeline(yaml("steps: [./a.sh]"), "pipes/nightly.pipeline.yml");
    expect(unnamed.name).toBe("nightly.pipeline");
    expect(unnamed.source).toBe("pipes/nightly.pipeline.yml");
    const named = await compilePipeline(
      yaml("name: etl-daily", "labels: { team: data, tier: 1 }", "steps: [./a.sh]"),
      FILE,
    );
    expect(named.name).toBe("etl-daily");
    expect(named.labels).toEqual({ team: "data", tier: "1" });
    expect(named.source).toBe(FILE);
  });
});

describe("compilePipeline: exec targets", () => {
  it("splits run strings with quotes and appends args as strings", async () => {
    const spec = await compilePipeline(
      yaml("tasks:", '  t: { run: python3 "my script.py" --flag, args: [--date, 2026-11-26, 3, true] }'),
      FILE,
    );
    expect(exec(spec, "t").command).toBe("python3");
    expect(exec(spec, "t").args).toEqual(["my script.py", "--flag", "--date", "2026-11-26", "3", "true"]);
  });

  it("uses the list form of run as argv as-is", async () => {
    const spec = await compilePipeline(
      yaml("tasks:", "  t: { run: [sh, -c, 'grep x | wc -l > out'], args: [y] }"),
      FILE,
    );
    expect(exec(spec, "t").command).toBe("sh");
    expect(exec(spec, "t").args).toEqual(["-c", "grep x | wc -l > out", "y"]);
  });

  it("resolves commands containing a slash against the file's directory and leaves bare names for PATH", async () => {
    const spec = await compilePipeline(
      yaml(
        "tasks:",
        "  rel: { run: ./bin/run.sh }",
        "  up: { run: ../tools/x }",
        "  sub: { run: scripts/y.py }",
        "  abs: { run: /usr/bin/env }",
        "  bare: { run: python3 }",
      ),
      FILE,
    );
    expect(exec(spec, "rel").command).toBe("/srv/pipes/bin/run.sh");
    expect(exec(spec, "up").command).toBe("/srv/tools/x");
    expect(exec(spec, "sub").command).toBe("/srv/pipes/scripts/y.py");
    expect(exec(spec, "abs").command).toBe("/usr/bin/env");
    expect(exec(spec, "bare").command).toBe("python3");
  });

  it("runs in the file's directory unless cwd says otherwise; a relative cwd resolves against it", async () => {
    const spec = await compilePipeline(
      yaml(
        "tasks:",
        "  here: { run: ./a.sh }",
        "  data: { run: ./a.sh, cwd: data/in }",
        "  abs: { run: ./a.sh, cwd: /tmp }",
      ),
      FILE,
    );
    expect(exec(spec, "here").cwd).toBe("/srv/pipes");
    expect(exec(spec, "data").cwd).toBe("/srv/pipes/data/in");
    expect(exec(spec, "abs").cwd).toBe("/tmp");
  });

  it("resolves against the absolute directory of a relative file path", async () => {
    const spec = await compilePipeline(yaml("steps: [./a.sh]"), "pipes/etl.yaml");
    expect(exec(spec, "a").command).toBe(resolve("pipes/a.sh"));
    expect(exec(spec, "a").cwd).toBe(resolve("pipes"));
  });
});

describe("compilePipeline: settings", () => {
  it("applies defaults, merging env and labels with the task winning", async () => {
    const spec = await compilePipeline(
      yaml(
        "defaults:",
        "  retries: 2",
        "  retry_interval: 5s",
        "  timeout: 10m",
        "  env: { MODE: prod, LEVEL: 1 }",
        "  labels: { team: data }",
        "  pool: gpu",
        "  cwd: work",
        "tasks:",
        "  plain: { run: ./a.sh }",
        "  custom:",
        "    run: ./b.sh",
        "    retries: 0",
        "    timeout: 0",
        "    env: { MODE: test, EXTRA: yes }",
        "    labels: { kind: load }",
        "    pool: ''",
        "    cwd: /abs",
      ),
      FILE,
    );
    const plain = task(spec, "plain");
    expect(plain.retry?.retries).toBe(2);
    expect(plain.retry?.intervalMs).toBe(5000n);
    expect(plain.timeoutMs).toBe(600_000n);
    expect(plain.pool).toBe("gpu");
    expect(plain.labels).toEqual({ team: "data" });
    expect(exec(spec, "plain").env).toEqual({ MODE: "prod", LEVEL: "1" });
    expect(exec(spec, "plain").cwd).toBe("/srv/pipes/work");

    const custom = task(spec, "custom");
    expect(custom.retry?.retries).toBe(0);
    expect(custom.retry?.intervalMs).toBe(5000n);
    expect(custom.timeoutMs).toBe(0n);
    expect(custom.pool).toBe("");
    expect(custom.labels).toEqual({ team: "data", kind: "load" });
    expect(exec(spec, "custom").env).toEqual({ MODE: "test", LEVEL: "1", EXTRA: "yes" });
    expect(exec(spec, "custom").cwd).toBe("/abs");
  });

  it("fills in the retry policy defaults: no retries, fixed 1s interval, no timeout, default pool", async () => {
    const spec = await compilePipeline(yaml("steps: [./a.sh]"), FILE);
    const t = task(spec, "a");
    expect(t.retry?.retries).toBe(0);
    expect(t.retry?.intervalMs).toBe(1000n);
    expect(t.retry?.backoff).toBe(Backoff.FIXED);
    expect(t.retry?.maxIntervalMs).toBe(0n);
    expect(t.retry?.jitter).toBe(0);
    expect(t.timeoutMs).toBe(0n);
    expect(t.pool).toBe("");
    expect(t.labels).toEqual({});
  });

  it("compiles exponential backoff, durations in any unit and numbers as seconds", async () => {
    const spec = await compilePipeline(
      yaml(
        "tasks:",
        "  t:",
        "    run: ./a.sh",
        "    retries: 5",
        "    retry_interval: 500ms",
        "    retry_backoff: exponential",
        "    retry_max_interval: 1h30m",
        "    retry_jitter: 0.25",
        "    retry_prevent_exit_codes: [2, 42]",
        "    timeout: 90",
      ),
      FILE,
    );
    expect(task(spec, "t").retry).toMatchObject({
      retries: 5,
      intervalMs: 500n,
      backoff: Backoff.EXPONENTIAL,
      maxIntervalMs: 5_400_000n,
      jitter: 0.25,
      nonRetryableExitCodes: [2, 42],
    });
    expect(task(spec, "t").timeoutMs).toBe(90_000n);
  });

  it("accepts step settings like task settings", async () => {
    const spec = await compilePipeline(
      yaml("steps:", "  - { name: s, run: ./s.sh, retries: 3, timeout: 2 hours, env: { A: b } }"),
      FILE,
    );
    expect(task(spec, "s").retry?.retries).toBe(3);
    expect(task(spec, "s").timeoutMs).toBe(7_200_000n);
    expect(exec(spec, "s").env).toEqual({ A: "b" });
  });
});

describe("loadPipelineFile", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-pipeline-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads and compiles a file", async () => {
    const file = join(dir, "etl.yaml");
    await writeFile(file, yaml("steps:", "  - ./extract.sh", "  - ./load.sh"));
    const spec = await loadPipelineFile(file);
    expect(spec.name).toBe("etl");
    expect(spec.source).toBe(file);
    expect(exec(spec, "load").command).toBe(join(dir, "load.sh"));
    expect(needsOf(spec)).toEqual({ extract: [], load: ["extract"] });
  });
});
