import { type Dirent, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DefinitionError, errorMessage } from "../../errors.js";
import { BUILTIN_TARGET_NAMES, builtinTarget } from "./builtin-targets.js";
import {
  cycleProblems,
  newSuggestionBudget,
  resolveUnitReferences,
  type UnitNames,
} from "./catalogue-checks.js";
import type { CompiledUnit } from "./compiled-unit.js";
import { throwProblems } from "./problems.js";
import { readUnitTexts, type UnitText } from "./read-units.js";
import { parseUnitText } from "./unit-file.js";
import { unitKindOf } from "./unit-names.js";
import { compileUnit } from "./unit-spec.js";

/** The units of one directory, checked: every reference resolved, no ordering cycle. */
export interface Catalogue {
  /** The directory as given. */
  dir: string;
  /**
   * By file name: the units read (all of the directory, or a unit's closure) and the built-in
   * targets that no file replaces.
   */
  units: ReadonlyMap<string, CompiledUnit>;
}

/** Unit file names in `dir` (not recursive), sorted; hidden files (editor leftovers) are skipped. */
export function listUnitFiles(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (cause) {
    throw new DefinitionError({ file: dir }, `cannot read unit directory: ${errorMessage(cause)}`, { cause });
  }
  return entries
    .filter(
      (entry) => !entry.isDirectory() && !entry.name.startsWith(".") && unitKindOf(entry.name) !== undefined,
    )
    .map((entry) => entry.name)
    .sort();
}

/** Parses and compiles one unit's text; `unit` is set only if it has no problems. */
export function compileUnitText(
  dir: string,
  file: UnitText,
  paths = unitPaths(dir),
): { unit?: CompiledUnit; problems: DefinitionError[] } {
  if ("unreadable" in file) return { problems: [file.unreadable] };
  const parsed = parseUnitText(file.text, paths.file(file.fileName), file.fileName);
  return parsed.unit
    ? { unit: compileUnit(parsed.unit, paths.absolute), problems: [] }
    : { problems: parsed.problems };
}

/** The paths of a directory's units, worked out once per directory rather than once per unit. */
export function unitPaths(dir: string): { absolute: string; file: (fileName: string) => string } {
  // A unit's file name has no "/" and is not "." or "..", so joining it is appending it.
  const prefix = join(dir, "_").slice(0, -1);
  return { absolute: resolve(dir), file: (fileName) => prefix + fileName };
}

export function unitNames(dir: string, unsorted: readonly string[]): UnitNames {
  const fileNames = [...unsorted].sort();
  const files = new Set(fileNames);
  const present = new Set([...fileNames, ...BUILTIN_TARGET_NAMES]);
  return {
    exists: (name) => present.has(name),
    isFile: (name) => files.has(name),
    fileNames,
    where: dir,
  };
}

/** Adds the built-in targets that no file of the catalogue replaces. */
export function addBuiltinTargets(units: Map<string, CompiledUnit>, dir: string): void {
  for (const name of BUILTIN_TARGET_NAMES) {
    if (units.has(name)) continue;
    const target = builtinTarget(name, resolve(dir));
    if (target) units.set(name, target);
  }
}

/**
 * Collects units one at a time, then checks them together: every problem of every unit, unknown
 * references and ordering cycles are thrown at once (DefinitionErrors), capped with a note.
 */
class CatalogueBuilder {
  private readonly problems: DefinitionError[] = [];
  private readonly units = new Map<string, CompiledUnit>();
  private readonly fileNames: string[] = [];
  private readonly paths: ReturnType<typeof unitPaths>;

  constructor(private readonly dir: string) {
    this.paths = unitPaths(dir);
  }

  add(file: UnitText): void {
    this.fileNames.push(file.fileName);
    const compiled = compileUnitText(this.dir, file, this.paths);
    if (compiled.problems.length > 0) this.problems.push(...compiled.problems);
    if (compiled.unit) this.units.set(compiled.unit.fileName, compiled.unit);
  }

  finish(): Catalogue {
    const { dir, units, problems } = this;
    const names = unitNames(dir, this.fileNames);
    const suggestions = newSuggestionBudget();
    for (const unit of units.values()) {
      const unknown = resolveUnitReferences(unit, names, suggestions);
      if (unknown.length > 0) problems.push(...unknown);
    }
    addBuiltinTargets(units, dir);
    problems.push(...cycleProblems(units));
    throwProblems(problems, dir);
    return { dir, units };
  }
}

/** Builds a catalogue from unit texts; see CatalogueBuilder for what is checked. */
export function buildCatalogue(dir: string, files: Iterable<UnitText>): Catalogue {
  const builder = new CatalogueBuilder(dir);
  for (const file of files) builder.add(file);
  return builder.finish();
}

/** Reads every `*.task`, `*.service` and `*.target` file of `dir` (not recursive) into a catalogue. */
export async function loadCatalogue(dir: string): Promise<Catalogue> {
  const builder = new CatalogueBuilder(dir);
  for await (const batch of readUnitTexts(dir, listUnitFiles(dir))) {
    for (const file of batch) builder.add(file);
  }
  return builder.finish();
}
