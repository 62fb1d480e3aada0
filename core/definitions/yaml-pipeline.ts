import { readFile } from "node:fs/promises";
import { dirname, parse, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import { findCycle } from "../dag.js";
import { DefinitionError, errorMessage } from "../errors.js";
import { type RunSpec, RunSpecSchema } from "../gen/taskframe/v1/spec_pb.js";
import { describeValue, type FieldPath, formatPath, isPlainMap } from "./field-path.js";
import {
  pipelineSchema,
  type StepFields,
  settingsSchema,
  TASK_NAME,
  type TaskFields,
  taskNameProblem,
  taskSchema,
} from "./pipeline-schema.js";
import { HANDLER_PROBLEM, readSteps, type StepTask, sequenceNeeds, stepTasks } from "./pipeline-steps.js";
import { checkMap } from "./schema-check.js";
import { closestMatch } from "./suggest.js";
import { NameAllocator, nameFromCommand } from "./task-names.js";
import { execTaskSpec, mergeSettings } from "./task-spec.js";
import { parseYamlSource, type YamlSource } from "./yaml-source.js";

const NO_TASKS = "the pipeline defines no tasks: expected a `tasks:` map or a `steps:` list";
const LIST_NAMES_UP_TO = 10;

/** A task on its way to a TaskSpec, with the file positions needed for later errors. */
interface Draft {
  name: string;
  path: FieldPath;
  fields: TaskFields | StepFields;
  explicitNeeds: { name: string; path: FieldPath }[];
  needs: string[];
}

/** Reads and compiles a YAML pipeline file; every problem is a DefinitionError. */
export async function loadPipelineFile(path: string): Promise<RunSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new DefinitionError({ file: path }, `cannot read pipeline file: ${errorMessage(cause)}`, { cause });
  }
  return compilePipeline(text, path);
}

/**
 * Compiles the text of a YAML pipeline into a RunSpec. `file` is used for messages, the default
 * run name and `source`; relative commands and cwds resolve against its directory.
 */
export function compilePipeline(text: string, file: string): RunSpec {
  const source = parseYamlSource(text, file);
  const top = source.value;
  if (top === null || top === undefined) return source.fail([], NO_TASKS);
  if (!isPlainMap(top)) {
    return source.fail(
      [],
      `expected a map with \`tasks:\` and/or \`steps:\` at the top level, got ${describeValue(top)}`,
    );
  }
  const pipeline = checkMap(source, pipelineSchema, top, []);
  const defaults =
    pipeline.defaults === undefined ? {} : checkMap(source, settingsSchema, pipeline.defaults, ["defaults"]);

  const drafts = [...readTaskMap(source, pipeline.tasks), ...readStepDrafts(source, pipeline.steps)];
  if (drafts.length === 0) return source.fail([], NO_TASKS);
  resolveExplicitNeeds(source, drafts);
  rejectCycles(source, drafts);

  const baseDir = dirname(resolve(file));
  return create(RunSpecSchema, {
    name: pipeline.name ?? parse(file).name,
    source: file,
    labels: pipeline.labels ?? {},
    tasks: drafts.map((draft) =>
      execTaskSpec(
        {
          name: draft.name,
          argv: draft.fields.run,
          args: draft.fields.args ?? [],
          needs: draft.needs,
          settings: mergeSettings(defaults, draft.fields),
        },
        baseDir,
      ),
    ),
  });
}

function readTaskMap(source: YamlSource, tasks: Record<string, unknown> | undefined): Draft[] {
  if (tasks === undefined) return [];
  return source.mapKeys(["tasks"]).map((name) => {
    const path = ["tasks", name];
    if (!TASK_NAME.test(name)) return source.fail(path, taskNameProblem(name), "key");
    const raw = tasks[name];
    if (isPlainMap(raw) && "handler" in raw) return source.fail([...path, "handler"], HANDLER_PROBLEM, "key");
    const fields = checkMap(source, taskSchema, raw, path, {
      name: "a task's name is its key under `tasks:`",
    });
    return { name, path, fields, explicitNeeds: [], needs: [] };
  });
}

