import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../../errors.js";
import type { RunSpec, TaskSpec } from "../../gen/taskframe/v1/spec_pb.js";
import { buildCatalogue, type Catalogue, loadCatalogue } from "./catalogue.js";
import { loadCatalogueRun, loadUnitClosure, loadUnitRun } from "./load-units.js";
import { MAX_REPORTED_PROBLEMS } from "./problems.js";
import { readUnitTexts } from "./read-units.js";
import { compileUnitRun } from "./unit-run.js";

const DIR = "cat";
const unit = (...lines: string[]): string => `${lines.join("\n")}\n`;
const runs = (...dependencies: string[]): string =>
  unit(
    "[Command]",
    "command=./run.sh",
    ...(dependencies.length > 0 ? ["[Dependencies]", ...dependencies] : []),
  );

function catalogue(files: Record<string, string>): Catalogue {
  return buildCatalogue(
    DIR,
    Object.entries(files).map(([fileName, text]) => ({ fileName, text })),
  );
}

function problems(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    if (error instanceof DefinitionErrors) return error.problems.map((problem) => problem.message);
    if (error instanceof DefinitionError) return [error.message];
    throw error;
  }
  throw new Error("expected a DefinitionError");
}

const edges = (run: RunSpec): Record<string, { needs: string[]; after: string[] }> =>
  Object.fromEntries(run.tasks.map((t: TaskSpec) => [t.name, { needs: t.needs, after: t.after }]));

describe("catalogue: references", () => {
  it("resolves names with and without extension (.task, then .service, then .target)", () => {
    const units = catalogue({
      "app.task": runs("Requires=db lib.service", "After=up"),
      "db.task": runs(),
      "db.service": runs(),
      "lib.service": runs(),
      "up.target": unit("[Checks]", "c=./c"),
    }).units;
    expect(units.get("app.task")!.requires.map((r) => r.unit)).toEqual(["db.task", "lib.service"]);
    expect(units.get("app.task")!.after.map((r) => r.unit)).toEqual(["up.target"]);
  });

  it("reports a reference to no unit at its position, with the closest name and the units there", () => {
    const messages = problems(() =>
      catalogue({
        "app.task": runs("Requires=libpgn.service", "Wants=cache", "After=netwrk.target"),
        "libpng.service": runs(),
        "cache-warm.task": runs(),
      }),
    );
    expect(messages).toEqual([
      `${DIR}/app.task:4:10: Dependencies.Requires: no unit named "libpgn.service" in ${DIR}; did you mean 'libpng.service'? (units there: app.task, cache-warm.task, libpng.service)`,
      `${DIR}/app.task:5:7: Dependencies.Wants: no unit named "cache" in ${DIR} (units there: app.task, cache-warm.task, libpng.service)`,
      `${DIR}/app.task:6:7: Dependencies.After: no unit named "netwrk.target" in ${DIR}; did you mean 'network.target'? (units there: app.task, cache-warm.task, libpng.service)`,
    ]);
  });

  it("suggests a unit by its task name when the reference has no extension", () => {
    const [message] = problems(() =>
      catalogue({ "a.task": runs("Requires=libpgn"), "libpng.service": runs() }),
    );
    expect(message).toContain(`no unit named "libpgn" in ${DIR}; did you mean 'libpng.service'?`);
  });

  it("does not list the units of a large directory", () => {
    const files: Record<string, string> = { "a.task": runs("Requires=nothing-like-it") };
    for (let i = 0; i < 20; i++) files[`u${i}.task`] = runs();
    const [message] = problems(() => catalogue(files));
    expect(message).toBe(
      `${DIR}/a.task:4:10: Dependencies.Requires: no unit named "nothing-like-it" in ${DIR}`,
    );
  });
});

