import { readFile } from "node:fs/promises";
import { dirname, parse, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { z } from "zod";
import { DefinitionError, DefinitionErrors, errorMessage } from "../errors.js";
import { type RunSpec, RunSpecSchema, type TaskSpec } from "../gen/taskframe/v1/spec_pb.js";
import { describeValue, type FieldPath, formatPath, isPlainMap } from "./field-path.js";
import { compileMapReduce } from "./mapreduce-pipeline.js";
import { type Draft, edgeEntries, rejectCycles, resolveEdges } from "./pipeline-edges.js";
import { readForEachItems } from "./pipeline-for-each.js";
import { PIPELINE_KEY_HINTS, SCHEDULE_KEY_HINTS, TASK_KEY_HINTS } from "./pipeline-hints.js";
import { readParams } from "./pipeline-params.js";
import { ProblemList } from "./pipeline-problems.js";
import {
  type DefaultSettings,
  defaultsSchema,
  type PipelineSchedule,
  pipelineSchema,
  scheduleSchema,
  TASK_NAME,
  taskNameProblem,
} from "./pipeline-schema.js";
import { type Scope, Substituter } from "./pipeline-scope.js";
import { readSteps, type StepTask, sequenceNeeds, stepTasks } from "./pipeline-steps.js";
import { definedAt, handlerTaskSpec, runTaskSpec, type SpecContext } from "./pipeline-task-spec.js";
import {
  derivedName,
  misplacedExpressions,
  readTaskNode,
  SUBSTITUTED_DEFAULTS,
  type TaskNode,
} from "./pipeline-tasks.js";
import { loadUnitNode, RequiredUnits, type UnitClosureLoader } from "./pipeline-units.js";
import { checkMap } from "./schema-check.js";
import { NameAllocator } from "./task-names.js";
import { parseYamlSource, type YamlSource } from "./yaml-source.js";

export type { PipelineSchedule } from "./pipeline-schema.js";
export type { UnitClosureLoader } from "./pipeline-units.js";

const NO_TASKS = "the pipeline defines no tasks: expected a `tasks:` map or a `steps:` list";

export interface PipelineOptions {
  /** Values of `${{ params.NAME }}` (`--param NAME=VALUE`). */
  params?: Readonly<Record<string, string>>;
  /** What `${{ env.NAME }}` reads: the environment of the `task` command. Default: none. */
  env?: Readonly<Record<string, string | undefined>>;
  /** A given param that the file neither declares nor uses is an error unless this is false. */
  rejectUnknownParams?: boolean;
  /** Return a run whose dependencies form a cycle instead of failing (`task graph` shows it). */
  allowCycles?: boolean;
  /** Compiles the units of `unit:` nodes; without it, `unit:` is an error. */
  loadUnitClosure?: UnitClosureLoader;
}

/** A compiled pipeline: its run, and its `schedule:` if it has one. */
export interface CompiledPipeline {
  run: RunSpec;
  schedule?: PipelineSchedule;
}

/** Reads and compiles a YAML pipeline file; every problem is a DefinitionError (several: DefinitionErrors). */
export async function loadPipelineFile(path: string, options: PipelineOptions = {}): Promise<RunSpec> {
  return (await loadPipeline(path, options)).run;
}

/** As loadPipelineFile, with the pipeline's `schedule:`. */
export async function loadPipeline(path: string, options: PipelineOptions = {}): Promise<CompiledPipeline> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new DefinitionError({ file: path }, `cannot read pipeline file: ${errorMessage(cause)}`, { cause });
  }
  return compilePipelineDefinition(text, path, options);
}

/**
 * Compiles the text of a YAML pipeline into a RunSpec. `file` is used for messages, the default
 * run name and `source`; relative paths resolve against its directory. Problems are collected over
 * the whole file and thrown together, in file order.
 */
export async function compilePipeline(
  text: string,
  file: string,
  options: PipelineOptions = {},
): Promise<RunSpec> {
  return (await compilePipelineDefinition(text, file, options)).run;
}

