import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../errors.js";
import type { RunSpec, TaskSpec } from "../gen/taskframe/v1/spec_pb.js";
import { loadUnitClosure } from "./units/index.js";
import { compilePipeline, type PipelineOptions } from "./yaml-pipeline.js";

const FILE = "/srv/pipes/etl.yaml";
const yaml = (...lines: string[]): string => `${lines.join("\n")}\n`;
const unitText = yaml;
const compile = (text: string, options: PipelineOptions = {}, file = FILE) =>
  compilePipeline(text, file, options);

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

const edges = (spec: RunSpec) =>
  Object.fromEntries(spec.tasks.map((t) => [t.name, { needs: t.needs, after: t.after }]));

/** Every problem of a rejected pipeline, one message each. */
async function problemsOf(text: string, options: PipelineOptions = {}, file = FILE): Promise<string[]> {
  try {
    await compilePipeline(text, file, options);
  } catch (error) {
    if (error instanceof DefinitionErrors) return error.problems.map((problem) => problem.message);
    if (error instanceof DefinitionError) return [error.message];
    throw error;
  }
  throw new Error("expected the pipeline to be rejected");
}

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-features-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("after and continue_on_error", () => {
  it("compiles after: as ordering-only edges, with fan-in like needs", async () => {
    const spec = await compile(
      yaml(
        "tasks:",
        "  a: { run: ./a.sh }",
        "  b: { run: ./b.sh, after: a }",
        "  c: { run: ./c.sh, needs: [b], after: [a, b] }",
      ),
    );
    expect(edges(spec)).toEqual({
      a: { needs: [], after: [] },
      b: { needs: [], after: ["a"] },
      c: { needs: ["b"], after: ["a"] },
    });
  });

  it("turns the needs of dependents on a continue_on_error task into after", async () => {
    const spec = await compile(
      yaml(
        "steps:",
        "  - { name: lint, run: ./lint.sh, continue_on_error: true }",
        "  - { name: test, run: ./test.sh }",
        "tasks:",
        "  report: { run: ./report.sh, needs: [lint, test] }",
      ),
    );
    expect(edges(spec)).toEqual({
      report: { needs: ["test"], after: ["lint"] },
      lint: { needs: [], after: [] },
      test: { needs: [], after: ["lint"] },
    });
  });

  it("finds cycles through after edges too, at an entry on the cycle", async () => {
    expect(
      await problemsOf(yaml("tasks:", "  a: { run: x, after: [b] }", "  b: { run: y, needs: [a] }")),
    ).toEqual([`${FILE}:2:24: tasks.a.after[0]: dependency cycle: a -> b -> a`]);
  });

  it("returns a cyclic run when asked (task graph)", async () => {
    const spec = await compile(yaml("tasks:", "  a: { run: x, needs: [b] }", "  b: { run: y, needs: [a] }"), {
      allowCycles: true,
    });
    expect(edges(spec)).toEqual({ a: { needs: ["b"], after: [] }, b: { needs: ["a"], after: [] } });
  });
});

describe("condition, checks, user and group", () => {
  it("compiles them into the task spec, resolving relative commands against the file", async () => {
    const spec = await compile(
      yaml(
        "defaults: { user: etl, group: data }",
        "tasks:",
        "  load:",
        "    run: ./load.sh",
        "    condition: ./has-new-data.sh --since 1d",
        "    checks:",
        "      - which pandoc",
        "      - [./bin/check-disk.sh, '90%']",
        "      - { name: db-up, run: pg_isready -h db }",
        "      - which jq",
        "    group: ops",
      ),
    );
    const load = task(spec, "load");
    expect(load.condition).toMatchObject({
      name: "condition",
      command: "/srv/pipes/has-new-data.sh",
      args: ["--since", "1d"],
    });
    expect(load.checks.map((check) => [check.name, check.command, check.args])).toEqual([
      ["which", "which", ["pandoc"]],
      ["check-disk", "/srv/pipes/bin/check-disk.sh", ["90%"]],
      ["db-up", "pg_isready", ["-h", "db"]],
      ["which-2", "which", ["jq"]],
    ]);
    expect([load.user, load.group]).toEqual(["etl", "ops"]);
    expect(load.definedAt).toBe(`${FILE}:3`);
  });
});