describe("catalogue: cycles", () => {
  it("reports a Requires cycle at a Requires on it, naming the path", () => {
    const messages = problems(() =>
      catalogue({
        "a.task": runs("Requires=b.task"),
        "b.task": runs("Requires=c.task"),
        "c.task": runs("After=a.task"),
      }),
    );
    expect(messages).toEqual([
      `${DIR}/a.task:4:10: Dependencies.Requires: dependency cycle: a.task -> b.task -> c.task -> a.task`,
    ]);
  });

  it("reports a unit that requires itself", () => {
    expect(problems(() => catalogue({ "a.task": runs("Requires=a") }))).toEqual([
      `${DIR}/a.task:4:10: Dependencies.Requires: dependency cycle: a.task -> a.task (a unit cannot require itself)`,
    ]);
  });

  it("reports an After-only cycle at an After, and several independent cycles at once", () => {
    const messages = problems(() =>
      catalogue({
        "a.task": runs("After=b.task"),
        "b.task": runs("After=a.task"),
        "c.task": runs("Requires=d.task"),
        "d.task": runs("Requires=c.task"),
      }),
    );
    expect(messages).toEqual([
      `${DIR}/a.task:4:7: Dependencies.After: dependency cycle: a.task -> b.task -> a.task`,
      `${DIR}/c.task:4:10: Dependencies.Requires: dependency cycle: c.task -> d.task -> c.task`,
    ]);
  });

  it("allows Wants cycles, which do not order", () => {
    const run = compileUnitRun(catalogue({ "a.task": runs("Wants=b"), "b.task": runs("Wants=a") }), ["a"]);
    expect(run.tasks.map((t) => t.name).sort()).toEqual(["a", "b"]);
  });
});