/** As compilePipeline, with the pipeline's `schedule:` (checked with the rest of the file). */
export async function compilePipelineDefinition(
  text: string,
  file: string,
  options: PipelineOptions = {},
): Promise<CompiledPipeline> {
  const source = parseYamlSource(text, file);
  const problems = new ProblemList(file);
  const compiler = new PipelineCompiler(source, problems, options);
  const run = await problems.collect(() => compiler.compile());
  return compiler.schedule === undefined ? { run } : { run, schedule: compiler.schedule };
}

type PipelineFields = z.output<typeof pipelineSchema>;

/** A task node with the name it goes by and where that name is written. */
interface Named {
  node: TaskNode;
  draft: Draft;
}

class PipelineCompiler {
  private readonly baseDir: string;
  private readonly required: RequiredUnits;
  /** Every task name and where it is written, to report the second use of a name. */
  private readonly taken = new Map<string, FieldPath>();
  /** The task names written in the file (or derived for unnamed steps), in file order. */
  private readonly declared: string[] = [];
  /** Names of tasks that could not be compiled: needs on them are not reported again. */
  private readonly broken = new Set<string>();
  /** The pipeline's `schedule:`, once read. */
  schedule: PipelineSchedule | undefined;

  constructor(
    private readonly source: YamlSource,
    private readonly problems: ProblemList,
    private readonly options: PipelineOptions,
  ) {
    this.baseDir = dirname(resolve(source.file));
    this.required = new RequiredUnits(source);
  }

  async compile(): Promise<RunSpec> {
    const { source, problems } = this;
    const top = source.value;
    if (top === null || top === undefined) return source.fail([], NO_TASKS);
    if (!isPlainMap(top)) {
      return source.fail(
        [],
        `expected a map with \`tasks:\` and/or \`steps:\` at the top level, got ${describeValue(top)}`,
      );
    }
    const pipeline = this.readTop(top);
    this.schedule = this.readSchedule(pipeline.schedule);
    const scope: Scope = {
      env: this.options.env ?? {},
      params: readParams(source, pipeline.params, this.options.params ?? {}, problems, {
        rejectUnknown: this.options.rejectUnknownParams ?? true,
      }),
    };
    const topLevel = new Substituter(source, scope);
    const name = topLevel.optional(pipeline.name, ["name"]) ?? parse(source.file).name;
    const labels = topLevel.map(pipeline.labels, ["labels"]) ?? {};
    problems.attempt(() => topLevel.check());
    const context: SpecContext = {
      source,
      baseDir: this.baseDir,
      defaults: this.readDefaults(pipeline, topLevel),
    };

    if (pipeline.mapreduce !== undefined) {
      if (pipeline.schedule !== undefined) {
        source.fail(
          ["schedule"],
          "a MapReduce job cannot be scheduled yet: remove `schedule:` and submit each run",
        );
      }
      if (pipeline.tasks !== undefined || pipeline.steps !== undefined) {
        source.fail(
          ["mapreduce"],
          "a MapReduce pipeline has no `tasks:` or `steps:`: its tasks are map-N, reduce-N and commit",
        );
      }
      const { tasks, job } = await compileMapReduce(context, pipeline.mapreduce, topLevel);
      return create(RunSpecSchema, { name, source: source.file, labels, tasks, mapreduce: job });
    }
    const named = [...this.readTaskMap(pipeline.tasks), ...this.readStepNodes(pipeline.steps)];
    if (named.length === 0 && problems.count === 0) return source.fail([], NO_TASKS);
    for (const { node, draft } of named) await this.expand(node, draft, context, scope);
    problems.attempt(() => this.required.checkNames(this.taken));

    const drafts = named.map(({ draft }) => draft);
    const others = this.required.specs;
    resolveEdges(source, drafts, others, this.broken, problems, this.declared);
    const tasks = [...drafts.flatMap((draft) => draft.specs), ...others];
    if (problems.count > 0) return create(RunSpecSchema, {});
    if (tasks.length === 0)
      return source.fail([], "the pipeline makes no tasks: every `for_each:` list is empty");
    if (!this.options.allowCycles) rejectCycles(source, drafts, tasks);
    return create(RunSpecSchema, { name, source: source.file, labels, tasks });
  }

