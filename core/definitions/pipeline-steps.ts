import { describeValue, type FieldPath, isPlainMap } from "./field-path.js";
import { parallelSchema, type StepFields, sequenceSchema, stepSchema } from "./pipeline-schema.js";
import { checkMap } from "./schema-check.js";
import { splitCommandLine } from "./words.js";
import type { YamlSource } from "./yaml-source.js";

/** One task written under `steps:`; `fields.name` is unset for shorthand and unnamed steps. */
export interface StepTask {
  kind: "task";
  path: FieldPath;
  fields: StepFields;
}

export type StepNode =
  | StepTask
  | { kind: "parallel"; items: StepNode[] }
  | { kind: "sequence"; items: StepNode[] };

export const HANDLER_PROBLEM =
  "handler tasks need SDK workers, which this version does not run yet; use run:";

/** Validates a `steps:` list (and the groups nested in it) into a tree. */
export function readSteps(
  source: YamlSource,
  items: readonly unknown[],
  path: FieldPath,
): { kind: "sequence"; items: StepNode[] } {
  return { kind: "sequence", items: items.map((item, index) => readStep(source, item, [...path, index])) };
}

function readStep(source: YamlSource, raw: unknown, path: FieldPath): StepNode {
  if (typeof raw === "string") {
    let argv: string[];
    try {
      argv = splitCommandLine(raw);
    } catch (error) {
      return source.fail(path, error instanceof Error ? error.message : String(error));
    }
    return { kind: "task", path, fields: { run: argv } };
  }
  if (!isPlainMap(raw)) {
    return source.fail(
      path,
      `expected a step: a command string, a map with \`run:\`, or a \`parallel:\` / \`steps:\` group, got ${describeValue(raw)}`,
    );
  }
  if ("handler" in raw) return source.fail([...path, "handler"], HANDLER_PROBLEM, "key");
  if ("parallel" in raw) {
    const group = checkMap(source, parallelSchema, raw, path);
    return { kind: "parallel", items: readSteps(source, group.parallel, [...path, "parallel"]).items };
  }
  if ("steps" in raw) {
    const group = checkMap(source, sequenceSchema, raw, path);
    return readSteps(source, group.steps, [...path, "steps"]);
  }
  return { kind: "task", path, fields: checkMap(source, stepSchema, raw, path) };
}

/** Every task of the tree, in document order. */
export function stepTasks(root: StepNode): StepTask[] {
  if (root.kind === "task") return [root];
  return root.items.flatMap(stepTasks);
}

/**
 * The needs implied by sequencing: every entry task of an item needs every exit task of the item
 * before it. A parallel group's entries and exits are its members'; a sequence's entries are its
 * first item's and its exits its last item's.
 */
export function sequenceNeeds(root: StepNode): Map<StepTask, StepTask[]> {
  const needs = new Map<StepTask, StepTask[]>();
  const visit = (node: StepNode): { entries: StepTask[]; exits: StepTask[] } => {
    if (node.kind === "task") return { entries: [node], exits: [node] };
    const ends = node.items.map(visit);
    if (node.kind === "parallel") {
      return { entries: ends.flatMap((end) => end.entries), exits: ends.flatMap((end) => end.exits) };
    }
    for (let i = 1; i < ends.length; i++) {
      for (const entry of ends[i]!.entries) {
        const list = needs.get(entry) ?? [];
        for (const exit of ends[i - 1]!.exits) list.push(exit);
        needs.set(entry, list);
      }
    }
    return { entries: ends[0]?.entries ?? [], exits: ends.at(-1)?.exits ?? [] };
  };
  visit(root);
  return needs;
}
