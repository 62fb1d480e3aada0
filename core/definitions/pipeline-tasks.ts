import { parse } from "node:path";
import { DefinitionError, DefinitionErrors } from "../errors.js";
import { type FieldPath, isPlainMap } from "./field-path.js";
import { hasExpression, splitCommandTemplate } from "./pipeline-expressions.js";
import { TASK_KEY_HINTS } from "./pipeline-hints.js";
import {
  type HandlerTaskFields,
  handlerStepSchema,
  handlerTaskSchema,
  KIND_KEYS,
  type RunTaskFields,
  runStepSchema,
  runTaskSchema,
  type UnitTaskFields,
  unitStepSchema,
  unitTaskSchema,
} from "./pipeline-schema.js";
import { checkMap, type KeyHints } from "./schema-check.js";
import { nameFromCommand } from "./task-names.js";
import type { YamlSource } from "./yaml-source.js";

export type TaskKind = keyof typeof KIND_KEYS;

/** A task as written, validated, with `${{ ... }}` still in its strings. */
export type TaskTemplate =
  | { kind: "run"; fields: RunTaskFields }
  | { kind: "handler"; fields: HandlerTaskFields; hasInput: boolean }
  | { kind: "unit"; fields: UnitTaskFields };

export interface TaskNode {
  /** Where the task is written: its key under `tasks:` or its item under `steps:`. */
  path: FieldPath;
  /** The key under `tasks:` or a step's `name:`. */
  explicitName: string | undefined;
  template: TaskTemplate;
}

const KINDS: readonly TaskKind[] = ["run", "handler", "unit"];
export const UNIT_EXTENSIONS = [".task", ".service", ".target"];

/** Keys whose strings may hold `${{ ... }}`, by kind of task. */
const SUBSTITUTED: Record<TaskKind, ReadonlySet<string>> = {
  run: new Set([
    "run",
    "args",
    "env",
    "cwd",
    "user",
    "group",
    "checks",
    "condition",
    "labels",
    "pool",
    "for_each",
  ]),
  handler: new Set(["input", "labels", "pool", "for_each"]),
  unit: new Set(["unit"]),
};

/** Keys of `defaults:` whose strings may hold `${{ env.X }}` or `${{ params.X }}`. */
export const SUBSTITUTED_DEFAULTS: ReadonlySet<string> = new Set([
  "env",
  "cwd",
  "user",
  "group",
  "labels",
  "pool",
]);

/**
 * Reads one task: the kind from its `run:`, `handler:` or `unit:` key, then every problem of the map
 * at once (unknown keys with a hint where another tool's spelling was used, bad values, `${{ }}`
 * where it is not substituted).
 */
export function readTaskNode(
  source: YamlSource,
  raw: string | Record<string, unknown>,
  path: FieldPath,
  place: "tasks" | "steps",
  explicitName: string | undefined,
): TaskNode {
  if (typeof raw === "string") {
    try {
      return { path, explicitName, template: { kind: "run", fields: { run: splitCommandTemplate(raw) } } };
    } catch (error) {
      return source.fail(path, error instanceof Error ? error.message : String(error));
    }
  }
  const present = KINDS.filter((kind) => kind in raw);
  if (present.length > 1) {
    source.fail(
      [...path, present[1]!],
      `a task has one of \`run:\`, \`handler:\` or \`unit:\`, got both \`${present[0]}:\` and \`${present[1]}:\``,
      "key",
    );
  }
  const kind = present[0] ?? "run";
  const misplaced = misplacedExpressions(raw, path, SUBSTITUTED[kind], `a \`${kind}:\` task`).map((problem) =>
    source.problem(...problem),
  );
  const hints = { ...TASK_KEY_HINTS, ...kindHints(kind) };
  if (place === "tasks") hints.name = "a task's name is its key under `tasks:`";
  let template: TaskTemplate;
  try {
    template = readTemplate(source, kind, raw, path, place, hints);
  } catch (error) {
    if (misplaced.length === 0) throw error;
    const more =
      error instanceof DefinitionErrors
        ? error.problems
        : error instanceof DefinitionError
          ? [error]
          : undefined;
    if (!more) throw error;
    // A value with a misplaced `${{ }}` is also a bad value there; saying so once is enough.
    const places = new Set(misplaced.map((problem) => problem.location.path));
    throw new DefinitionErrors([
      ...misplaced,
      ...more.filter((problem) => !places.has(problem.location.path)),
    ]);
  }
  DefinitionErrors.throwIfAny(misplaced);
  if (template.kind === "unit") checkUnitPath(source, template.fields.unit, [...path, "unit"]);
  return { path, explicitName, template };
}