describe("compileUnitRun", () => {
  const files = {
    "app.task": runs(
      "Requires=lib.service",
      "Wants=metrics.task",
      "After=network.target slow.task metrics.task",
    ),
    "lib.service": runs("Requires=base.service"),
    "base.service": runs(),
    "metrics.task": runs("Requires=lib"),
    "slow.task": runs(),
    "online.target": unit("[Checks]", "ping=./ping.sh", "[Dependencies]", "Requires=network.target"),
  };

  it("pulls in Requires and Wants transitively and targets named in After, but not other After units", () => {
    const run = compileUnitRun(catalogue(files), ["app"]);
    expect(run.name).toBe("app");
    expect(run.source).toBe(DIR);
    expect(edges(run)).toEqual({
      network: { needs: [], after: [] },
      base: { needs: [], after: [] },
      lib: { needs: ["base"], after: [] },
      metrics: { needs: ["lib"], after: [] },
      app: { needs: ["lib"], after: ["network", "metrics"] },
    });
    expect(run.tasks.map((t) => t.name)).toEqual(["network", "base", "lib", "metrics", "app"]);
  });

  it("orders After among units of the run only when both are in it", () => {
    const run = compileUnitRun(catalogue(files), ["app", "slow"]);
    expect(edges(run).app).toEqual({ needs: ["lib"], after: ["network", "slow", "metrics"] });
    expect(run.name).toBe(DIR);
  });

  it("compiles every unit when no roots are given, and a user target like any unit", () => {
    const run = compileUnitRun(catalogue(files));
    expect(run.tasks.map((t) => t.name).sort()).toEqual([
      "app",
      "base",
      "lib",
      "metrics",
      "network",
      "online",
      "slow",
    ]);
    const online = run.tasks.find((t) => t.name === "online")!;
    expect(online.needs).toEqual(["network"]);
    expect(online.target).toMatchObject({ case: "exec", value: { command: "true" } });
    expect(online.checks.map((c) => c.command)).toEqual([resolve(DIR, "ping.sh")]);
  });

  it("leaves the built-in network target out when nothing names it", () => {
    const run = compileUnitRun(catalogue({ "a.task": runs() }));
    expect(run.tasks.map((t) => t.name)).toEqual(["a"]);
  });

  it("lets a network.target file replace the built-in one", () => {
    const units = catalogue({
      "a.task": runs("After=network.target"),
      "network.target": unit("[Checks]", "mine=./mine"),
    }).units;
    const run = compileUnitRun({ dir: DIR, units }, ["a"]);
    expect(run.tasks.find((t) => t.name === "network")!.checks.map((c) => c.name)).toEqual(["mine"]);
  });

  it("does not share TaskSpecs, or their lists, between runs", () => {
    const compiled = catalogue({
      "a.task": unit("[Checks]", "c=./c x", "[Command]", "command=./a.sh y", "[Environment]", "E=1"),
    });
    const first = compileUnitRun(compiled).tasks[0]!;
    first.needs.push("changed");
    first.checks[0]!.args.push("changed");
    if (first.target.case === "exec") {
      first.target.value.args.push("changed");
      first.target.value.env.E = "changed";
    }
    const second = compileUnitRun(compiled).tasks[0]!;
    expect(second.needs).toEqual([]);
    expect(second.checks[0]!.args).toEqual(["x"]);
    expect(second.target).toMatchObject({ value: { args: ["y"], env: { E: "1" } } });
  });

  it("rejects roots that name no unit, with a hint", () => {
    expect(problems(() => compileUnitRun(catalogue(files), ["ap"]))).toEqual([
      `${DIR}: no unit named "ap" in ${DIR}; did you mean 'app.task'? (units there: app.task, base.service, lib.service, metrics.task, online.target, slow.task)`,
    ]);
  });

  it("rejects two units of a run that would have the same task name", () => {
    const compiled = catalogue({ "x.task": runs("Requires=x.service"), "x.service": runs() });
    expect(problems(() => compileUnitRun(compiled, ["x.task"]))).toEqual([
      `${DIR}/x.service:1:1: units x.task and x.service would both run as task "x"; rename one`,
    ]);
  });

  it("keeps [MapReduce] and [RunIf] settings beside the task, and refuses to run a MapReduce unit yet", () => {
    const compiled = catalogue({
      "wc.task": unit(
        "[MapReduce]",
        "map=./map.sh -w",
        "reduce=sort",
        "input=logs/*.txt",
        "partitions=8",
        "output=out/counts",
      ),
      "tick.task": unit(
        "[RunIf]",
        "Interval=1min 30s",
        "Requires=./due.sh --soon",
        "[Command]",
        "command=./tick.sh",
      ),
    });
    expect(compiled.units.get("wc.task")!.mapReduce).toEqual({
      line: 1,
      column: 1,
      map: [resolve(DIR, "map.sh"), "-w"],
      reduce: ["sort"],
      input: "logs/*.txt",
      partitions: 8,
      output: "out/counts",
    });
    const tick = compiled.units.get("tick.task")!;
    expect(tick.intervalMs).toBe(90_000);
    expect(tick.task.condition).toMatchObject({
      name: "./due.sh",
      command: resolve(DIR, "due.sh"),
      args: ["--soon"],
    });
    expect(problems(() => compileUnitRun(compiled, ["wc"]))).toEqual([
      `${DIR}/wc.task:1:1: MapReduce: a [MapReduce] unit runs on its own (task run FILE.task): it cannot be part of a directory's run or be required by another unit`,
    ]);
  });

  it("fills every TaskSpec field a unit can set", () => {
    const compiled = catalogue({
      "full.service": unit(
        "[Service]",
        "User=1000",
        "Group=staff",
        "WorkingDirectory=work",
        "Restart=on-failure",
        "RestartSec=30",
        "LimitMem=1.5G",
        "LimitDisk=100K",
        "LimitPids=256",
        "LimitCPU=150%",
        "MaxTime=1h30m",
        "PrivateNetwork=yes",
        "Jail=strict",
        "[Environment]",
        "B=2",
        "A='one two'",
        "[Checks]",
        "z-first=/usr/bin/test -d .",
        "a-second=python3 ./check.py --strict",
        "[Install]",
        "pip=requests numpy",
        "pip=pandas",
        "apt=libpng-dev",
        "npm=",
        "From=deps.json",
        `Artifact=https://example.com/jq-1.7.tar.gz sha256=${"AB".repeat(32)}`,
        `Artifact="/opt/tools/yq" sha256=${"0".repeat(64)}`,
        "[Command]",
        'command=python3 "my job.py"',
        "[Args]",
        "args=--fast",
        "args=\"'two words'\"",
      ),
    });
    const spec = compileUnitRun(compiled).tasks[0]!;
    const base = resolve(DIR);
    expect(spec.target).toMatchObject({
      case: "exec",
      value: {
        command: "python3",
        args: ["my job.py", "--fast", "two words"],
        env: { B: "2", A: "one two" },
        cwd: join(base, "work"),
      },
    });
    expect(spec.retry).toMatchObject({ retries: 5, intervalMs: 30_000n });
    expect(spec.limits).toMatchObject({
      memoryBytes: 1_610_612_736n,
      diskBytes: 102_400n,
      pids: 256,
      cpuMillis: 1500,
    });
    expect([spec.privateNetwork, spec.jail]).toEqual([true, "strict"]);
    expect(spec.timeoutMs).toBe(5_400_000n);
    expect([spec.user, spec.group]).toEqual(["1000", "staff"]);
    expect(spec.checks.map((c) => [c.name, c.command, c.args])).toEqual([
      ["z-first", "/usr/bin/test", ["-d", "."]],
      ["a-second", "python3", ["./check.py", "--strict"]],
    ]);
    expect(spec.install).toMatchObject({
      pip: ["requests", "numpy", "pandas"],
      apt: ["libpng-dev"],
      npm: [],
      from: join(base, "deps.json"),
    });
    expect(spec.install?.artifacts.map(({ url, sha256 }) => ({ url, sha256 }))).toEqual([
      { url: "https://example.com/jq-1.7.tar.gz", sha256: "ab".repeat(32) },
      { url: "/opt/tools/yq", sha256: "0".repeat(64) },
    ]);
    expect(spec.definedAt).toBe(`${DIR}/full.service:28`);
  });

  it("leaves the jail settings a unit does not set to the pool", () => {
    const spec = compileUnitRun(catalogue({ "a.task": runs() })).tasks[0]!;
    expect(spec.limits).toMatchObject({ memoryBytes: 0n, diskBytes: 0n, pids: 0, cpuMillis: 0 });
    expect([spec.privateNetwork, spec.jail, spec.install]).toEqual([false, "", undefined]);
  });

  it("reads infinity as the largest process count, no CPU quota, and the systemd booleans", () => {
    const spec = (service: string[]) =>
      compileUnitRun(catalogue({ "a.task": unit("[Service]", ...service, "[Command]", "command=x") }))
        .tasks[0]!;
    expect(spec(["LimitPids=infinity", "LimitCPU=infinity"]).limits).toMatchObject({
      pids: 4_194_304,
      cpuMillis: 0,
    });
    for (const [written, value] of [
      ["on", true],
      ["1", true],
      ["True", true],
      ["off", false],
      ["0", false],
      ["no", false],
    ] as const) {
      expect(spec([`PrivateNetwork=${written}`]).privateNetwork).toBe(value);
    }
    expect(spec(["Jail=standard"]).jail).toBe("standard");
  });

  it("lets an empty Artifact= clear the artifacts before it, as for the package lists", () => {
    const hex = "f".repeat(64);
    const spec = compileUnitRun(
      catalogue({
        "a.task": unit(
          "[Install]",
          `Artifact=/opt/a sha256=${hex}`,
          "Artifact=",
          `Artifact=/opt/b sha256=${hex}`,
          "[Command]",
          "command=x",
        ),
      }),
    ).tasks[0]!;
    expect(spec.install?.artifacts.map((artifact) => artifact.url)).toEqual(["/opt/b"]);
  });

  it("keeps an environment variable named __proto__ as a variable", () => {
    const spec = compileUnitRun(
      catalogue({ "a.task": unit("[Environment]", "__proto__=x", "[Command]", "command=y") }),
    ).tasks[0]!;
    const env = spec.target.case === "exec" ? spec.target.value.env : {};
    expect(Object.getOwnPropertyDescriptor(env, "__proto__")?.value).toBe("x");
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
  });

  it("lets an empty list value clear what came before, as systemd does", () => {
    const compiled = catalogue({
      "a.task": runs("Requires=b", "Requires=", "Requires=c"),
      "b.task": runs(),
      "c.task": runs(),
    });
    expect(compileUnitRun(compiled, ["a"]).tasks.map((t) => t.name)).toEqual(["c", "a"]);
  });
});