  /** The top-level keys; when some are wrong the others are still read, to find their problems too. */
  private readTop(top: Record<string, unknown>): Partial<PipelineFields> {
    const checked = this.problems.attempt(() =>
      checkMap(this.source, pipelineSchema, top, [], PIPELINE_KEY_HINTS),
    );
    if (checked) return checked;
    const field = <S extends z.ZodType>(schema: S, value: unknown): z.output<S> | undefined => {
      const result = schema.safeParse(value);
      return result.success ? result.data : undefined;
    };
    const { shape } = pipelineSchema;
    return {
      name: field(shape.name, top.name),
      labels: field(shape.labels, top.labels),
      params: top.params,
      defaults: top.defaults,
      tasks: field(shape.tasks, top.tasks),
      steps: field(shape.steps, top.steps),
      schedule: top.schedule,
      mapreduce: top.mapreduce,
    };
  }

  /** `schedule:`, checked on its own, so that its problems and hints are its own. */
  private readSchedule(raw: unknown): PipelineSchedule | undefined {
    if (raw === undefined) return undefined;
    const { source, problems } = this;
    return problems.attempt(() => {
      if (isPlainMap(raw)) {
        const misplaced = Object.keys(raw).flatMap((key) =>
          typeof raw[key] === "string" && raw[key].includes("${{")
            ? [
                source.problem(
                  ["schedule", key],
                  `\${{ ... }} is not substituted in \`schedule:\`: write the value itself`,
                ),
              ]
            : [],
        );
        DefinitionErrors.throwIfAny(misplaced);
      }
      return checkMap(source, scheduleSchema, raw, ["schedule"], SCHEDULE_KEY_HINTS);
    });
  }

  private readDefaults(pipeline: Partial<PipelineFields>, sub: Substituter): DefaultSettings {
    const raw = pipeline.defaults;
    if (raw === undefined || raw === null) return {};
    const { source, problems } = this;
    const read = problems.attempt(() => {
      if (isPlainMap(raw)) {
        const misplaced = misplacedExpressions(raw, ["defaults"], SUBSTITUTED_DEFAULTS, "`defaults:`");
        for (const problem of misplaced) problems.add(source.problem(...problem));
      }
      const fields = checkMap(source, defaultsSchema, raw, ["defaults"], TASK_KEY_HINTS);
      return {
        ...fields,
        env: sub.map(fields.env, ["defaults", "env"]),
        cwd: sub.optional(fields.cwd, ["defaults", "cwd"]),
        user: sub.optional(fields.user, ["defaults", "user"]),
        group: sub.optional(fields.group, ["defaults", "group"]),
        labels: sub.map(fields.labels, ["defaults", "labels"]),
        pool: sub.optional(fields.pool, ["defaults", "pool"]),
      };
    });
    problems.attempt(() => sub.check());
    return read ?? {};
  }

  private readTaskMap(tasks: Record<string, unknown> | undefined): Named[] {
    if (tasks === undefined) return [];
    const { source, problems } = this;
    return source.mapKeys(["tasks"]).flatMap((name) => {
      const path = ["tasks", name];
      this.taken.set(name, path);
      this.declared.push(name);
      const node = problems.attempt(() => {
        if (!TASK_NAME.test(name)) source.fail(path, taskNameProblem(name), "key");
        const raw = tasks[name];
        if (!isPlainMap(raw)) {
          return source.fail(
            path,
            `expected a task: a map with \`run:\`, \`handler:\` or \`unit:\`, got ${describeValue(raw)}`,
          );
        }
        return readTaskNode(source, raw, path, "tasks", name);
      });
      if (!node) {
        this.broken.add(name);
        return [];
      }
      return [{ node, draft: draftOf(node, name) }];
    });
  }

