import { type DefinitionError, DefinitionErrors } from "../errors.js";
import type { FieldPath } from "./field-path.js";
import { itemText, type Reference, type Resolver, substitute } from "./pipeline-expressions.js";
import type { ParamValues } from "./pipeline-params.js";
import type { YamlSource } from "./yaml-source.js";

/** What `${{ env.X }}` and `${{ params.X }}` read. */
export interface Scope {
  env: Readonly<Record<string, string | undefined>>;
  params: ParamValues;
}

/** The for_each item a task instance is made for. */
export interface ItemContext {
  value: unknown;
  index: number;
}

function resolver(scope: Scope, item: ItemContext | undefined): Resolver {
  return (reference: Reference) => {
    switch (reference.kind) {
      case "env": {
        const value = scope.env[reference.name];
        if (value === undefined) {
          throw new Error(
            `env.${reference.name} is not set in the environment of the \`task\` command: set it, ` +
              `or use \${{ params.NAME }} with a default`,
          );
        }
        return value;
      }
      case "params":
        return scope.params.value(reference.name);
      case "item":
        if (!item) throw new Error(`\${{ item }} is defined only in a task with \`for_each:\``);
        return itemText(item.value, reference.fields);
      case "index":
        if (!item) throw new Error(`\${{ index }} is defined only in a task with \`for_each:\``);
        return String(item.index);
    }
  };
}

/**
 * Substitutes the strings of one task (or of `defaults:`). A string that cannot be substituted is
 * recorded at its field and kept as written, so that one pass finds every such problem; `check()`
 * then throws them.
 */
export class Substituter {
  private readonly resolve: Resolver;
  private problems: DefinitionError[] = [];

  constructor(
    private readonly source: YamlSource,
    scope: Scope,
    item?: ItemContext,
  ) {
    this.resolve = resolver(scope, item);
  }

  text(value: string, path: FieldPath): string {
    try {
      return substitute(value, this.resolve);
    } catch (error) {
      this.problems.push(this.source.problem(path, error instanceof Error ? error.message : String(error)));
      return value;
    }
  }

  /** Throws the problems recorded since the last check. */
  check(): void {
    const found = this.problems;
    this.problems = [];
    DefinitionErrors.throwIfAny(found);
  }

  optional(value: string | undefined, path: FieldPath): string | undefined {
    return value === undefined ? undefined : this.text(value, path);
  }

  /**
   * Substitutes each word on its own. A word of a command string has no position of its own, so
   * problems point at the command; words of a list point at themselves.
   */
  words(words: readonly string[], path: FieldPath): string[] {
    const listed = this.source.offsetOf([...path, 0]) !== undefined;
    return words.map((word, index) => this.text(word, listed ? [...path, index] : path));
  }

  map(
    values: Readonly<Record<string, string>> | undefined,
    path: FieldPath,
  ): Record<string, string> | undefined {
    if (values === undefined) return undefined;
    return Object.fromEntries(
      Object.entries(values).map(([key, value]) => [key, this.text(value, [...path, key])]),
    );
  }

  /** Any YAML value: strings are substituted, everything else (keys included) stays as written. */
  deep(value: unknown, path: FieldPath): unknown {
    if (typeof value === "string") return this.text(value, path);
    if (Array.isArray(value)) return value.map((item, index) => this.deep(item, [...path, index]));
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, this.deep(item, [...path, key])]),
      );
    }
    return value;
  }
}
