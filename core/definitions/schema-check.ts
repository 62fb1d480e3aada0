import type { z } from "zod";
import type { FieldPath } from "./field-path.js";
import { closestMatch } from "./suggest.js";
import type { Anchor, YamlSource } from "./yaml-source.js";

interface Problem {
  path: FieldPath;
  anchor: Anchor;
  message: string;
}

/** Extra advice for particular unknown keys, e.g. `name` under `tasks:`. */
export type KeyHints = Readonly<Record<string, string>>;

/**
 * Validates one map of a definition against a strict object schema. On failure, throws a
 * DefinitionError for the first problem in the file: unknown keys and bad values by position, and
 * missing keys (which have no position of their own) only after those.
 */
export function checkMap<S extends z.ZodObject>(
  source: YamlSource,
  schema: S,
  value: unknown,
  path: FieldPath,
  hints: KeyHints = {},
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const expectedKeys = Object.keys(schema.shape);
  const problems = result.error.issues.flatMap((issue) => toProblems(issue, path, expectedKeys, hints));
  let first: Problem | undefined;
  let firstOffset = Number.POSITIVE_INFINITY;
  for (const problem of problems) {
    const offset = source.offsetOf(problem.path, problem.anchor) ?? Number.MAX_SAFE_INTEGER;
    if (first === undefined || offset < firstOffset) {
      first = problem;
      firstOffset = offset;
    }
  }
  if (!first) return source.fail(path, "invalid value");
  return source.fail(first.path, first.message, first.anchor);
}

function toProblems(
  issue: z.core.$ZodIssue,
  base: FieldPath,
  expectedKeys: string[],
  hints: KeyHints,
): Problem[] {
  const path = [...base, ...issue.path.filter((key) => typeof key !== "symbol")];
  if (issue.code === "unrecognized_keys") {
    const known = issue.path.length === 0 ? expectedKeys : [];
    return issue.keys.map((key) => ({
      path: [...path, key],
      anchor: "key" as const,
      message: unknownKeyMessage(key, known, hints[key]),
    }));
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
  return [{ path, anchor: "value", message: issue.message }];
}

function unknownKeyMessage(key: string, known: readonly string[], hint: string | undefined): string {
  let message = `unknown key '${key}'`;
  if (hint) message += `: ${hint}`;
  else {
    const suggestion = closestMatch(key, known);
    if (suggestion) message += `; did you mean '${suggestion}'?`;
  }
  if (known.length > 0) message += ` (expected one of: ${known.join(", ")})`;
  return message;
}