  /**
   * Names the step tasks (explicit names must be unique across the file; the rest are derived from
   * the command and never collide) and adds the needs that sequencing implies.
   */
  private readStepNodes(steps: readonly unknown[] | undefined): Named[] {
    if (steps === undefined) return [];
    const { source, problems } = this;
    const root = readSteps(source, steps, ["steps"], problems);
    const tasks = stepTasks(root);
    const nodes = new Map<StepTask, TaskNode>();
    for (const task of tasks) {
      const explicit = typeof task.raw === "string" ? undefined : task.raw.name;
      const name = typeof explicit === "string" ? explicit : undefined;
      if (name !== undefined) this.declared.push(name);
      const node = problems.attempt(() => {
        if (name !== undefined) this.claim(name, [...task.path, "name"]);
        return readTaskNode(source, task.raw, task.path, "steps", name);
      });
      if (node) nodes.set(task, node);
      else if (name !== undefined) this.broken.add(name);
    }
    const allocator = new NameAllocator(new Set(this.taken.keys()));
    const drafts = new Map<StepTask, Draft>();
    const named: Named[] = [];
    for (const task of tasks) {
      const node = nodes.get(task);
      if (!node) continue;
      const name = node.explicitName ?? allocator.allocate(derivedName(node.template));
      if (node.explicitName === undefined) {
        this.taken.set(name, task.path);
        this.declared.push(name);
      }
      const draft = draftOf(node, name);
      drafts.set(task, draft);
      named.push({ node, draft });
    }
    for (const [task, before] of sequenceNeeds(root)) {
      const draft = drafts.get(task);
      if (draft) draft.sequence = before.flatMap((step) => drafts.get(step) ?? []);
    }
    return named;
  }

  /** Records a name written in the file; a second use is an error pointing at the first. */
  private claim(name: string, path: FieldPath): void {
    const earlier = this.taken.get(name);
    if (earlier) {
      const anchor = earlier[0] === "tasks" ? "key" : "value";
      const line = this.source.lineOf(earlier, anchor);
      const where = line === undefined ? formatPath(earlier) : `line ${line} (${formatPath(earlier)})`;
      this.source.fail(path, `duplicate task name "${name}": already used at ${where}`);
    }
    this.taken.set(name, path);
  }

  /** Makes the node's tasks: one, one per for_each item, or a unit's task plus the units it requires. */
  private async expand(node: TaskNode, draft: Draft, context: SpecContext, scope: Scope): Promise<void> {
    const { source, problems } = this;
    const { template, path } = node;
    const anchor = path[0] === "tasks" ? "key" : "value";
    const at = definedAt(source, path, anchor);
    const plain = new Substituter(source, scope);
    if (template.kind === "unit") {
      await problems.attemptAsync(async () => {
        const unitPath = plain.text(template.fields.unit, [...path, "unit"]);
        plain.check();
        const { task, required } = await loadUnitNode(
          source,
          this.options.loadUnitClosure,
          draft.name,
          unitPath,
          this.baseDir,
          [...path, "unit"],
        );
        this.required.add(required, [...path, "unit"]);
        draft.specs.push(task);
      });
      return;
    }
    const build = (name: string, sub: Substituter): TaskSpec => {
      const spec =
        template.kind === "run"
          ? runTaskSpec(context, name, template.fields, path, sub)
          : handlerTaskSpec(context, name, template.fields, template.hasInput, path, sub);
      spec.definedAt = at;
      return spec;
    };
    const forEach = template.fields.for_each;
    if (forEach === undefined) {
      const spec = problems.attempt(() => build(draft.name, plain));
      if (spec) draft.specs.push(spec);
      return;
    }
    const items = await problems.attemptAsync(() =>
      readForEachItems(source, forEach, [...path, "for_each"], this.baseDir, plain),
    );
    if (!items) return;
    for (const [index, item] of items.entries()) {
      const spec = problems.attempt(() => {
        const name = `${draft.name}-${item.suffix}`;
        if (!TASK_NAME.test(name))
          source.fail(item.path, `this item makes the task name: ${taskNameProblem(name)}`);
        const earlier = this.taken.get(name);
        if (earlier) {
          const line = source.lineOf(earlier, earlier[0] === "tasks" ? "key" : "value");
          source.fail(
            item.path,
            `this item makes a task named "${name}", a name already used at line ${line}`,
          );
        }
        this.taken.set(name, item.path);
        return build(name, new Substituter(source, scope, { value: item.value, index }));
      });
      if (spec) draft.specs.push(spec);
    }
  }
}

function draftOf(node: TaskNode, name: string): Draft {
  const { fields } = node.template;
  return {
    name,
    path: node.path,
    needs: edgeEntries(fields.needs, [...node.path, "needs"]),
    after: edgeEntries(fields.after, [...node.path, "after"]),
    sequence: [],
    continueOnError: fields.continue_on_error ?? false,
    specs: [],
  };
}
