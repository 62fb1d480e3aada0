import { findCycle } from "../../dag.js";
import { DefinitionError } from "../../errors.js";
import { BUILTIN_TARGET_NAMES } from "./builtin-targets.js";
import type { CompiledUnit, UnitReference } from "./compiled-unit.js";
import { resolveReference, unitKindOf, unknownUnitProblem } from "./unit-names.js";

// Suggestions compare a name with every unit; past this many unknown names, none are offered.
const SUGGEST_UP_TO = 100;
const CYCLES_UP_TO = 10;

/** What references can name: the units of one directory, and the built-in targets. */
export interface UnitNames {
  exists(fileName: string): boolean;
  /** Whether it is a file (and not a built-in target). */
  isFile(fileName: string): boolean;
  /** Every unit file name there, for suggestions. */
  fileNames: readonly string[];
  /** The directory, for messages. */
  where: string;
}

type DependencyKind = "Requires" | "After" | "Wants";

const dependencies = (unit: CompiledUnit): [DependencyKind, UnitReference[]][] => [
  ["Requires", unit.requires],
  ["After", unit.after],
  ["Wants", unit.wants],
];

/**
 * Resolves a unit's Requires/After/Wants to unit file names (setting `unit` on each), and returns
 * a problem at every reference that names no unit.
 */
export function resolveUnitReferences(
  unit: CompiledUnit,
  names: UnitNames,
  suggestions: { left: number },
): DefinitionError[] {
  const problems: DefinitionError[] = [];
  for (const [kind, references] of dependencies(unit)) {
    for (const reference of references) {
      const resolved = resolveReference(reference.written, (name) => names.exists(name));
      if (resolved !== undefined) {
        reference.unit = resolved;
        continue;
      }
      const problem =
        suggestions.left-- > 0
          ? unknownUnitProblem(reference.written, names.fileNames, names.where, BUILTIN_TARGET_NAMES)
          : `no unit named ${JSON.stringify(reference.written)} in ${names.where}`;
      problems.push(at(unit, kind, reference, problem));
    }
  }
  return problems;
}

export const newSuggestionBudget = (): { left: number } => ({ left: SUGGEST_UP_TO });

/** The units a unit pulls into a run: Requires and Wants, and targets it comes After. */
export function pulledIn(unit: CompiledUnit): string[] {
  const pulled: string[] = [];
  for (const reference of [...unit.requires, ...unit.wants]) {
    if (reference.unit !== undefined) pulled.push(reference.unit);
  }
  for (const reference of unit.after) {
    if (reference.unit !== undefined && unitKindOf(reference.unit) === "target") pulled.push(reference.unit);
  }
  return pulled;
}

/**
 * Finds ordering cycles through Requires and After (Wants does not order) among `units`, and
 * reports each at a reference on it, preferring a Requires. After one is found, the reported
 * edge is set aside and the search goes on, so that several independent cycles show up at once.
 */
export function cycleProblems(units: ReadonlyMap<string, CompiledUnit>): DefinitionError[] {
  const nodes = [...units.values()].map((unit) => {
    // Needs naming no unit read here are ignored by findCycle.
    const needs: string[] = [];
    for (const reference of unit.requires) if (reference.unit !== undefined) needs.push(reference.unit);
    for (const reference of unit.after) if (reference.unit !== undefined) needs.push(reference.unit);
    return { unit, name: unit.fileName, needs };
  });
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const problems: DefinitionError[] = [];
  for (let found = 0; found < CYCLES_UP_TO; found++) {
    const cycle = findCycle(nodes);
    if (!cycle) break;
    const loop = cycle.slice(0, -1);
    const edges = loop.map((from, index) => ({ from, to: loop[(index + 1) % loop.length]!, index }));
    const pick =
      edges.find((edge) => byName.get(edge.from)!.unit.requires.some((ref) => ref.unit === edge.to)) ??
      edges[0]!;
    const from = byName.get(pick.from)!;
    const kind: DependencyKind = from.unit.requires.some((ref) => ref.unit === pick.to)
      ? "Requires"
      : "After";
    const reference = (kind === "Requires" ? from.unit.requires : from.unit.after).find(
      (ref) => ref.unit === pick.to,
    )!;
    const path = [...loop.slice(pick.index), ...loop.slice(0, pick.index), pick.from];
    const self =
      loop.length === 1 ? ` (a unit cannot ${kind === "Requires" ? "require" : "come after"} itself)` : "";
    problems.push(at(from.unit, kind, reference, `dependency cycle: ${path.join(" -> ")}${self}`));
    from.needs = from.needs.filter((name) => name !== pick.to);
  }
  return problems;
}

function at(
  unit: CompiledUnit,
  kind: DependencyKind,
  reference: UnitReference,
  problem: string,
): DefinitionError {
  return new DefinitionError(
    { file: unit.file, line: reference.line, column: reference.column, path: `Dependencies.${kind}` },
    problem,
  );
}
