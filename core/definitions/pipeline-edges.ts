import { findCycle } from "../dag.js";
import type { TaskSpec } from "../gen/taskframe/v1/spec_pb.js";
import type { FieldPath } from "./field-path.js";
import type { ProblemList } from "./pipeline-problems.js";
import { closestMatch } from "./suggest.js";
import type { YamlSource } from "./yaml-source.js";

const LIST_NAMES_UP_TO = 10;

/** A name written under `needs:` or `after:`, and where. */
export interface EdgeEntry {
  name: string;
  path: FieldPath;
}

/** One task as written (a node of the file) and the tasks it became. */
export interface Draft {
  name: string;
  path: FieldPath;
  needs: EdgeEntry[];
  after: EdgeEntry[];
  /** The steps it comes after in a `steps:` sequence: it needs all of their tasks. */
  sequence: Draft[];
  continueOnError: boolean;
  /** One per for_each item (or just one); empty if the task could not be compiled. */
  specs: TaskSpec[];
}

export function edgeEntries(written: string | readonly string[] | undefined, path: FieldPath): EdgeEntry[] {
  if (written === undefined) return [];
  if (typeof written === "string") return [{ name: written, path }];
  return written.map((name, index) => ({ name, path: [...path, index] }));
}

/**
 * Sets `needs` and `after` on every task: a name under `needs:`/`after:` stands for all the tasks
 * of that node (fan-in over a for_each), and a need on a task with `continue_on_error: true` becomes
 * an ordering-only `after`. `others` are tasks not written in the file (units pulled in by `unit:`);
 * `broken` names tasks that failed to compile, whose names are known but stand for nothing;
 * `written` is every task name written in the file, for messages.
 */
export function resolveEdges(
  source: YamlSource,
  drafts: readonly Draft[],
  others: readonly TaskSpec[],
  broken: ReadonlySet<string>,
  problems: ProblemList,
  written: readonly string[],
): void {
  const groups = new Map<string, string[]>();
  for (const other of others) groups.set(other.name, [other.name]);
  for (const draft of drafts) {
    for (const spec of draft.specs) if (!groups.has(spec.name)) groups.set(spec.name, [spec.name]);
  }
  for (const draft of drafts)
    groups.set(
      draft.name,
      draft.specs.map((spec) => spec.name),
    );
  const known = new Set([...groups.keys(), ...broken]);
  const resolve = (entries: readonly EdgeEntry[]): string[] =>
    entries.flatMap((entry) => {
      const names = groups.get(entry.name);
      if (names) return names;
      if (!broken.has(entry.name)) {
        problems.add(source.problem(entry.path, unknownNameProblem(entry.name, known, written)));
      }
      return [];
    });
  const tolerant = new Set<string>();
  for (const draft of drafts) {
    if (draft.continueOnError) for (const spec of draft.specs) tolerant.add(spec.name);
  }
  for (const draft of drafts) {
    const needs = [
      ...resolve(draft.needs),
      ...draft.sequence.flatMap((before) => groups.get(before.name) ?? []),
    ];
    const after = resolve(draft.after);
    for (const spec of draft.specs) {
      spec.needs = [...spec.needs, ...needs];
      spec.after = [...spec.after, ...after];
    }
  }
  for (const spec of [...drafts.flatMap((draft) => draft.specs), ...others]) {
    const needs = spec.needs.filter((name) => !tolerant.has(name));
    const after = [...spec.after, ...spec.needs.filter((name) => tolerant.has(name))];
    spec.needs = [...new Set(needs)];
    const needed = new Set(spec.needs);
    spec.after = [...new Set(after)].filter((name) => !needed.has(name));
  }
}

function unknownNameProblem(name: string, known: ReadonlySet<string>, written: readonly string[]): string {
  let problem = `no task named ${JSON.stringify(name)}`;
  const suggestion = closestMatch(name, known);
  if (suggestion) problem += `; did you mean '${suggestion}'?`;
  if (written.length <= LIST_NAMES_UP_TO) problem += ` (tasks in this file: ${written.join(", ")})`;
  return problem;
}

/**
 * Reports a dependency cycle (through `needs` and `after` alike: either way nothing on it could
 * start) once, at an entry of `needs:`/`after:` on it when there is one.
 */
export function rejectCycles(source: YamlSource, drafts: readonly Draft[], tasks: readonly TaskSpec[]): void {
  const cycle = findCycle(tasks.map((task) => ({ name: task.name, needs: [...task.needs, ...task.after] })));
  if (!cycle) return;
  const draftOf = new Map<string, Draft>();
  for (const draft of drafts) for (const spec of draft.specs) draftOf.set(spec.name, draft);
  const loop = cycle.slice(0, -1);
  for (let i = 0; i < loop.length; i++) {
    const from = draftOf.get(loop[i]!);
    const to = loop[(i + 1) % loop.length]!;
    const toDraft = draftOf.get(to);
    const entry = [...(from?.needs ?? []), ...(from?.after ?? [])].find(
      (written) => written.name === to || written.name === toDraft?.name,
    );
    if (!entry) continue;
    const rotated = [...loop.slice(i), ...loop.slice(0, i), loop[i]!];
    const hint = rotated.length === 2 ? " (a task cannot need itself)" : "";
    source.fail(entry.path, `dependency cycle: ${rotated.join(" -> ")}${hint}`);
  }
  const first = draftOf.get(loop[0]!);
  source.fail(first?.path ?? [], `dependency cycle: ${cycle.join(" -> ")}`);
}
