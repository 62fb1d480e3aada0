import { describeCounters } from "../../core/mapreduce/job-text.js";
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
  return withHubClient({ ...options, token: options.token ?? taskToken }, async (client) => {
    const { job } = await client.commitMapReduce({ taskToken });
    console.log(`committed to ${job?.output}`);
    if (job?.counters) console.log(describeCounters(job.counters));
    return ExitCode.Ok;
  });
}
