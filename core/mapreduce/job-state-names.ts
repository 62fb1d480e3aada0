import { MapReduceState } from "../gen/taskframe/v1/hub_pb.js";

/** A job's state as `task status`, its JSON and the dashboard write it. */
export const MAP_REDUCE_STATE_NAMES: Record<MapReduceState, string> = {
  [MapReduceState.UNSPECIFIED]: "unknown",
  [MapReduceState.RUNNING]: "running",
  [MapReduceState.COMMITTING]: "committing",
  [MapReduceState.COMMITTED]: "committed",
  [MapReduceState.ABORTING]: "aborting",
  [MapReduceState.ABORTED]: "aborted",
};
