import { basename, dirname, isAbsolute, normalize } from "node:path";
import { findCycleByIndex } from "../core/dag.js";
import { TaskframeError, TaskframeErrorCode } from "../core/errors.js";
import {
  type MapReduceJob,
  MapReduceOutputKind,
  type RunSpec,
  type TaskSpec,
} from "../core/gen/taskframe/v1/spec_pb.js";
import { type Admission, checkRunAdmission, DEFAULT_ADMISSION } from "./admission.js";

const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const invalid = (message: string) => new TaskframeError(TaskframeErrorCode.InvalidArgument, message);

/**
 * A checked run's dependencies by task index, as the hub writes them: task i waits for
 * targets[offsets[i]] .. targets[offsets[i + 1] - 1], without repeats; the first
 * `requires[i]` of them it needs (`needs`), the rest it only runs after (`after`, less what
 * it needs too: the stronger edge wins).
 */
export interface RunGraph {
  readonly tasks: readonly TaskSpec[];
  readonly offsets: Int32Array;
  readonly targets: Int32Array;
  readonly requires: Int32Array;
}

/** Graphs of the specs checked last, for the insert that follows (keyed by the spec object). */
const checked = new WeakMap<RunSpec, RunGraph>();

/**
 * Checks a submitted run before anything is written. Definitions are checked
 * where they are parsed too (with file positions); this is the hub's own
 * guard, for every client of the API. `admission`: the pools' policies and the size limits
 * (admission.ts); forbidden env and the default sizes apply without one.
 */
export function validateRunSpec(spec: RunSpec, admission: Admission = DEFAULT_ADMISSION): void {
  checked.set(spec, buildRunGraph(spec));
  checkRunAdmission(spec, admission);
  if (spec.mapreduce) validateMapReduceJob(spec.mapreduce, spec.tasks);
}

/** As the compiler names jobs: the hub removes a directory by this name, and nothing else. */
const JOB_ID = /^mr-[0-9a-f]{16}$/;

/** The hub removes the staging directory and replaces the output: both must be exactly what they claim. */
function validateMapReduceJob(job: MapReduceJob, tasks: readonly TaskSpec[]): void {
  const exactPath = (path: string) => isAbsolute(path) && normalize(path) === path && dirname(path) !== path;
  if (!JOB_ID.test(job.jobId))
    throw invalid(`mapreduce.job_id '${job.jobId}' is not valid (expected mr- and 16 hex digits)`);
  if (!exactPath(job.stagingDir) || basename(job.stagingDir) !== job.jobId) {
    throw invalid(
      `mapreduce.staging_dir '${job.stagingDir}' is not valid: expected a normalized absolute path ending in the job id '${job.jobId}'`,
    );
  }
  if (!exactPath(job.output)) {
    throw invalid(
      `mapreduce.output '${job.output}' is not valid: expected a normalized absolute path below /`,
    );
  }
  const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);
  if (within(job.output, job.stagingDir) || within(job.stagingDir, job.output)) {
    throw invalid(`mapreduce.output '${job.output}' and the staging directory '${job.stagingDir}' overlap`);
  }
  if (![MapReduceOutputKind.FILE, MapReduceOutputKind.DIRECTORY].includes(job.outputKind)) {
    throw invalid("mapreduce.output_kind must be FILE or DIRECTORY");
  }
  if (job.maps < 1 || job.reducers < 1) throw invalid("mapreduce: expected at least one map and one reducer");
  if (!tasks.some((task) => task.name === "commit")) {
    throw invalid("mapreduce: the run has no `commit` task, so the job could never commit");
  }
}

/**
 * The run's graph: the one `validateRunSpec` built for this spec, if its tasks are still the
 * same array of the same length, else checked and built now (throws as `validateRunSpec` does).
 */
export function runGraphOf(spec: RunSpec): RunGraph {
  const graph = checked.get(spec);
  if (graph && graph.tasks === spec.tasks && graph.offsets.length === spec.tasks.length + 1) return graph;
  return buildRunGraph(spec);
}

/**
 * One pass over the names, one over the dependencies, then a depth-first search for a cycle,
 * all by index: a million-task run hashes each name once and allocates per edge nothing but
 * its slot in an Int32Array.
 */
function buildRunGraph(spec: RunSpec): RunGraph {
  const { tasks } = spec;
  if (tasks.length === 0) throw invalid("the run has no tasks");
  const index = new Map<string, number>();
  let edgeBound = 0;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!;
    if (!TASK_NAME.test(task.name)) {
      throw invalid(
        `${where(task, i)}: name '${task.name}' is not valid (expected letters, digits, '.', '_' or '-', up to 128)`,
      );
    }
    index.set(task.name, i);
    if (index.size === i)
      throw invalid(`${where(task, i)}: the name '${task.name}' is used by another task of the run`);
    validateTarget(task, i);
    edgeBound += task.needs.length + task.after.length;
  }
  const offsets = new Int32Array(tasks.length + 1);
  const requires = new Int32Array(tasks.length);
  let targets = new Int32Array(edgeBound);
  // lastSeenBy[j] === i + 1: task i already waits for task j
  const lastSeenBy = new Int32Array(tasks.length);
  let edges = 0;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!;
    const stamp = i + 1;
    for (const need of task.needs) {
      const target = index.get(need);
      if (target === undefined)
        throw invalid(`task '${task.name}' needs '${need}', which is not a task of this run`);
      if (lastSeenBy[target] === stamp) continue;
      lastSeenBy[target] = stamp;
      targets[edges++] = target;
    }
    requires[i] = edges - offsets[i]!;
    for (const name of task.after) {
      const target = index.get(name);
      if (target === undefined)
        throw invalid(`task '${task.name}' runs after '${name}', which is not a task of this run`);
      if (lastSeenBy[target] === stamp) continue;
      lastSeenBy[target] = stamp;
      targets[edges++] = target;
    }
    offsets[i + 1] = edges;
  }
  if (edges < targets.length) targets = targets.slice(0, edges);
  const cycle = findCycleByIndex(tasks.length, offsets, targets, (node) => tasks[node]!.name);
  if (cycle) throw invalid(`dependency cycle: ${cycle.join(" -> ")}`);
  return { tasks, offsets, targets, requires };
}

const where = (task: TaskSpec, index: number) => `tasks[${index}]${task.name ? ` (${task.name})` : ""}`;

function validateTarget(task: TaskSpec, index: number): void {
  switch (task.target.case) {
    case "exec":
      if (!task.target.value.command) throw invalid(`${where(task, index)}: exec.command is empty`);
      return;
    case "handler":
      if (!task.target.value.handler) throw invalid(`${where(task, index)}: handler.handler is empty`);
      return;
    case undefined:
      throw invalid(
        `${where(task, index)}: the task has nothing to run (expected an executable or a handler)`,
      );
    default:
      throw invalid(
        `${where(task, index)}: unknown target ${(task.target satisfies never as { case: string }).case}`,
      );
  }
}
