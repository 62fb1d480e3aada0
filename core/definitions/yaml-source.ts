import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  visit,
} from "yaml";
import { DefinitionError } from "../errors.js";
import { type FieldPath, formatPath } from "./field-path.js";

/** Point at a map entry's key (unknown keys, task names) or at its value (everything else). */
export type Anchor = "key" | "value";

/**
 * A parsed YAML definition that can turn a field path into a file position, so that every problem
 * is reported as `FILE:LINE:COL: PATH: ...`.
 */
export class YamlSource {
  constructor(
    readonly file: string,
    readonly value: unknown,
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /** Offset of the node at `path`, or undefined when the file has no such node. */
  offsetOf(path: FieldPath, anchor: Anchor = "value"): number | undefined {
    const found = this.walk(path);
    if (found.depth < path.length) return undefined;
    const node = anchor === "key" && found.key ? found.key : found.node;
    return node?.range?.[0];
  }

  /** 1-based line of the node at `path`, or undefined when the file has no such node. */
  lineOf(path: FieldPath, anchor: Anchor = "value"): number | undefined {
    const offset = this.offsetOf(path, anchor);
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  /** The keys of the map at `path` in file order (a JS object would put integer-like keys first). */
  mapKeys(path: FieldPath): string[] {
    const found = this.walk(path);
    if (found.depth < path.length || !isMap(found.node)) return [];
    return found.node.items.flatMap((item) => (isScalar(item.key) ? [String(item.key.value)] : []));
  }

  /** Throws a DefinitionError at `path`, or at its closest existing ancestor if it is missing. */
  fail(path: FieldPath, problem: string, anchor: Anchor = "value"): never {
    throw this.problem(path, problem, anchor);
  }

  /** The DefinitionError `fail` would throw, for collecting several. */
  problem(path: FieldPath, problem: string, anchor: Anchor = "value"): DefinitionError {
    const found = this.walk(path);
    const node = anchor === "key" && found.key && found.depth === path.length ? found.key : found.node;
    return this.errorAt(node?.range?.[0] ?? 0, problem, path.length > 0 ? formatPath(path) : undefined);
  }

  private errorAt(offset: number, problem: string, path?: string): DefinitionError {
    const { line, col } = this.lines.linePos(offset);
    return new DefinitionError({ file: this.file, line, column: col, path }, problem);
  }

  private walk(path: FieldPath): { node: Node | undefined; key: Node | undefined; depth: number } {
    let node = this.resolve(this.doc.contents ?? undefined);
    let key: Node | undefined;
    let depth = 0;
    for (const segment of path) {
      let next: Node | undefined;
      let nextKey: Node | undefined;
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isScalar(item.key) && String(item.key.value) === String(segment),
        );
        if (pair) {
          nextKey = pair.key as Node;
          // A `key:` without a value may have no node of its own; point at the key then.
          next = this.resolve((pair.value as Node | null) ?? undefined) ?? nextKey;
        }
      } else if (isSeq(node) && typeof segment === "number") {
        next = this.resolve((node.items[segment] as Node | null | undefined) ?? undefined);
      }
      if (!next) break;
      node = next;
      key = nextKey;
      depth++;
    }
    return { node, key, depth };
  }

  private resolve(node: Node | undefined): Node | undefined {
    return isAlias(node) ? (node.resolve(this.doc) ?? node) : node;
  }
}

const firstLine = (text: string): string => text.split("\n", 1)[0] ?? text;

/** Parses YAML text; malformed YAML is a DefinitionError at the parser's position. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const locate = (offset: number): { line: number; column: number } => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const error = doc.errors[0];
  if (error) {
    throw new DefinitionError({ file, ...locate(error.pos[0]) }, `invalid YAML: ${firstLine(error.message)}`);
  }
  let unresolved: Node | undefined;
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc)) return undefined;
      unresolved = alias;
      return visit.BREAK;
    },
  });
  if (unresolved) {
    throw new DefinitionError(
      { file, ...locate(unresolved.range?.[0] ?? 0) },
      "invalid YAML: this alias names no anchor defined before it",
    );
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (cause) {
    const reason = cause instanceof Error ? firstLine(cause.message) : String(cause);
    throw new DefinitionError({ file, ...locate(0) }, `invalid YAML: ${reason}`, { cause });
  }
  return new YamlSource(file, value, doc, lines);
}