function readTemplate(
  source: YamlSource,
  kind: TaskKind,
  raw: Record<string, unknown>,
  path: FieldPath,
  place: "tasks" | "steps",
  hints: KeyHints,
): TaskTemplate {
  const inSteps = place === "steps";
  switch (kind) {
    case "run":
      return { kind, fields: checkMap(source, inSteps ? runStepSchema : runTaskSchema, raw, path, hints) };
    case "handler":
      return {
        kind,
        fields: checkMap(source, inSteps ? handlerStepSchema : handlerTaskSchema, raw, path, hints),
        hasInput: "input" in raw,
      };
    case "unit":
      return { kind, fields: checkMap(source, inSteps ? unitStepSchema : unitTaskSchema, raw, path, hints) };
  }
}

/** Why a key of one kind of task is not accepted by another. */
function kindHints(kind: TaskKind): KeyHints {
  const hints: Record<string, string> = {};
  const own = new Set<string>(KIND_KEYS[kind]);
  for (const other of KINDS) {
    if (other === kind) continue;
    for (const key of KIND_KEYS[other]) {
      if (own.has(key) || key in hints) continue;
      hints[key] =
        kind === "unit"
          ? "a `unit:` task takes its command and settings from the unit file; it may add only `needs:`, `after:` and `continue_on_error:`"
          : `applies to \`${KINDS.filter((k) => k !== kind && (KIND_KEYS[k] as readonly string[]).includes(key)).join(":` and `")}:\` tasks, not to \`${kind}:\` tasks`;
    }
  }
  return hints;
}

type Located = [path: FieldPath, problem: string, anchor: "key" | "value"];

/** Finds `${{` in keys, and in values of keys where nothing is substituted. */
export function misplacedExpressions(
  raw: Record<string, unknown>,
  path: FieldPath,
  substituted: ReadonlySet<string>,
  owner: string,
): Located[] {
  const found: Located[] = [];
  const where = `only in ${[...substituted].map((key) => `\`${key}:\``).join(", ")} of ${owner}`;
  const visit = (value: unknown, at: FieldPath, valuesAllowed: boolean): void => {
    if (typeof value === "string") {
      if (!valuesAllowed && hasExpression(value)) {
        found.push([at, `\${{ ... }} is substituted ${where}; it cannot be used here`, "value"]);
      }
    } else if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) visit(item, [...at, index], valuesAllowed);
    } else if (isPlainMap(value)) {
      for (const key of Object.keys(value)) {
        if (hasExpression(key)) {
          found.push([[...at, key], `\${{ ... }} is not substituted in keys: write the name itself`, "key"]);
        }
        visit(value[key], [...at, key], valuesAllowed);
      }
    }
  };
  for (const key of Object.keys(raw)) {
    if (hasExpression(key)) {
      found.push([[...path, key], `\${{ ... }} is not substituted in keys`, "key"]);
      continue;
    }
    visit(raw[key], [...path, key], substituted.has(key));
  }
  return found;
}

function checkUnitPath(source: YamlSource, unit: string, path: FieldPath): void {
  if (hasExpression(unit)) return;
  if (!UNIT_EXTENSIONS.some((extension) => unit.endsWith(extension))) {
    source.fail(path, `expected a unit file (${UNIT_EXTENSIONS.join(", ")}), got ${JSON.stringify(unit)}`);
  }
}

/** The base of an unnamed step's name: its command's, handler's or unit file's name. */
export function derivedName(template: TaskTemplate): string {
  switch (template.kind) {
    case "run": {
      const command = template.fields.run[0] ?? "";
      return hasExpression(command) ? "step" : nameFromCommand(command);
    }
    case "handler":
      return template.fields.handler.replace(/^[^A-Za-z0-9]+/, "").slice(0, 120) || "handler";
    case "unit":
      return hasExpression(template.fields.unit) ? "unit" : nameFromCommand(parse(template.fields.unit).name);
  }
}