/**
 * Names the step tasks (explicit names must be unique across the file; the rest are derived from
 * the command and never collide) and adds the needs that sequencing implies.
 */
function readStepDrafts(source: YamlSource, steps: readonly unknown[] | undefined): Draft[] {
  if (steps === undefined) return [];
  const root = readSteps(source, steps, ["steps"]);
  const tasks = stepTasks(root);
  const namePaths = new Map<string, FieldPath>();
  for (const name of source.mapKeys(["tasks"])) namePaths.set(name, ["tasks", name]);
  for (const task of tasks) {
    const name = task.fields.name;
    if (name === undefined) continue;
    const namePath = [...task.path, "name"];
    const earlier = namePaths.get(name);
    if (earlier) {
      const anchor = earlier[0] === "tasks" ? "key" : "value";
      const line = source.lineOf(earlier, anchor);
      const where = line === undefined ? formatPath(earlier) : `line ${line} (${formatPath(earlier)})`;
      return source.fail(namePath, `duplicate task name "${name}": already used at ${where}`);
    }
    namePaths.set(name, namePath);
  }
  const allocator = new NameAllocator(new Set(namePaths.keys()));
  const names = new Map<StepTask, string>();
  for (const task of tasks) {
    names.set(task, task.fields.name ?? allocator.allocate(nameFromCommand(task.fields.run[0] ?? "")));
  }
  const implied = sequenceNeeds(root);
  return tasks.map((task) => ({
    name: names.get(task)!,
    path: task.path,
    fields: task.fields,
    explicitNeeds: [],
    needs: (implied.get(task) ?? []).map((need) => names.get(need)!),
  }));
}

function resolveExplicitNeeds(source: YamlSource, drafts: Draft[]): void {
  const known = new Set(drafts.map((draft) => draft.name));
  for (const draft of drafts) {
    const written = draft.fields.needs;
    if (written === undefined) continue;
    const entries =
      typeof written === "string"
        ? [{ name: written, path: [...draft.path, "needs"] }]
        : written.map((name, index) => ({ name, path: [...draft.path, "needs", index] }));
    for (const entry of entries) {
      if (!known.has(entry.name)) source.fail(entry.path, unknownNeedProblem(entry.name, known));
    }
    draft.explicitNeeds = entries;
    draft.needs = [...entries.map((entry) => entry.name), ...draft.needs];
  }
}

function unknownNeedProblem(name: string, known: ReadonlySet<string>): string {
  let problem = `no task named ${JSON.stringify(name)}`;
  const suggestion = closestMatch(name, known);
  if (suggestion) problem += `; did you mean '${suggestion}'?`;
  if (known.size <= LIST_NAMES_UP_TO) problem += ` (tasks in this file: ${[...known].join(", ")})`;
  return problem;
}

/** Reports a cycle at a `needs:` entry on it; sequencing alone cannot form one, so there always is one. */
function rejectCycles(source: YamlSource, drafts: readonly Draft[]): void {
  const cycle = findCycle(drafts);
  if (!cycle) return;
  const byName = new Map(drafts.map((draft) => [draft.name, draft]));
  const loop = cycle.slice(0, -1);
  for (let i = 0; i < loop.length; i++) {
    const from = byName.get(loop[i]!)!;
    const to = loop[(i + 1) % loop.length]!;
    const entry = from.explicitNeeds.find((need) => need.name === to);
    if (!entry) continue;
    const rotated = [...loop.slice(i), ...loop.slice(0, i), loop[i]!];
    const hint = rotated.length === 2 ? " (a task cannot need itself)" : "";
    source.fail(entry.path, `dependency cycle: ${rotated.join(" -> ")}${hint}`);
  }
  const first = byName.get(loop[0]!)!;
  source.fail(first.path, `dependency cycle: ${cycle.join(" -> ")}`);
}
