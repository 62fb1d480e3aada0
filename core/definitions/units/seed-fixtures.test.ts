import { access, constants, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DefinitionError } from "../../errors.js";
import { Backoff, type RunSpec, type TaskSpec } from "../../gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../../package-root.js";
import { NETWORK_CHECK_SCRIPT } from "./builtin-targets.js";
import { loadCatalogue } from "./catalogue.js";
import { parseIni } from "./ini-parser.js";
import { loadCatalogueRun, loadUnitClosure, loadUnitRun } from "./load-units.js";

const SEED = packagePath("examples", "seed");
const at = (...names: string[]): string => join(SEED, ...names);
const GiB = 1024n ** 3n;

function task(run: RunSpec, name: string): TaskSpec {
  const found = run.tasks.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no task ${name} in ${run.tasks.map((t) => t.name).join(", ")}`);
  return found;
}

function exec(spec: TaskSpec) {
  if (spec.target.case !== "exec") throw new Error(`${spec.name} is not an exec task`);
  return spec.target.value;
}

describe("seed fixtures: the request's examples", () => {
  it("compiles pandoc.task with its closure: Requires pulls in, After orders, network.target is built in", async () => {
    const run = await loadUnitRun(at("pandoc.task"));
    expect(run.name).toBe("pandoc");
    expect(run.source).toBe(at("pandoc.task"));
    expect(run.tasks.map((t) => t.name)).toEqual(["network", "libjpeg", "libpng", "pandoc"]);

    const pandoc = task(run, "pandoc");
    expect(pandoc.needs).toEqual(["libpng"]);
    expect(pandoc.after).toEqual(["network"]);
    expect(pandoc.checks.map((c) => [c.name, c.command, c.args])).toEqual([
      ["check-pandoc", at("check-pandoc"), []],
    ]);
    expect(pandoc.user).toBe("test");
    expect(pandoc.group).toBe("test");
    expect(pandoc.retry?.retries).toBe(0);
    expect(pandoc.retry?.backoff).toBe(Backoff.FIXED);
    expect(pandoc.timeoutMs).toBe(2000n);
    expect(pandoc.limits?.memoryBytes).toBe(0n);
    expect(pandoc.limits?.diskBytes).toBe(0n);
    expect(pandoc.condition).toBeUndefined();
    expect(pandoc.definedAt).toBe(`${at("pandoc.task")}:22`);
    expect(exec(pandoc)).toMatchObject({
      command: "pandoc",
      args: ["site.html", "-o", "site.html", "--template=_template.html"],
      env: { DOCKER_PORT: "0.0.0.0" },
      cwd: "/tmp/pandoc",
    });

    const libpng = task(run, "libpng");
    expect(libpng.needs).toEqual(["libjpeg"]);
    expect(libpng.after).toEqual([]);
    expect(exec(libpng)).toMatchObject({ command: at("libpng.sh"), args: [], cwd: SEED });
    expect(task(run, "libjpeg").needs).toEqual([]);

    const network = task(run, "network");
    expect(exec(network).command).toBe("true");
    expect(network.checks.map((c) => [c.name, c.command, c.args])).toEqual([
      ["network-up", "/bin/sh", ["-c", NETWORK_CHECK_SCRIPT]],
    ]);
  });

  it("compiles the [Checks]-only example as a target and the second pandoc example as a task", async () => {
    const target = (await loadUnitRun(at("pandoc-checks.target"))).tasks;
    expect(target).toHaveLength(1);
    expect(exec(target[0]!)).toMatchObject({ command: "true", args: [], cwd: SEED });
    expect(target[0]!.checks.map((c) => c.command)).toEqual([at("check-pandoc")]);

    const site = task(await loadUnitRun(at("pandoc-site.task")), "pandoc-site");
    expect(site.needs).toEqual([]);
    expect(exec(site)).toMatchObject({ command: "pandoc", env: { DOCKER_PORT: "0.0.0.0" }, cwd: SEED });
    expect(site.checks).toHaveLength(1);
  });

  it("compiles the [RunIf] examples: a condition script, and a cron kept beside the task", async () => {
    const prune = task(await loadUnitRun(at("prune-users.task")), "prune-users");
    expect(prune.condition).toMatchObject({
      name: "./check-if-too-many-users.sh",
      command: at("check-if-too-many-users.sh"),
      args: [],
    });
    expect(exec(prune).command).toBe(at("prune-users.sh"));

    const catalogue = await loadCatalogue(SEED);
    const heartbeat = catalogue.units.get("heartbeat.task")!;
    expect(heartbeat.cron).toBe("* * * * *");
    expect(heartbeat.intervalMs).toBeUndefined();
    expect(heartbeat.task.command).toBe(at("heartbeat.sh"));
    expect(catalogue.units.get("prune-users.task")!.cron).toBeUndefined();
  });

  it("compiles the Restart=5 / LimitMem=8G / LimitDisk=4G service", async () => {
    const flaky = task(await loadUnitRun(at("flaky.service")), "flaky");
    expect(flaky.retry).toMatchObject({ retries: 5, intervalMs: 100n, backoff: Backoff.FIXED });
    expect(flaky.limits).toMatchObject({ memoryBytes: 8n * GiB, diskBytes: 4n * GiB });
    expect(flaky.timeoutMs).toBe(0n);
    expect(flaky.retry?.nonRetryableExitCodes).toEqual([]);
  });

  it("runs the whole directory as one run, built-in targets only where referenced", async () => {
    const run = await loadCatalogueRun(SEED);
    expect(run.name).toBe("seed");
    expect(run.source).toBe(SEED);
    expect(run.tasks.map((t) => t.name).sort()).toEqual([
      "flaky",
      "heartbeat",
      "libjpeg",
      "libpng",
      "network",
      "pandoc",
      "pandoc-checks",
      "pandoc-site",
      "prune-users",
    ]);
    const order = run.tasks.map((t) => t.name);
    expect(order.indexOf("libjpeg")).toBeLessThan(order.indexOf("libpng"));
    expect(order.indexOf("libpng")).toBeLessThan(order.indexOf("pandoc"));
    expect(order.indexOf("network")).toBeLessThan(order.indexOf("pandoc"));
  });

  it("gives a unit and what it requires to a YAML pipeline", async () => {
    const { unit, required } = await loadUnitClosure(at("pandoc.task"));
    expect(unit.name).toBe("pandoc");
    expect(required.map((t) => t.name).sort()).toEqual(["libjpeg", "libpng", "network"]);
  });

  it("has executable scripts for every command and check the fixtures name", async () => {
    const run = await loadCatalogueRun(SEED);
    const commands = run.tasks.flatMap((t) => [
      exec(t).command,
      ...t.checks.map((c) => c.command),
      ...(t.condition ? [t.condition.command] : []),
    ]);
    for (const command of commands.filter((c) => c.startsWith(SEED))) {
      await expect(access(command, constants.X_OK)).resolves.toBeUndefined();
    }
    expect(await readFile(at("check-pandoc"), "utf8")).toBe(
      "#!/usr/bin/env bash\nwhich pandoc # returns a status code of 0 if found, 1 if not.\n",
    );
  });

  it("rejects the [RunIf] example exactly as the request's page wrapped it, saying why", () => {
    const wrapped =
      '[RunIf]\nRequires="./check-if-too-many-users.sh" # checks for user count of all\n' +
      "accounts, returns 0 if the task needs to run, 1 otherwise.\n";
    const [problem] = parseIni(wrapped, "prune-users.task").problems;
    expect(problem).toBeInstanceOf(DefinitionError);
    expect(problem!.message).toContain("prune-users.task:3:1:");
    expect(problem!.message).toContain(
      "if this line continues the comment on the line above, start it with '#'",
    );
  });
});
