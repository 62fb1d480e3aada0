import { useCallback } from "react";
import { formatBytes } from "../../../core/format-bytes.js";
import { MapReduceState } from "../../../core/gen/taskframe/v1/hub_pb.js";
import { hub } from "../api.js";
import { usePoll } from "../use-poll.js";

const STATES: Record<MapReduceState, { name: string; className: string }> = {
  [MapReduceState.UNSPECIFIED]: { name: "unknown", className: "state-pending" },
  [MapReduceState.RUNNING]: { name: "running", className: "state-running" },
  [MapReduceState.COMMITTING]: { name: "committing", className: "state-running" },
  [MapReduceState.COMMITTED]: { name: "committed", className: "state-succeeded" },
  [MapReduceState.ABORTING]: { name: "aborting", className: "state-failed" },
  [MapReduceState.ABORTED]: { name: "aborted", className: "state-failed" },
};

const count = (n: bigint) => n.toLocaleString("en-US");

/**
 * A MapReduce job's own state beside its run's (docs/mapreduce.md): the job
 * is done once committed or aborted, which can come after the run ends.
 */
export function MapReduceJob({ runId }: { runId: string }) {
  const load = useCallback((signal: AbortSignal) => hub.getRun({ runId }, { signal }), [runId]);
  const job = usePoll(load, 2_000).data?.run?.mapreduce;
  if (!job) return null;
  const state = STATES[job.state];
  const c = job.counters;
  return (
    <div className="mapreduce-job" data-mapreduce-state={state.name}>
      <span className={`badge ${state.className}`}>MapReduce {state.name}</span>
      <span className="hint">
        {job.maps} maps · {job.reducers} reducers → <span className="mono">{job.output}</span>
      </span>
      {c && job.state === MapReduceState.COMMITTED ? (
        <span className="hint">
          map {count(c.mapRecordsIn)} in / {count(c.mapRecordsOut)} out · shuffled{" "}
          {formatBytes(Number(c.shuffleBytes))} · reduce {count(c.reduceRecordsIn)} in /{" "}
          {count(c.reduceRecordsOut)} out · output {formatBytes(Number(c.outputBytes))}
        </span>
      ) : job.detail ? (
        <span className="hint">{job.detail}</span>
      ) : null}
    </div>
  );
}