describe("limits, private_network, jail and install", () => {
  const HEX = "0123456789abcdef".repeat(4);

  it("compiles them into the task spec, each limit from the task else from defaults", async () => {
    const spec = await compile(
      yaml(
        "defaults:",
        "  limits: { memory: 2G, pids: 128, cpu: 50% }",
        "  jail: standard",
        "tasks:",
        "  build:",
        "    run: make",
        "    limits: { pids: 512, cpu: 150%, disk: 1G }",
        "    private_network: true",
        "    jail: strict",
        "    install:",
        "      apt: [jq, curl]",
        "      pip: [requests]",
        "      from: deps/deps.json",
        "      artifacts:",
        `        - { url: https://example.com/yq.tar.gz, sha256: ${HEX.toUpperCase()} }`,
        `        - url: /opt/tools/jq`,
        `          sha256: "${HEX}"`,
        "  lint: { run: ./lint.sh, limits: { pids: infinity, cpu: infinity } }",
        "  plain: { run: ./plain.sh }",
      ),
    );
    const build = task(spec, "build");
    expect(build.limits).toMatchObject({
      memoryBytes: 2n * 1024n ** 3n,
      diskBytes: 1024n ** 3n,
      pids: 512,
      cpuMillis: 1500,
    });
    expect([build.privateNetwork, build.jail]).toEqual([true, "strict"]);
    expect(build.install).toMatchObject({
      apt: ["jq", "curl"],
      pip: ["requests"],
      npm: [],
      from: "/srv/pipes/deps/deps.json",
    });
    expect(build.install?.artifacts.map(({ url, sha256 }) => [url, sha256])).toEqual([
      ["https://example.com/yq.tar.gz", HEX],
      ["/opt/tools/jq", HEX],
    ]);
    expect(task(spec, "lint").limits).toMatchObject({
      memoryBytes: 2n * 1024n ** 3n,
      pids: 4_194_304,
      cpuMillis: 0,
    });
    const plain = task(spec, "plain");
    expect(plain.limits).toMatchObject({ memoryBytes: 2n * 1024n ** 3n, pids: 128, cpuMillis: 500 });
    expect([plain.privateNetwork, plain.jail, plain.install]).toEqual([false, "standard", undefined]);
  });

  it("leaves the spec's limits unset without limits: anywhere", async () => {
    const spec = await compile(yaml("tasks:", "  a: { run: ./a.sh }"));
    const a = task(spec, "a");
    expect([a.limits, a.privateNetwork, a.jail, a.install]).toEqual([undefined, false, "", undefined]);
  });

  it("fills the same fields as the unit keys of the same names", async () => {
    const dir = await mkdtemp(join(tmpdir(), "taskframe-jail-"));
    try {
      await writeFile(
        join(dir, "u.task"),
        unitText(
          "[Service]",
          "LimitMem=2G",
          "LimitDisk=512M",
          "LimitPids=64",
          "LimitCPU=250%",
          "PrivateNetwork=yes",
          "Jail=strict",
          "[Install]",
          `Artifact=https://example.com/x sha256=${HEX}`,
          "[Command]",
          "command=./run.sh",
        ),
      );
      const spec = await compile(
        yaml(
          "tasks:",
          "  y:",
          "    run: ./run.sh",
          "    limits: { memory: 2G, disk: 512M, pids: 64, cpu: 250% }",
          "    private_network: true",
          "    jail: strict",
          `    install: { artifacts: [{ url: "https://example.com/x", sha256: "${HEX}" }] }`,
          "  u: { unit: u.task }",
        ),
        { loadUnitClosure },
        join(dir, "p.yaml"),
      );
      const [y, u] = [task(spec, "y"), task(spec, "u")];
      expect(y.limits).toEqual(u.limits);
      expect([y.privateNetwork, y.jail]).toEqual([u.privateNetwork, u.jail]);
      expect(y.install?.artifacts).toEqual(u.install?.artifacts);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes them for run: tasks only, and substitutes nothing in them", async () => {
    expect(
      await problemsOf(
        yaml(
          "tasks:",
          "  h: { handler: resize, limits: { pids: 4 } }",
          `  r: { run: ./r.sh, jail: "\${{ params.j }}" }`,
        ),
      ),
    ).toEqual([
      expect.stringContaining(
        `${FILE}:2:25: tasks.h.limits: unknown key 'limits': applies to \`run:\` tasks, not to \`handler:\` tasks`,
      ),
      `${FILE}:3:27: tasks.r.jail: \${{ ... }} is substituted only in \`run:\`, \`args:\`, \`env:\`, \`cwd:\`, \`user:\`, \`group:\`, \`checks:\`, \`condition:\`, \`labels:\`, \`pool:\`, \`for_each:\` of a \`run:\` task; it cannot be used here`,
    ]);
  });
});

describe("handler tasks", () => {
  const handler = (spec: RunSpec, name: string) => {
    const target = task(spec, name).target;
    if (target.case !== "handler") throw new Error(`${name} is not a handler task`);
    return { ...target.value, text: new TextDecoder().decode(target.value.input) };
  };

  it("stores a YAML value as JSON, a string as text, and no input as nothing", async () => {
    const spec = await compile(
      yaml(
        "tasks:",
        "  resize:",
        "    handler: resize-image",
        "    input: { path: in/cat.png, sizes: [64, 128], keep: true, note: null }",
        "    retries: 2",
        "    pool: gpu",
        '  csv: { handler: pkg.module.fn, input: "a,b\\n1,2", content_type: text/csv }',
        "  raw-json: { handler: parse, input: '{\"a\":1}', content_type: application/json }",
        "  ping: { handler: ping, needs: [resize] }",
      ),
    );
    expect(handler(spec, "resize")).toMatchObject({
      handler: "resize-image",
      contentType: "application/json",
      text: '{"path":"in/cat.png","sizes":[64,128],"keep":true,"note":null}',
    });
    expect(task(spec, "resize").retry?.retries).toBe(2);
    expect(task(spec, "resize").pool).toBe("gpu");
    expect(handler(spec, "csv")).toMatchObject({
      handler: "pkg.module.fn",
      contentType: "text/csv",
      text: "a,b\n1,2",
    });
    expect(handler(spec, "raw-json")).toMatchObject({ contentType: "application/json", text: '{"a":1}' });
    expect(handler(spec, "ping")).toMatchObject({ contentType: "", text: "" });
    expect(task(spec, "ping").needs).toEqual(["resize"]);
  });

  it("names unnamed handler steps after the handler", async () => {
    const spec = await compile(
      yaml("steps:", "  - { handler: pkg.resize, input: 1 }", "  - { handler: pkg.resize }"),
    );
    expect(spec.tasks.map((t) => t.name)).toEqual(["pkg.resize", "pkg.resize-2"]);
  });

  it("rejects bad handler names, non-JSON content types for structured input, and NaN", async () => {
    expect(
      await problemsOf(
        yaml(
          "tasks:",
          "  a: { handler: '9lives' }",
          "  b: { handler: x, input: { a: 1 }, content_type: text/plain }",
          "  c: { handler: x, input: [.nan] }",
          "  d: { handler: x, content_type: 'not a type' }",
        ),
      ),
    ).toEqual([
      `${FILE}:2:17: tasks.a.handler: expected a handler name such as resize-image or pkg.module.fn, got "9lives"`,
      `${FILE}:3:51: tasks.b.content_type: expected a JSON media type (such as application/json) for an input that is a map; for another type, write the input as a string`,
      `${FILE}:4:28: tasks.c.input[0]: expected a finite number (JSON has no NaN), got NaN`,
      `${FILE}:5:34: tasks.d.content_type: expected a media type such as "application/json" or "text/plain", got "not a type"`,
    ]);
  });
});

describe("for_each", () => {
  it("fans a task out over a list, substituting item and index, and fans in on needs", async () => {
    const spec = await compile(
      yaml(
        "tasks:",
        "  fetch:",
        `    run: ./fetch.sh \${{ item }} --n \${{ index }}`,
        "    for_each: [paris, berlin, 3]",
        `    env: { CITY: '\${{ item }}' }`,
        "  merge: { run: ./merge.sh, needs: fetch }",
      ),
    );
    expect(spec.tasks.map((t) => t.name)).toEqual(["fetch-0", "fetch-1", "fetch-2", "merge"]);
    expect(exec(spec, "fetch-1").args).toEqual(["berlin", "--n", "1"]);
    expect(exec(spec, "fetch-2").env).toEqual({ CITY: "3" });
    expect(task(spec, "merge").needs).toEqual(["fetch-0", "fetch-1", "fetch-2"]);
    expect(task(spec, "fetch-0").definedAt).toBe(`${FILE}:2`);
  });

  it("names the tasks of map items by their key or name, with fields in run, args, env, cwd and input", async () => {
    const spec = await compile(
      yaml(
        "tasks:",
        "  deploy:",
        `    run: [./deploy.sh, '\${{ item.region }}']`,
        `    args: ['--size=\${{ item.size }}']`,
        `    cwd: work/\${{ item.key }}`,
        "    for_each:",
        "      - { key: eu, region: eu-west-1, size: 3 }",
        "      - { key: us, region: us-east-1, size: 5 }",
        "  notify:",
        "    handler: notify",
        `    input: { who: '\${{ item.name }}', n: '\${{ index }}' }`,
        "    for_each: [{ name: ops }, { name: dev }]",
        "    after: deploy-eu",
      ),
    );
    expect(spec.tasks.map((t) => t.name)).toEqual(["deploy-eu", "deploy-us", "notify-ops", "notify-dev"]);
    expect(exec(spec, "deploy-us").args).toEqual(["us-east-1", "--size=5"]);
    expect(exec(spec, "deploy-us").cwd).toBe("/srv/pipes/work/us");
    const input = task(spec, "notify-dev").target.value as { input: Uint8Array };
    expect(JSON.parse(new TextDecoder().decode(input.input))).toEqual({ who: "dev", n: "1" });
    expect(task(spec, "notify-ops").after).toEqual(["deploy-eu"]);
  });

  it("reads one item per non-empty line of a file, relative to the pipeline", async () => {
    await mkdir(join(dir, "lists"), { recursive: true });
    await writeFile(join(dir, "lists", "cities.txt"), "paris\n\n  berlin  \r\nrome\n");
    const spec = await compile(
      yaml(
        "steps:",
        "  - ./start.sh",
        `  - { name: get, run: "./get.sh '\${{ item }}'", for_each: { file: lists/cities.txt } }`,
        "  - ./end.sh",
      ),
      {},
      join(dir, "p.yaml"),
    );
    expect(spec.tasks.map((t) => t.name)).toEqual(["start", "get-0", "get-1", "get-2", "end"]);
    expect(exec(spec, "get-1").args).toEqual(["berlin"]);
    expect(task(spec, "get-2").needs).toEqual(["start"]);
    expect(task(spec, "end").needs).toEqual(["get-0", "get-1", "get-2"]);
  });

  it("reports problems with items at the item, and a missing file at for_each.file", async () => {
    expect(
      await problemsOf(
        yaml(
          "tasks:",
          `  a: { run: 'x \${{ item.city }}', for_each: [{ key: one, city: p }, { key: two }] }`,
          "  b: { run: x, for_each: { file: nope.txt } }",
          "  c: { run: x, for_each: [{ key: 'bad key' }] }",
          `  d: { run: 'x \${{ item }}' }`,
          "  e-0: { run: x }",
          "  e: { run: x, for_each: [a] }",
        ),
      ),
    ).toEqual([
      `${FILE}:2:13: tasks.a.run: item has no field 'city' (it has: key)`,
      expect.stringMatching(
        new RegExp(
          `^${FILE}:3:34: tasks\\.b\\.for_each\\.file: cannot read the for_each file /srv/pipes/nope\\.txt: ENOENT`,
        ),
      ),
      `${FILE}:4:27: tasks.c.for_each[0]: this item makes the task name: invalid task name "c-bad key": expected 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      `${FILE}:5:13: tasks.d.run: \${{ item }} is defined only in a task with \`for_each:\``,
      `${FILE}:7:27: tasks.e.for_each[0]: this item makes a task named "e-0", a name already used at line 6`,
    ]);
  });

  it("hints at for_each for matrix and strategy", async () => {
    const [problem] = await problemsOf(yaml("tasks:", "  a:", "    run: x", "    matrix: { os: [a, b] }"));
    expect(problem).toContain("tasks.a.matrix: unknown key 'matrix': use `for_each:`");
  });
});

describe("env and params", () => {
  const text = yaml(
    `name: report-\${{ params.day }}`,
    "params:",
    "  day: 2026-11-26",
    "  region: { default: eu, description: where to report on }",
    "  token:",
    "tasks:",
    "  report:",
    `    run: ./report.sh --day \${{ params.day }} --title '\${{ params.title }}' \${{ params.region }}`,
    `    env: { HOME_DIR: '\${{ env.HOME }}', TOKEN: '\${{ params.token }}' }`,
  );

  it("substitutes params (given, else the default) and the environment of the task command", async () => {
    const spec = await compile(text, {
      env: { HOME: "/home/me" },
      params: { title: "a b; $(rm -rf /)", token: "t0k" },
    });
    expect(spec.name).toBe("report-2026-11-26");
    expect(exec(spec, "report").args).toEqual(["--day", "2026-11-26", "--title", "a b; $(rm -rf /)", "eu"]);
    expect(exec(spec, "report").env).toEqual({ HOME_DIR: "/home/me", TOKEN: "t0k" });
  });

  it("reports a missing environment variable, a param without a value and an unknown param together", async () => {
    expect(await problemsOf(text, { env: {}, params: { regoin: "us" } })).toEqual([
      `${FILE}: --param regoin: the pipeline neither declares nor uses a param named 'regoin'; did you mean 'region'? (declared: day, region, token)`,
      `${FILE}:8:10: tasks.report.run: no param named 'title': declare it under \`params:\` or give --param title=VALUE`,
      `${FILE}:9:22: tasks.report.env.HOME_DIR: env.HOME is not set in the environment of the \`task\` command: set it, or use \${{ params.NAME }} with a default`,
      `${FILE}:9:48: tasks.report.env.TOKEN: params.token has no value: give --param token=VALUE (declared at line 5 without a default)`,
    ]);
  });

  it("points at a shorthand step itself, and refuses a command that substitutes to nothing", async () => {
    expect(
      await problemsOf(
        yaml("params: { empty: '' }", `steps: ['./a.sh \${{ params.x }}', '\${{ params.empty }} x']`),
      ),
    ).toEqual([
      `${FILE}:2:9: steps[0]: no param named 'x': declare it under \`params:\` or give --param x=VALUE`,
      `${FILE}:2:35: steps[1]: expected a command, got an empty first word after substitution`,
    ]);
  });

  it("accepts a param that is used but not declared when it is given", async () => {
    const spec = await compile(yaml(`steps: ['./a.sh \${{ params.x }}']`), { params: { x: "1" } });
    expect(exec(spec, "a").args).toEqual(["1"]);
  });

  it("can leave unknown params alone (task validate over many files)", async () => {
    const spec = await compile(yaml("steps: [./a.sh]"), {
      params: { other: "1" },
      rejectUnknownParams: false,
    });
    expect(spec.tasks).toHaveLength(1);
  });

  it("substitutes only in strings where it is documented, never in names, needs or durations", async () => {
    expect(
      await problemsOf(
        yaml(
          "params: { n: 2 }",
          "tasks:",
          `  a: { run: x, retries: '\${{ params.n }}', needs: ['\${{ params.n }}'] }`,
          `  b: { handler: h, pool: p, input: x, content_type: '\${{ params.n }}' }`,
        ),
      ),
    ).toEqual([
      expect.stringContaining(
        `${FILE}:3:25: tasks.a.retries: \${{ ... }} is substituted only in \`run:\`, \`args:\``,
      ),
      expect.stringContaining(`${FILE}:3:52: tasks.a.needs[0]: \${{ ... }} is substituted only in`),
      expect.stringContaining(
        `${FILE}:4:53: tasks.b.content_type: \${{ ... }} is substituted only in \`input:\`, \`labels:\`, \`pool:\`, \`for_each:\` of a \`handler:\` task`,
      ),
    ]);
  });

  it("rejects bad param declarations", async () => {
    expect(
      await problemsOf(
        yaml("params:", "  1st: x", "  ok: [1]", "  m: { default: 1, help: x }", "steps: [./a.sh]"),
      ),
    ).toEqual([
      `${FILE}:2:3: params.1st: invalid param name "1st": expected letters, digits, '_' or '-', starting with a letter or '_'`,
      `${FILE}:3:7: params.ok: expected a default (a string, number or boolean), nothing for a required param, or { default, description }, got a list`,
      `${FILE}:4:20: params.m.help: unknown key 'help' (expected one of: default, description)`,
    ]);
  });
});

describe("keys from other tools", () => {
  it.each([
    ["if: x", "use `condition: COMMAND`"],
    ["when: x", "use `condition: COMMAND`"],
    ["strategy: {}", "use `for_each:`"],
    ["timeout-minutes: 5", 'use `timeout:` with a duration such as "30m"'],
    ["working-directory: x", "use `cwd:`"],
    ["uses: actions/checkout@v4", "not supported: Taskframe runs executables on the host"],
    ["container: ubuntu", "not supported: Taskframe runs executables on the host"],
    ["image: ubuntu", "not supported: Taskframe runs executables on the host"],
    ["outputs: {}", "not supported in this version"],
    ["artifacts: {}", "not supported in this version"],
    ["artifacts: []", "use `install: { artifacts: [{ url, sha256 }] }`"],
    ["resources: { limits: {} }", "use `limits:` with `memory:`, `disk:`, `pids:` and `cpu:`"],
    ["mem_limit: 2g", "use `limits: { memory: 2G }`"],
    ["cpus: 1.5", 'use `limits: { cpu: "150%" }` (a percentage of one CPU)'],
    ["pids_limit: 100", "use `limits: { pids: 256 }`"],
    ["network_mode: none", "use `private_network: true`"],
    ["privileged: true", "ask for a stricter one with `jail: strict` (never a looser one)"],
    ["retry: { limit: 3 }", "use `retries: N`"],
    ["retryStrategy: { limit: 3 }", "use `retries: N`"],
    ["depends_on: [b]", "use `needs:`"],
    ["shell: bash", "never goes through a shell"],
    ["continue-on-error: true", "use `continue_on_error: true`"],
  ])("%s -> %s", async (line, hint) => {
    const [problem] = await problemsOf(yaml("tasks:", "  a:", "    run: ./a.sh", `    ${line}`));
    expect(problem).toContain(`${FILE}:4:5: tasks.a.${line.split(":")[0]}: unknown key`);
    expect(problem).toContain(hint);
  });

  it("hints at the top level too", async () => {
    expect((await problemsOf(yaml("jobs:", "  a: { run: x }")))[0]).toContain("use `tasks:`");
    expect((await problemsOf(yaml("on: push", "steps: [./a.sh]")))[0]).toContain(
      "to run the pipeline on a schedule, use `schedule: { cron:",
    );
    expect((await problemsOf(yaml("env: { A: b }", "steps: [./a.sh]")))[0]).toContain(
      "use `defaults: { env:",
    );
  });
});

describe("unit nodes", () => {
  let units = "";
  beforeAll(async () => {
    units = join(dir, "units");
    await mkdir(units, { recursive: true });
    await writeFile(
      join(units, "pandoc.task"),
      [
        "[Dependencies]",
        "Requires=libpng.service",
        "After=network.target",
        "[Service]",
        "User=test",
        "MaxTime=2s",
        "[Checks]",
        'check-pandoc="./check-pandoc"',
        "[Environment]",
        'DOCKER_PORT="0.0.0.0"',
        "[Args]",
        'args="site.html -o site.html"',
        "[Command]",
        'command="pandoc"',
        "",
      ].join("\n"),
    );
    await writeFile(
      join(units, "libpng.service"),
      '[Dependencies]\nRequires=libjpeg.service\n[Command]\ncommand="./png.sh"\n',
    );
    await writeFile(join(units, "libjpeg.service"), '[Command]\ncommand="./jpeg.sh"\n');
    await writeFile(join(units, "broken.task"), "[Command]\nnope=1\n");
  });

  const unitOptions: PipelineOptions = { loadUnitClosure };

  it("runs the unit's task under the node's name, and pulls in its Requires closure once", async () => {
    const spec = await compile(
      yaml(
        "tasks:",
        "  prepare: { run: ./prepare.sh }",
        "  site:",
        "    unit: units/pandoc.task",
        "    needs: [prepare]",
        "  site-again: { unit: units/pandoc.task, after: site }",
        "  publish: { run: ./publish.sh, needs: [site, libpng] }",
      ),
      unitOptions,
      join(dir, "p.yaml"),
    );
    expect(spec.tasks.map((t) => t.name).sort()).toEqual(
      ["libjpeg", "libpng", "network", "prepare", "publish", "site", "site-again"].sort(),
    );
    const site = task(spec, "site");
    expect(site.needs).toEqual(["libpng", "prepare"]);
    expect(site.after).toEqual(["network"]);
    expect(site.user).toBe("test");
    expect(site.timeoutMs).toBe(2000n);
    expect(site.checks.map((check) => check.command)).toEqual([join(units, "check-pandoc")]);
    expect(exec(spec, "site")).toMatchObject({
      command: "pandoc",
      args: ["site.html", "-o", "site.html"],
      env: { DOCKER_PORT: "0.0.0.0" },
    });
    expect(task(spec, "site-again").after).toEqual(["network", "site"]);
    expect(task(spec, "libpng").needs).toEqual(["libjpeg"]);
    expect(task(spec, "publish").needs).toEqual(["site", "libpng"]);
  });

  it("reports problems in the unit file where they are, and a missing unit at unit:", async () => {
    const problems = await problemsOf(
      yaml(
        "tasks:",
        "  a: { unit: units/broken.task }",
        "  b: { unit: units/none.task }",
        "  c: { unit: units/x.txt }",
      ),
      unitOptions,
      join(dir, "p.yaml"),
    );
    expect(problems[0]).toMatch(/^.*p\.yaml:3:14: tasks\.b\.unit: cannot read the unit .*none\.task: ENOENT/);
    expect(problems[1]).toBe(
      `${join(dir, "p.yaml")}:4:14: tasks.c.unit: expected a unit file (.task, .service, .target), got "units/x.txt"`,
    );
    expect(problems.slice(2).join("\n")).toContain("broken.task:2");
  });

  it("refuses a task named like a unit the closure pulls in", async () => {
    const problems = await problemsOf(
      yaml("tasks:", "  libpng: { run: ./x.sh }", "  site: { unit: units/pandoc.task }"),
      unitOptions,
      join(dir, "p.yaml"),
    );
    expect(problems).toEqual([
      `${join(dir, "p.yaml")}:3:17: tasks.site.unit: this unit requires the unit "libpng", which has the name of the task at line 2; rename that task`,
    ]);
  });

  it("says that unit: needs the unit compiler when none is given", async () => {
    expect(await problemsOf(yaml("tasks:", "  a: { unit: x.task }"))).toEqual([
      `${FILE}:2:14: tasks.a.unit: \`unit:\` tasks are compiled by the unit compiler, which was not given`,
    ]);
  });
});
