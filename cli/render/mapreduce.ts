import pc from "picocolors";
import { MapReduceState, type MapReduceStatus, type Task } from "../../core/gen/taskframe/v1/hub_pb.js";
import { describeCounters, MAP_REDUCE_STATE_NAMES } from "../../core/mapreduce/job-text.js";
import { TaskState } from "../../core/states.js";

export const mapReduceStateName = (state: MapReduceState): string =>
  MAP_REDUCE_STATE_NAMES[state] ?? "unknown";

/** The job's lines under `task status`'s run header: state, phases, counters. */
export function mapReduceLines(job: MapReduceStatus, tasks: readonly Task[]): string[] {
  const state = mapReduceStateName(job.state);
  const colour =
    job.state === MapReduceState.COMMITTED
      ? pc.green
      : job.state === MapReduceState.ABORTED
        ? pc.red
        : pc.yellow;
  const lines = [
    `  MapReduce job ${colour(state)}: ${job.maps} map(s), ${job.reducers} reducer(s) → ${job.output}`,
  ];
  const phase = (prefix: string) => {
    const of = tasks.filter((t) => t.name === prefix || t.name.startsWith(`${prefix}-`));
    const done = of.filter((t) => t.state === TaskState.SUCCEEDED).length;
    return `${prefix} ${done}/${of.length}`;
  };
  if (tasks.length > 0)
    lines.push(`  phases: ${phase("map")} succeeded, ${phase("reduce")}, ${phase("commit")}`);
  const c = job.counters;
  if (c && job.state === MapReduceState.COMMITTED) lines.push(`  ${describeCounters(c)}`);
  if (job.detail && job.state !== MapReduceState.COMMITTED) lines.push(`  ${pc.dim(job.detail)}`);
  return lines;
}

export function mapReduceJson(job: MapReduceStatus) {
  const c = job.counters;
  return {
    state: mapReduceStateName(job.state),
    output: job.output,
    staging_dir: job.stagingDir,
    maps: job.maps,
    reducers: job.reducers,
    detail: job.detail,
    counters: c && {
      map_records_in: Number(c.mapRecordsIn),
      map_records_out: Number(c.mapRecordsOut),
      shuffle_bytes: Number(c.shuffleBytes),
      reduce_records_in: Number(c.reduceRecordsIn),
      reduce_records_out: Number(c.reduceRecordsOut),
      output_bytes: Number(c.outputBytes),
    },
  };
}
