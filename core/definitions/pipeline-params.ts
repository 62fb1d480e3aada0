import { DefinitionError } from "../errors.js";
import { describeValue, type FieldPath, isPlainMap } from "./field-path.js";
import { referencesIn } from "./pipeline-expressions.js";
import type { ProblemList } from "./pipeline-problems.js";
import { closestMatch } from "./suggest.js";
import type { YamlSource } from "./yaml-source.js";

export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;
const PARAM_NAME_RULE = "letters, digits, '_' or '-', starting with a letter or '_'";

interface Declaration {
  default: string | undefined;
  line: number | undefined;
}

/** The values of `${{ params.NAME }}`: given with --param, else the declared default. */
export class ParamValues {
  constructor(
    private readonly declared: ReadonlyMap<string, Declaration>,
    private readonly given: Readonly<Record<string, string>>,
  ) {}

  /** Throws an Error saying how to give the param when it has no value. */
  value(name: string): string {
    const given = this.given[name];
    if (given !== undefined) return given;
    const declaration = this.declared.get(name);
    if (declaration?.default !== undefined) return declaration.default;
    if (declaration) {
      const where =
        declaration.line === undefined ? "" : ` (declared at line ${declaration.line} without a default)`;
      return fail(`params.${name} has no value: give --param ${name}=VALUE${where}`);
    }
    let problem = `no param named '${name}': declare it under \`params:\` or give --param ${name}=VALUE`;
    const suggestion = closestMatch(name, this.declared.keys());
    if (suggestion) problem += `; did you mean '${suggestion}'?`;
    return fail(problem);
  }
}

const fail = (message: string): never => {
  throw new Error(message);
};

/**
 * Reads `params:` (NAME: default, NAME: with no value for a required param, or NAME: { default, description })
 * and checks the --param values given against what the file declares or uses.
 */
export function readParams(
  source: YamlSource,
  raw: unknown,
  given: Readonly<Record<string, string>>,
  problems: ProblemList,
  options: { rejectUnknown: boolean },
): ParamValues {
  const declared = new Map<string, Declaration>();
  if (raw !== undefined && raw !== null) {
    if (!isPlainMap(raw)) {
      problems.add(
        source.problem(["params"], `expected a map from param names to defaults, got ${describeValue(raw)}`),
      );
    } else {
      for (const name of source.mapKeys(["params"])) {
        const path = ["params", name];
        problems.attempt(() => declared.set(name, readDeclaration(source, name, raw[name], path)));
      }
    }
  }
  if (options.rejectUnknown) {
    const used = usedParams(source.value);
    for (const name of Object.keys(given)) {
      if (declared.has(name) || used.has(name)) continue;
      let problem = `--param ${name}: the pipeline neither declares nor uses a param named '${name}'`;
      const suggestion = closestMatch(name, [...declared.keys(), ...used]);
      if (suggestion) problem += `; did you mean '${suggestion}'?`;
      if (declared.size > 0) problem += ` (declared: ${[...declared.keys()].join(", ")})`;
      problems.add(new DefinitionError({ file: source.file }, problem));
    }
  }
  return new ParamValues(declared, given);
}

function readDeclaration(source: YamlSource, name: string, value: unknown, path: FieldPath): Declaration {
  if (!PARAM_NAME.test(name)) {
    source.fail(path, `invalid param name ${JSON.stringify(name)}: expected ${PARAM_NAME_RULE}`, "key");
  }
  const line = source.lineOf(path, "key");
  if (value === null) return { default: undefined, line };
  if (isScalar(value)) return { default: String(value), line };
  if (!isPlainMap(value)) {
    return source.fail(
      path,
      `expected a default (a string, number or boolean), nothing for a required param, or { default, description }, got ${describeValue(value)}`,
    );
  }
  for (const key of Object.keys(value)) {
    if (key !== "default" && key !== "description") {
      source.fail([...path, key], `unknown key '${key}' (expected one of: default, description)`, "key");
    }
  }
  const fallback = value.default;
  if (fallback !== undefined && fallback !== null && !isScalar(fallback)) {
    source.fail([...path, "default"], `expected a string, number or boolean, got ${describeValue(fallback)}`);
  }
  if (value.description !== undefined && typeof value.description !== "string") {
    source.fail([...path, "description"], `expected a text, got ${describeValue(value.description)}`);
  }
  return { default: fallback === undefined || fallback === null ? undefined : String(fallback), line };
}

const isScalar = (value: unknown): value is string | number | boolean =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean";

/** Names of params referred to anywhere in the document; malformed references are reported where used. */
function usedParams(value: unknown): Set<string> {
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (typeof node === "string") {
      try {
        for (const reference of referencesIn(node)) if (reference.kind === "params") used.add(reference.name);
      } catch {
        // reported where the string is substituted
      }
    } else if (Array.isArray(node)) node.forEach(visit);
    else if (isPlainMap(node)) Object.values(node).forEach(visit);
  };
  visit(value);
  return used;
}
