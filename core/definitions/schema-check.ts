import { z } from "zod";
import { DefinitionErrors } from "../errors.js";
import type { FieldPath } from "./field-path.js";
import { closestMatch } from "./suggest.js";
import type { Anchor, YamlSource } from "./yaml-source.js";

interface Problem {
  path: FieldPath;
  anchor: Anchor;
  message: string;
  /** For an unknown key: the expected key it is probably a typo of. */
  suggestion?: string;
  /** A required key that is absent. */
  missing?: boolean;
}

/** Extra advice for particular unknown keys, e.g. `name` under `tasks:`. */
export type KeyHints = Readonly<Record<string, string>>;

/**
 * Validates one map of a definition against a strict object schema. On failure, throws every
 * problem in the map in file order (a DefinitionError, or DefinitionErrors for several): unknown
 * keys and bad values by position, and missing keys (which have no position of their own) last.
 */
export function checkMap<S extends z.ZodType>(
  source: YamlSource,
  schema: S,
  value: unknown,
  path: FieldPath,
  hints: KeyHints = {},
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const all = result.error.issues.flatMap((issue) =>
    toProblems(issue, path, keysAt(schema, issue.path), hints),
  );
  // `rn: x` is reported as "did you mean 'run'?"; that `run` is then missing goes without saying.
  const suggested = new Set(all.flatMap((problem) => (problem.suggestion ? [problem.suggestion] : [])));
  const problems = all
    .filter((problem) => !(problem.missing && suggested.has(String(problem.path.at(-1)))))
    .map((problem) => ({
      problem,
      offset: source.offsetOf(problem.path, problem.anchor) ?? Number.MAX_SAFE_INTEGER,
    }))
    .sort((a, b) => a.offset - b.offset);
  if (problems.length === 0) return source.fail(path, "invalid value");
  DefinitionErrors.throwIfAny(
    problems.map(({ problem }) => source.problem(problem.path, problem.message, problem.anchor)),
  );
  return source.fail(path, "invalid value");
}

/** The keys of the map whose schema is at `path` inside `schema`, or none when that cannot be told. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const key of path) {
    current = unwrapped(current);
    if (current instanceof z.ZodObject && typeof key === "string") current = current.shape[key];
    else if (current instanceof z.ZodArray && typeof key === "number") current = current.element as z.ZodType;
    else return [];
    if (current === undefined) return [];
  }
  current = unwrapped(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

/** The schema under `.optional()` and `.transform()`. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodOptional) current = current.unwrap() as z.ZodType;
    else if (current instanceof z.ZodPipe) current = current.in as z.ZodType;
    else return current;
  }
}

function toProblems(
  issue: z.core.$ZodIssue,
  base: FieldPath,
  /** The keys of the map the issue is in, when known. */
  known: string[],
  hints: KeyHints,
): Problem[] {
  const path = [...base, ...issue.path.filter((key) => typeof key !== "symbol")];
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => {
      const hint = hints[key];
      const suggestion = hint ? undefined : closestMatch(key, known);
      return {
        path: [...path, key],
        anchor: "key" as const,
        message: unknownKeyMessage(key, known, hint, suggestion),
        ...(suggestion ? { suggestion } : {}),
      };
    });
  }
  if (issue.code === "invalid_union") {
    // The option whose type matched the value (it failed deeper, or on a check) says what is wrong.
    const matched = issue.errors.find(
      (option) =>
        option.length > 0 &&
        !option.some((inner) => inner.code === "invalid_type" && inner.path.length === 0),
    );
    const inner = matched?.[0];
    if (inner) return toProblems(inner, path, [], {});
  }
  return [{ path, anchor: "value", message: issue.message, missing: issue.message.startsWith("missing;") }];
}

function unknownKeyMessage(
  key: string,
  known: readonly string[],
  hint: string | undefined,
  suggestion: string | undefined,
): string {
  let message = `unknown key '${key}'`;
  if (hint) message += `: ${hint}`;
  else if (suggestion) message += `; did you mean '${suggestion}'?`;
  if (known.length > 0) message += ` (expected one of: ${known.join(", ")})`;
  return message;
}
