import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { errorMessage } from "../errors.js";
import { describeValue, type FieldPath, isPlainMap } from "./field-path.js";
import type { ForEachFields } from "./pipeline-schema.js";
import type { Substituter } from "./pipeline-scope.js";
import type { YamlSource } from "./yaml-source.js";

/** More tasks than this from one `for_each:` is almost surely a mistake (the wrong file). */
export const MAX_FOR_EACH_ITEMS = 100_000;

export interface ForEachItem {
  value: unknown;
  /** Where the item is written, for problems with it; the `for_each.file` for lines of a file. */
  path: FieldPath;
  /** Appended to the task's name: the item's `key:` or `name:`, else its index. */
  suffix: string;
}

/**
 * The items of a `for_each:`: a list written in the file (strings, numbers, booleans or maps), or
 * `{ file: PATH }` (relative to the pipeline file), one item per non-empty line, trimmed.
 */
export async function readForEachItems(
  source: YamlSource,
  forEach: ForEachFields,
  path: FieldPath,
  baseDir: string,
  substituter: Substituter,
): Promise<ForEachItem[]> {
  if (Array.isArray(forEach)) {
    checkCount(source, forEach.length, path);
    return forEach.map((written, index) => {
      const at = [...path, index];
      if (!isPlainMap(written) && !isScalar(written)) {
        source.fail(at, `expected an item: a string, number, boolean or map, got ${describeValue(written)}`);
      }
      const value = substituter.deep(written, at);
      substituter.check();
      return { value, path: at, suffix: suffixOf(source, value, index, at) };
    });
  }
  const filePath = [...path, "file"];
  const file = resolve(baseDir, substituter.text(forEach.file, filePath));
  substituter.check();
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    return source.fail(filePath, `cannot read the for_each file ${file}: ${errorMessage(cause)}`);
  }
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  checkCount(source, lines.length, filePath);
  return lines.map((value, index) => ({ value, path: filePath, suffix: String(index) }));
}

function checkCount(source: YamlSource, count: number, path: FieldPath): void {
  if (count > MAX_FOR_EACH_ITEMS) {
    source.fail(path, `expected at most ${MAX_FOR_EACH_ITEMS} items, got ${count}`);
  }
}

function suffixOf(source: YamlSource, value: unknown, index: number, path: FieldPath): string {
  if (!isPlainMap(value)) return String(index);
  const field = "key" in value ? "key" : "name" in value ? "name" : undefined;
  if (field === undefined) return String(index);
  const key = value[field];
  if (!isScalar(key)) {
    source.fail([...path, field], `expected a string or number naming the item, got ${describeValue(key)}`);
  }
  return String(key);
}

const isScalar = (value: unknown): value is string | number | boolean =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean";
