import { DefinitionError } from "../../errors.js";
import { formatPath } from "../field-path.js";
import type { IniEntry, IniPosition } from "./ini.js";
import { parseIni } from "./ini-parser.js";
import { checkRunIfValues } from "./run-if.js";
import { type Field, isField, type ProblemAt, UNIT_FIELDS, type UnitFields } from "./unit-fields.js";
import { placeIssue } from "./unit-issues.js";
import { checkKind } from "./unit-kinds.js";
import { type UnitKind, unitFileNameProblem, unitKindOf } from "./unit-names.js";
import { unitSchema } from "./unit-schema.js";
import { mergeSections, type SchemaInput, schemaInput } from "./unit-sections.js";

/** A unit file that parsed and matched the schema, with the positions later checks need. */
export interface ParsedUnit {
  /** The path used in messages. */
  file: string;
  fileName: string;
  kind: UnitKind;
  fields: UnitFields;
  /** Where each section's first header is. */
  sections: ReadonlyMap<string, IniPosition>;
}

const START: IniPosition = { line: 1, column: 1 };

/**
 * Parses and validates one unit. Every problem found is returned (syntax, unknown sections and
 * keys, bad values, sections that do not fit the kind of unit), each at its position; `unit` is
 * set only when there are none.
 */
export function parseUnitText(
  text: string,
  file: string,
  fileName: string,
): { unit?: ParsedUnit; problems: DefinitionError[] } {
  const problems: DefinitionError[] = [];
  const at = (position: IniPosition, path: string | undefined, problem: string): void => {
    problems.push(new DefinitionError({ file, line: position.line, column: position.column, path }, problem));
  };
  const kind = unitKindOf(fileName);
  const nameProblem =
    kind === undefined
      ? `expected a unit file ending in .task, .service or .target, got ${JSON.stringify(fileName)}`
      : unitFileNameProblem(fileName);
  if (nameProblem) at(START, undefined, nameProblem);

  const document = parseIni(text, file);
  problems.push(...document.problems);
  const sections = mergeSections(document.sections);
  const input = schemaInput(sections);
  const result = unitSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      for (const problem of placeIssue(issue, sections)) at(problem.position, problem.path, problem.message);
    }
  }
  const fields = readFields(input, (message, where) => {
    const { entry } = where;
    const position =
      where.at === "key"
        ? { line: entry.line, column: entry.column }
        : where.offset === undefined
          ? entry.value.start
          : entry.value.positionAt(where.offset);
    at(position, formatPath([where.section, entry.key]), message);
  });
  if (kind !== undefined) checkKind(kind, sections, at);
  checkRunIfValues(fields.RunIf, sections.get("RunIf"), at);

  if (problems.length > 0 || kind === undefined) {
    problems.sort(
      (a, b) =>
        (a.location.line ?? 0) - (b.location.line ?? 0) ||
        (a.location.column ?? 0) - (b.location.column ?? 0),
    );
    return { problems };
  }
  return { unit: { file, fileName, kind, fields, sections }, problems };
}

/** Reads the value of every known key; unknown sections and keys are the schema's to report. */
function readFields(
  input: SchemaInput,
  report: (message: string, where: ProblemAt & { section: string }) => void,
): UnitFields {
  const fields: Record<string, unknown> = {};
  let section = "";
  const sectionReport = (message: string, where: ProblemAt) => report(message, { ...where, section });
  for (section in input) {
    const spec = FIELDS.get(section);
    if (spec === undefined) continue;
    const given = input[section]!;
    if (isField(spec)) {
      fields[section] = spec.parse(given as IniEntry[], sectionReport);
      continue;
    }
    const values: Record<string, unknown> = {};
    const byKey = given as Record<string, IniEntry[]>;
    for (const key in byKey) {
      const field = spec.get(key);
      if (field !== undefined) values[key] = field.parse(byKey[key]!, sectionReport);
    }
    fields[section] = values;
  }
  // Shaped by UNIT_FIELDS, whose parsers are typed against UnitFields; used only when nothing failed.
  return fields as UnitFields;
}

/** UNIT_FIELDS as maps, for lookups by the names found in a file. */
const FIELDS = new Map<string, Field<unknown> | Map<string, Field<unknown>>>(
  Object.entries(UNIT_FIELDS).map(([section, spec]) => [
    section,
    isField(spec) ? spec : new Map(Object.entries(spec as Record<string, Field<unknown>>)),
  ]),
);
