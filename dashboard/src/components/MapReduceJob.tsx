import { useCallback } from "react";
import { MapReduceState } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { describeCounters, MAP_REDUCE_STATE_NAMES } from "../../../core/mapreduce/job-text.js";
import { hub } from "../api.js";
import { usePoll } from "../use-poll.js";

const STATE_CLASSES: Record<MapReduceState, string> = {
  [MapReduceState.UNSPECIFIED]: "state-pending",
  [MapReduceState.RUNNING]: "state-running",
  [MapReduceState.COMMITTING]: "state-running",
  [MapReduceState.COMMITTED]: "state-succeeded",
  [MapReduceState.ABORTING]: "state-failed",
  [MapReduceState.ABORTED]: "state-failed",
};

/**
 * A MapReduce job's own state beside its run's (docs/mapreduce.md): the job
 * is done once committed or aborted, which can come after the run ends.
 */
export function MapReduceJob({ runId }: { runId: string }) {
  const load = useCallback((signal: AbortSignal) => hub.getRun({ runId }, { signal }), [runId]);
  const job = usePoll(load, 2_000).data?.run?.mapreduce;
  if (!job) return null;
  const name = MAP_REDUCE_STATE_NAMES[job.state];
  const c = job.counters;
  return (
    <div className="mapreduce-job" data-mapreduce-state={name}>
      <span className={`badge ${STATE_CLASSES[job.state]}`}>MapReduce {name}</span>
      <span className="hint">
        {job.maps} maps · {job.reducers} reducers → <span className="mono">{job.output}</span>
      </span>
      {c && job.state === MapReduceState.COMMITTED ? (
        <span className="hint">{describeCounters(c)}</span>
      ) : job.detail ? (
        <span className="hint">{job.detail}</span>
      ) : null}
    </div>
  );
}
