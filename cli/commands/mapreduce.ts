import { formatBytes } from "../../core/format-bytes.js";
import { CliError, ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";

/** `task mapreduce commit`: the job's commit task; the hub does the commit, fenced by this attempt's token. */
export async function mapReduceCommitCommand(options: StoreOptions): Promise<number> {
  const taskToken = process.env.TASKFRAME_TASK_TOKEN ?? "";
  if (!taskToken) {
    throw new CliError(
      "task mapreduce commit runs as a MapReduce job's commit task: TASKFRAME_TASK_TOKEN is not set",
      ExitCode.Usage,
    );
  }
  return withHubClient(options, async (client) => {
    const { job } = await client.commitMapReduce({ taskToken });
    const c = job?.counters;
    console.log(`committed to ${job?.output}`);
    if (c) {
      console.log(
        `map: ${c.mapRecordsIn} records in, ${c.mapRecordsOut} out; shuffled ${formatBytes(Number(c.shuffleBytes))}; ` +
          `reduce: ${c.reduceRecordsIn} records in, ${c.reduceRecordsOut} out; output ${formatBytes(Number(c.outputBytes))}`,
      );
    }
    return ExitCode.Ok;
  });
}
