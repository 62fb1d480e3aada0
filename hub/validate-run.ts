import { findCycle } from "../core/dag.js";
import { TaskframeError, TaskframeErrorCode } from "../core/errors.js";
import type { RunSpec, TaskSpec } from "../core/gen/taskframe/v1/spec_pb.js";

const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const invalid = (message: string) => new TaskframeError(TaskframeErrorCode.InvalidArgument, message);

/**
 * Checks a submitted run before anything is written. Definitions are checked
 * where they are parsed too (with file positions); this is the hub's own
 * guard, for every client of the API.
 */
export function validateRunSpec(spec: RunSpec): void {
  if (spec.tasks.length === 0) throw invalid("the run has no tasks");
  const names = new Set<string>();
  for (const [index, task] of spec.tasks.entries()) {
    const where = `tasks[${index}]${task.name ? ` (${task.name})` : ""}`;
    if (!TASK_NAME.test(task.name)) {
      throw invalid(
        `${where}: name '${task.name}' is not valid (expected letters, digits, '.', '_' or '-', up to 128)`,
      );
    }
    if (names.has(task.name))
      throw invalid(`${where}: the name '${task.name}' is used by another task of the run`);
    names.add(task.name);
    validateTarget(task, where);
  }
  for (const task of spec.tasks) {
    for (const need of task.needs) {
      if (!names.has(need))
        throw invalid(`task '${task.name}' needs '${need}', which is not a task of this run`);
    }
    for (const name of task.after) {
      if (!names.has(name))
        throw invalid(`task '${task.name}' runs after '${name}', which is not a task of this run`);
    }
  }
  const cycle = findCycle(spec.tasks.map((t) => ({ name: t.name, needs: [...t.needs, ...t.after] })));
  if (cycle) throw invalid(`dependency cycle: ${cycle.join(" -> ")}`);
}

function validateTarget(task: TaskSpec, where: string): void {
  switch (task.target.case) {
    case "exec":
      if (!task.target.value.command) throw invalid(`${where}: exec.command is empty`);
      return;
    case "handler":
      if (!task.target.value.handler) throw invalid(`${where}: handler.handler is empty`);
      return;
    case undefined:
      throw invalid(`${where}: the task has nothing to run (expected an executable or a handler)`);
    default:
      throw invalid(`${where}: unknown target ${(task.target satisfies never as { case: string }).case}`);
  }
}