describe("loading from disk", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function directory(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), "taskframe-units-"));
    const root = dir;
    await Promise.all(Object.entries(files).map(([name, text]) => writeFile(join(root, name), text)));
    return dir;
  }

  it("reads only unit files, not subdirectories or hidden files", async () => {
    const root = await directory({ "a.task": runs(), "notes.txt": "x", ".#a.task": "junk", "run.sh": "" });
    await mkdir(join(root, "sub.task"));
    await writeFile(join(root, "sub.task", "b.task"), "junk");
    const compiled = await loadCatalogue(root);
    expect([...compiled.units.keys()]).toEqual(["a.task", "network.target"]);
  });

  it("reads only a unit's closure, so a broken unrelated unit does not matter to it", async () => {
    const root = await directory({
      "a.task": runs("Requires=b", "After=c.task"),
      "b.task": runs(),
      "c.task": "broken",
      "d.task": "broken too",
    });
    const run = await loadUnitRun(join(root, "a.task"));
    expect(edges(run)).toEqual({ b: { needs: [], after: [] }, a: { needs: ["b"], after: [] } });
    await expect(loadCatalogueRun(root)).rejects.toThrow(DefinitionErrors);
  });

  it("reports a closure's problems together", async () => {
    const root = await directory({
      "a.task": runs("Requires=b", "Wants=zz"),
      "b.task": unit("[Command]", "command="),
    });
    const messages = await loadUnitRun(join(root, "a.task")).then(
      () => [],
      (error: DefinitionErrors) => error.problems.map((p) => p.message),
    );
    expect(messages).toEqual([
      `${root}/a.task:5:7: Dependencies.Wants: no unit named "zz" in ${root} (units there: a.task, b.task)`,
      `${root}/b.task:2:9: Command.command: expected a command, got ""`,
    ]);
  });

  it("reports unreadable paths and empty directories", async () => {
    const root = await directory({});
    await expect(loadCatalogueRun(root)).rejects.toThrow(
      `${root}: no units here: expected *.task, *.service or *.target files`,
    );
    await expect(loadCatalogue(join(root, "nope"))).rejects.toThrow(
      `${join(root, "nope")}: cannot read unit directory: ENOENT`,
    );
    await expect(loadUnitRun(join(root, "x.task"))).rejects.toThrow(
      `${join(root, "x.task")}: cannot read unit file: ENOENT`,
    );
  });

  it("caps the problems reported, saying how many more there are", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++)
      files[`u${String(i).padStart(2, "0")}.task`] = unit("[Service]", "MaxTime=x", "LimitMem=y");
    const root = await directory(files);
    const error = await loadCatalogue(root).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DefinitionErrors);
    const messages = (error as DefinitionErrors).problems.map((p) => p.message);
    expect(messages).toHaveLength(MAX_REPORTED_PROBLEMS + 1);
    expect(messages[0]).toContain(`${root}/u00.task:1:1: Command: a .task needs a [Command]`);
    expect(messages.at(-1)).toBe(`${root}: ... and ${40 * 3 - MAX_REPORTED_PROBLEMS} more problems`);
  });

  it("reads a large directory on a reader thread, in order, unreadable files included", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 2100; i++)
      files[`u${String(i).padStart(4, "0")}.task`] = runs(
        i > 0 ? `Requires=u${String(i - 1).padStart(4, "0")}` : "",
      );
    const root = await directory(files);
    await symlink(join(root, "nowhere"), join(root, "broken.task"));
    const names = ["broken.task", ...Object.keys(files)];
    const read: string[] = [];
    for await (const batch of readUnitTexts(root, names)) {
      for (const file of batch) read.push("text" in file ? file.fileName : `!${file.fileName}`);
    }
    expect(read).toEqual(["!broken.task", ...Object.keys(files)]);
    const messages = await loadCatalogue(root).then(
      () => [],
      (error: DefinitionError) => [error.message],
    );
    expect(messages).toEqual([
      `${join(root, "broken.task")}: cannot read unit file: ENOENT: no such file or directory, open '${join(root, "broken.task")}'`,
    ]);
    await rm(join(root, "broken.task"));
    const run = await loadCatalogueRun(root);
    expect(run.tasks).toHaveLength(2100);
    expect(run.tasks[2099]!.needs).toEqual(["u2098"]);
  });

  it("gives a unit's closure for reuse in a pipeline", async () => {
    const root = await directory({
      "a.task": runs("Requires=b"),
      "b.service": runs("Wants=c"),
      "c.task": runs(),
    });
    const { unit: main, required } = await loadUnitClosure(join(root, "a.task"));
    expect(main.name).toBe("a");
    expect(main.needs).toEqual(["b"]);
    expect(required.map((t) => t.name).sort()).toEqual(["b", "c"]);
  });
});
