import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { clone } from "@bufbuild/protobuf";
import { DefinitionError, DefinitionErrors, errorMessage } from "../errors.js";
import { type TaskSpec, TaskSpecSchema } from "../gen/taskframe/v1/spec_pb.js";
import type { FieldPath } from "./field-path.js";
import type { YamlSource } from "./yaml-source.js";

/** Compiles a unit file and the units it Requires, transitively (the INI unit compiler's). */
export type UnitClosureLoader = (unitPath: string) => Promise<{ unit: TaskSpec; required: TaskSpec[] }>;

/**
 * The task of a `unit:` node: the unit's own task under the node's name, and the units it requires
 * (named by unit name, with their own needs). Problems inside unit files are reported as they are,
 * in those files.
 */
export async function loadUnitNode(
  source: YamlSource,
  loader: UnitClosureLoader | undefined,
  name: string,
  unitPath: string,
  baseDir: string,
  path: FieldPath,
): Promise<{ task: TaskSpec; required: TaskSpec[] }> {
  if (!loader)
    return source.fail(path, "`unit:` tasks are compiled by the unit compiler, which was not given");
  const file = resolve(baseDir, unitPath);
  try {
    if (!(await stat(file)).isFile()) source.fail(path, `expected a unit file, got the directory ${file}`);
  } catch (error) {
    if (error instanceof DefinitionError) throw error;
    return source.fail(path, `cannot read the unit ${file}: ${errorMessage(error)}`);
  }
  let closure: { unit: TaskSpec; required: TaskSpec[] };
  try {
    closure = await loader(file);
  } catch (error) {
    if (error instanceof DefinitionError || error instanceof DefinitionErrors) throw error;
    return source.fail(path, `cannot load the unit ${unitPath}: ${errorMessage(error)}`);
  }
  const task = clone(TaskSpecSchema, closure.unit);
  task.name = name;
  return { task, required: closure.required };
}

/** The units pulled in by every `unit:` node, each once. */
export class RequiredUnits {
  private readonly byName = new Map<string, { spec: TaskSpec; path: FieldPath }>();

  constructor(private readonly source: YamlSource) {}

  get specs(): TaskSpec[] {
    return [...this.byName.values()].map((entry) => entry.spec);
  }

  add(required: readonly TaskSpec[], path: FieldPath): void {
    for (const spec of required) {
      const earlier = this.byName.get(spec.name);
      if (!earlier) {
        this.byName.set(spec.name, { spec, path });
        continue;
      }
      if (earlier.spec.definedAt !== spec.definedAt) {
        this.source.fail(
          path,
          `two different units are named ${JSON.stringify(spec.name)}: ${spec.definedAt} and ${earlier.spec.definedAt} ` +
            `(the other pulled in at line ${this.source.lineOf(earlier.path)})`,
        );
      }
    }
  }

  /** A required unit may not take the name of a task of the file. */
  checkNames(taken: ReadonlyMap<string, FieldPath>): void {
    for (const [name, { path }] of this.byName) {
      const task = taken.get(name);
      if (!task) continue;
      this.source.fail(
        path,
        `this unit requires the unit ${JSON.stringify(name)}, which has the name of the task at line ${this.source.lineOf(task, "key")}; rename that task`,
      );
    }
  }
}
