import { formatBytes } from "../format-bytes.js";
import { type MapReduceCounters, MapReduceState } from "../gen/taskframe/v1/hub_pb.js";

/** A job's state as `task status`, its JSON and the dashboard write it. */
export const MAP_REDUCE_STATE_NAMES: Record<MapReduceState, string> = {
  [MapReduceState.UNSPECIFIED]: "unknown",
  [MapReduceState.RUNNING]: "running",
  [MapReduceState.COMMITTING]: "committing",
  [MapReduceState.COMMITTED]: "committed",
  [MapReduceState.ABORTING]: "aborting",
  [MapReduceState.ABORTED]: "aborted",
};

const count = (n: bigint) => n.toLocaleString("en-US");

/** A committed job's counters in one line: the commit task's log, `task status`, the dashboard. */
export function describeCounters(c: MapReduceCounters): string {
  return (
    `map ${count(c.mapRecordsIn)} records in, ${count(c.mapRecordsOut)} out; ` +
    `shuffled ${formatBytes(Number(c.shuffleBytes))}; ` +
    `reduce ${count(c.reduceRecordsIn)} in, ${count(c.reduceRecordsOut)} out; ` +
    `output ${formatBytes(Number(c.outputBytes))}`
  );
}
