import { basename, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import { topologicalOrder } from "../../dag.js";
import { DefinitionError } from "../../errors.js";
import { type RunSpec, RunSpecSchema, type TaskSpec } from "../../gen/taskframe/v1/spec_pb.js";
import type { Catalogue } from "./catalogue.js";
import { pulledIn } from "./catalogue-checks.js";
import type { CompiledUnit, UnitReference } from "./compiled-unit.js";
import { throwProblems } from "./problems.js";
import { taskSpecOf } from "./task-spec-of.js";
import { resolveReference, unknownUnitProblem } from "./unit-names.js";

export interface UnitRunOptions {
  /** RunSpec.source; the catalogue's directory by default. */
  source?: string;
  /** RunSpec.name; the root unit's task name if there is one root, else the directory's name. */
  name?: string;
}

/**
 * Compiles the units named by `roots` (file names, or task names: `libpng` finds `libpng.task`,
 * then `.service`, then `.target`) and everything they pull in, transitively, into a RunSpec; all
 * the catalogue's units when `roots` is undefined. Requires become `needs`, After becomes `after`
 * between units of the run, Wants only pulls in.
 */
export function compileUnitRun(
  catalogue: Catalogue,
  roots?: readonly string[],
  options: UnitRunOptions = {},
): RunSpec {
  const problems: DefinitionError[] = [];
  const rootUnits = roots === undefined ? filesOf(catalogue) : resolveRoots(catalogue, roots, problems);
  const members = closure(catalogue, rootUnits);
  const byTaskName = new Map<string, CompiledUnit>();
  for (const unit of members) {
    const earlier = byTaskName.get(unit.name);
    if (earlier) {
      problems.push(
        new DefinitionError(
          { file: unit.file, line: 1, column: 1 },
          `units ${earlier.fileName} and ${unit.fileName} would both run as task "${unit.name}"; rename one`,
        ),
      );
    }
    byTaskName.set(unit.name, unit);
    if (unit.mapReduce && unit.task.command === undefined) {
      const { line, column } = unit.mapReduce;
      problems.push(
        new DefinitionError(
          { file: unit.file, line, column, path: "MapReduce" },
          "a [MapReduce] unit runs on its own (task run FILE.task): it cannot be part of a directory's run or be required by another unit",
        ),
      );
    }
  }
  throwProblems(problems, catalogue.dir);

  const inRun = new Set(members.map((unit) => unit.fileName));
  const tasks = members.map((unit) => taskOf(unit, catalogue, inRun));
  const order = topologicalOrder(
    tasks.map((task) => ({ name: task.name, needs: [...task.needs, ...task.after] })),
  );
  const byName = new Map(tasks.map((task) => [task.name, task]));
  const only = rootUnits.length === 1 ? rootUnits[0] : undefined;
  return create(RunSpecSchema, {
    name: options.name ?? only?.name ?? basename(resolve(catalogue.dir)),
    source: options.source ?? catalogue.dir,
    tasks: order ? order.map((name) => byName.get(name)!) : tasks,
  });
}

const filesOf = (catalogue: Catalogue): CompiledUnit[] =>
  [...catalogue.units.values()].filter((unit) => !unit.builtin);

function resolveRoots(
  catalogue: Catalogue,
  roots: readonly string[],
  problems: DefinitionError[],
): CompiledUnit[] {
  const units: CompiledUnit[] = [];
  for (const root of roots) {
    const fileName = resolveReference(root, (name) => catalogue.units.has(name));
    if (fileName !== undefined) {
      units.push(catalogue.units.get(fileName)!);
      continue;
    }
    const fileNames = filesOf(catalogue)
      .map((unit) => unit.fileName)
      .sort();
    problems.push(
      new DefinitionError({ file: catalogue.dir }, unknownUnitProblem(root, fileNames, catalogue.dir)),
    );
  }
  return units;
}

/** The roots and what they pull in, breadth first, each once. */
function closure(catalogue: Catalogue, roots: readonly CompiledUnit[]): CompiledUnit[] {
  const seen = new Set<string>();
  const members: CompiledUnit[] = [];
  const visit = (unit: CompiledUnit | undefined): void => {
    if (!unit || seen.has(unit.fileName)) return;
    seen.add(unit.fileName);
    members.push(unit);
  };
  for (const root of roots) visit(root);
  for (let next = 0; next < members.length; next++) {
    for (const fileName of pulledIn(members[next]!)) visit(catalogue.units.get(fileName));
  }
  return members;
}

function taskOf(unit: CompiledUnit, catalogue: Catalogue, inRun: ReadonlySet<string>): TaskSpec {
  const nameOf = (references: readonly UnitReference[]): string[] =>
    references.flatMap((reference) => {
      const target = reference.unit === undefined ? undefined : catalogue.units.get(reference.unit);
      return target && inRun.has(target.fileName) && target !== unit ? [target.name] : [];
    });
  const needs = [...new Set(nameOf(unit.requires))];
  const needed = new Set(needs);
  const after = [...new Set(nameOf(unit.after))].filter((name) => !needed.has(name));
  return taskSpecOf(unit.task, needs, after);
}
