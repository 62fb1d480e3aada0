import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DefinitionError } from "../errors.js";
import { definitionKind, loadDefinition } from "./load.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-load-"));
  await writeFile(
    join(dir, "etl.yaml"),
    `params: { day: today }\nsteps: ['./a.sh \${{ params.day }}', ./b.sh]\n`,
  );
  await writeFile(join(dir, "short.yml"), "tasks:\n  x: { unit: site.task }\n");
  await writeFile(
    join(dir, "site.task"),
    '[Dependencies]\nRequires=lib.service\n[Command]\ncommand="./site.sh"\n',
  );
  await writeFile(join(dir, "lib.service"), '[Command]\ncommand="./lib.sh"\n');
  await writeFile(join(dir, "all.target"), "[Dependencies]\nRequires=site.task\n");
  await writeFile(join(dir, "notes.txt"), "hello\n");
  await mkdir(join(dir, "empty"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const names = (spec: { tasks: { name: string }[] }) => spec.tasks.map((task) => task.name).sort();

describe("loadDefinition", () => {
  it("compiles .yaml and .yml files as pipelines, with params and unit: nodes", async () => {
    const spec = await loadDefinition(join(dir, "etl.yaml"), { params: { day: "2026-11-26" } });
    expect(names(spec)).toEqual(["a", "b"]);
    const a = spec.tasks[0]!.target;
    expect(a.case === "exec" && a.value.args).toEqual(["2026-11-26"]);
    expect(names(await loadDefinition(join(dir, "short.yml")))).toEqual(["lib", "x"]);
  });

  it("compiles a unit with the units it requires", async () => {
    const spec = await loadDefinition(join(dir, "site.task"));
    expect(names(spec)).toEqual(["lib", "site"]);
    expect(names(await loadDefinition(join(dir, "all.target")))).toEqual(["all", "lib", "site"]);
  });

  it("compiles a directory as a catalogue of every unit in it", async () => {
    expect(names(await loadDefinition(dir))).toEqual(["all", "lib", "site"]);
  });

  it("refuses params for units, and other kinds of files, naming the accepted kinds", async () => {
    await expect(loadDefinition(join(dir, "site.task"), { params: { day: "x" } })).rejects.toThrow(
      "--param applies to YAML pipelines",
    );
    await expect(loadDefinition(join(dir, "notes.txt"))).rejects.toThrow(
      `${join(dir, "notes.txt")}: expected a YAML pipeline (.yaml, .yml), a unit (.task, .service, .target) or a directory of units, got the file "notes.txt"`,
    );
    await expect(loadDefinition(join(dir, "missing"))).rejects.toThrow("cannot read the definition: ENOENT");
    await expect(loadDefinition(join(dir, "missing.yaml"))).rejects.toThrow(
      "cannot read pipeline file: ENOENT",
    );
    await expect(loadDefinition(join(dir, "empty"))).rejects.toBeInstanceOf(DefinitionError);
  });

  it("tells the kinds apart by extension, then by being a directory", async () => {
    expect(await definitionKind("x.YML")).toBe("pipeline");
    expect(await definitionKind("x.service")).toBe("unit");
    expect(await definitionKind(dir)).toBe("catalogue");
    expect(await definitionKind(join(dir, "notes.txt"))).toBeUndefined();
  });
});
