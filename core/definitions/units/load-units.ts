import { basename, dirname } from "node:path";
import { DefinitionError } from "../../errors.js";
import type { RunSpec, TaskSpec } from "../../gen/taskframe/v1/spec_pb.js";
import {
  addBuiltinTargets,
  type Catalogue,
  compileUnitText,
  listUnitFiles,
  loadCatalogue,
  unitNames,
  unitPaths,
} from "./catalogue.js";
import { cycleProblems, newSuggestionBudget, pulledIn, resolveUnitReferences } from "./catalogue-checks.js";
import type { CompiledUnit } from "./compiled-unit.js";
import { mapReduceUnitRun } from "./mapreduce-unit.js";
import { throwProblems } from "./problems.js";
import { readUnitText } from "./read-units.js";
import { compileUnitRun } from "./unit-run.js";

/** Every unit of a directory as one run. */
export async function loadCatalogueRun(dir: string): Promise<RunSpec> {
  return compileUnitRun(await loadDirectoryCatalogue(dir));
}

/** Every unit of a directory, checked; a directory without units is an error. */
export async function loadDirectoryCatalogue(dir: string): Promise<Catalogue> {
  const catalogue = await loadCatalogue(dir);
  throwIfEmpty(catalogue);
  return catalogue;
}

/**
 * One unit file and what it pulls in from its own directory, as a run named after the unit. Only
 * the units of that closure are read, so a broken unrelated unit in the directory does not matter.
 */
export async function loadUnitRun(path: string): Promise<RunSpec> {
  const { catalogue, root } = await loadUnitCatalogue(path);
  const unit = catalogue.units.get(root)!;
  if (unit.mapReduce && unit.task.command === undefined) return mapReduceUnitRun(unit, path);
  return compileUnitRun(catalogue, [root], { source: path });
}

/** A unit's task and the tasks it pulls in, for reusing a unit in a YAML pipeline (`unit: path/to.task`). */
export async function loadUnitClosure(unitPath: string): Promise<{ unit: TaskSpec; required: TaskSpec[] }> {
  const { catalogue, root } = await loadUnitCatalogue(unitPath);
  const run = compileUnitRun(catalogue, [root], { source: unitPath });
  const name = catalogue.units.get(root)!.name;
  return {
    unit: run.tasks.find((task) => task.name === name)!,
    required: run.tasks.filter((task) => task.name !== name),
  };
}

/** Reads a unit and, breadth first, the units it pulls in; references and cycles are checked. */
export function loadUnitCatalogue(path: string): { catalogue: Catalogue; root: string } {
  const dir = dirname(path);
  const root = basename(path);
  const names = unitNames(dir, listUnitFiles(dir));
  const units = new Map<string, CompiledUnit>();
  const problems: DefinitionError[] = [];
  const suggestions = newSuggestionBudget();
  const paths = unitPaths(dir);
  const queue = [root];
  const queued = new Set(queue);
  for (let next = 0; next < queue.length; next++) {
    const compiled = compileUnitText(dir, readUnitText(dir, queue[next]!), paths);
    problems.push(...compiled.problems);
    const unit = compiled.unit;
    if (!unit) continue;
    units.set(unit.fileName, unit);
    problems.push(...resolveUnitReferences(unit, names, suggestions));
    for (const fileName of pulledIn(unit)) {
      if (queued.has(fileName) || !names.isFile(fileName)) continue;
      queued.add(fileName);
      queue.push(fileName);
    }
  }
  addBuiltinTargets(units, dir);
  problems.push(...cycleProblems(units));
  throwProblems(problems, dir);
  return { catalogue: { dir, units }, root };
}

function throwIfEmpty(catalogue: Catalogue): void {
  if ([...catalogue.units.values()].some((unit) => !unit.builtin)) return;
  throw new DefinitionError(
    { file: catalogue.dir },
    "no units here: expected *.task, *.service or *.target files (subdirectories are not read)",
  );
}
