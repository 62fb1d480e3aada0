import { errorMessage } from "../../core/errors.js";
import { formatBytes } from "../../core/format-bytes.js";
import { CommandFailedError } from "../../core/mapreduce/commands.js";
import {
  type MapDescriptor,
  parseDescriptor,
  type ReduceDescriptor,
} from "../../core/mapreduce/descriptor.js";
import { runMapPhase } from "../../core/mapreduce/map-phase.js";
import { runReducePhase } from "../../core/mapreduce/reduce-phase.js";
import { CliError, ExitCode } from "../cli-error.js";

/**
 * `task mapreduce map|reduce DESCRIPTOR`: one partition of a MapReduce job,
 * as the job's map-N and reduce-N tasks run it (docs/mapreduce.md). SIGTERM
 * stops the commands and removes the attempt's files.
 */
export async function mapReducePhaseCommand(
  phase: "map" | "reduce",
  descriptorText: string,
): Promise<number> {
  let descriptor: MapDescriptor | ReduceDescriptor;
  try {
    descriptor = parseDescriptor(descriptorText);
  } catch (error) {
    throw new CliError(errorMessage(error), ExitCode.Usage);
  }
  if (descriptor.phase !== phase) {
    throw new CliError(`the descriptor is for the ${descriptor.phase} phase, not ${phase}`, ExitCode.Usage);
  }
  const attempt = Number(process.env.TASKFRAME_ATTEMPT ?? 1) || 1;
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => stop.abort(new Error(`stopped by ${signal}`));
  process.once("SIGTERM", onSignal).once("SIGINT", onSignal);
  try {
    const outcome =
      descriptor.phase === "map"
        ? await runMapPhase(descriptor, attempt, stop.signal)
        : await runReducePhase(descriptor, attempt, stop.signal);
    const { records_in, records_out, bytes_out } = outcome.counters;
    console.log(
      `${phase} partition ${descriptor.partition}: ${records_in} records in, ${records_out} out (${formatBytes(bytes_out)})`,
    );
    if (outcome.published === "lost") {
      console.log(
        `another attempt of partition ${descriptor.partition} published first: this attempt's output was discarded`,
      );
    }
    return ExitCode.Ok;
  } catch (error) {
    console.error(`${phase} partition ${descriptor.partition} failed: ${errorMessage(error)}`);
    if (stop.signal.aborted) return 143;
    return error instanceof CommandFailedError && error.exitCode ? error.exitCode : ExitCode.Failed;
  } finally {
    process.off("SIGTERM", onSignal).off("SIGINT", onSignal);
  }
}
