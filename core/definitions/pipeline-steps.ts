import { describeValue, type FieldPath, isPlainMap } from "./field-path.js";
import type { ProblemList } from "./pipeline-problems.js";
import { parallelSchema, sequenceSchema } from "./pipeline-schema.js";
import { checkMap } from "./schema-check.js";
import type { YamlSource } from "./yaml-source.js";

/** One task written under `steps:`: a command string or a task map, read by `readTaskNode`. */
export interface StepTask {
  kind: "task";
  path: FieldPath;
  raw: string | Record<string, unknown>;
}

export type StepNode =
  | StepTask
  | { kind: "parallel"; items: StepNode[] }
  | { kind: "sequence"; items: StepNode[] };

/**
 * Validates a `steps:` list (and the groups nested in it) into a tree. A bad item is recorded and
 * left out, so the problems of the others are found in the same pass.
 */
export function readSteps(
  source: YamlSource,
  items: readonly unknown[],
  path: FieldPath,
  problems: ProblemList,
): { kind: "sequence"; items: StepNode[] } {
  return {
    kind: "sequence",
    items: items.flatMap((item, index) => {
      const node = problems.attempt(() => readStep(source, item, [...path, index], problems));
      return node === undefined ? [] : [node];
    }),
  };
}

function readStep(source: YamlSource, raw: unknown, path: FieldPath, problems: ProblemList): StepNode {
  if (typeof raw === "string") return { kind: "task", path, raw };
  if (!isPlainMap(raw)) {
    return source.fail(
      path,
      `expected a step: a command string, a map with \`run:\`, \`handler:\` or \`unit:\`, or a \`parallel:\` / \`steps:\` group, got ${describeValue(raw)}`,
    );
  }
  if ("parallel" in raw) {
    const group = checkMap(source, parallelSchema, raw, path);
    return {
      kind: "parallel",
      items: readSteps(source, group.parallel, [...path, "parallel"], problems).items,
    };
  }
  if ("steps" in raw && !("run" in raw || "handler" in raw || "unit" in raw)) {
    const group = checkMap(source, sequenceSchema, raw, path);
    return readSteps(source, group.steps, [...path, "steps"], problems);
  }
  return { kind: "task", path, raw };
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
