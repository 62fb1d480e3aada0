import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { access, copyFile, link, mkdir, open, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { failpoint } from "../../core/failpoints.js";
import { MapReduceOutputKind } from "../../core/gen/taskframe/v1/spec_pb.js";
import { doneDir, REDUCE_OUTPUT, readCounters } from "../../core/mapreduce/staging.js";
import type { MapReduceJobRow } from "../store/queries/mapreduce-jobs.js";

type JobFiles = Pick<MapReduceJobRow, "jobId" | "stagingDir" | "output" | "outputKind" | "maps" | "reducers">;

export interface JobCounters extends Record<string, number> {
  map_records_in: number;
  map_records_out: number;
  shuffle_bytes: number;
  reduce_records_in: number;
  reduce_records_out: number;
  output_bytes: number;
}

/** Whether the job's staging directory is still there: a commit or an abort has not finished with it. */
export const hasStaging = (job: Pick<JobFiles, "stagingDir">): Promise<boolean> =>
  stat(job.stagingDir).then(
    () => true,
    () => false,
  );

/** Where a commit assembles the output, beside it (same filesystem, so the last step is a rename). */
const commitPrefix = (job: JobFiles) => `.${basename(job.output)}.taskframe-commit-${job.jobId}`;

/**
 * Makes a job's output visible. Every step can run again, by this hub or
 * another, after a crash anywhere: the output is built beside its place and
 * renamed onto it, and the staging directory goes only after that rename, so
 * "staging gone" means "committed". Returns the counters, or undefined when
 * an earlier commit had finished.
 */
export async function commitOutput(job: JobFiles): Promise<JobCounters | undefined> {
  if (!(await hasStaging(job))) return undefined;
  const counters = await sumCounters(job);
  failpoint("hub.mapreduce.commit.before_output");
  const building = join(dirname(job.output), `${commitPrefix(job)}.${randomBytes(6).toString("hex")}`);
  if (job.outputKind === MapReduceOutputKind.DIRECTORY) await replaceDirectory(job, building);
  else await replaceFile(job, building);
  failpoint("hub.mapreduce.commit.after_output");
  await removeStaging(job);
  return counters;
}

/** Removes everything a job staged (its staging directory, a commit's leftovers), never the output. */
export async function removeStaging(job: JobFiles): Promise<void> {
  // renamed first, in one step: a half-removed staging directory would read as a job not yet committed
  const trash = `${job.stagingDir}.removing`;
  await rm(trash, { recursive: true, force: true, maxRetries: 5 });
  await rename(job.stagingDir, trash).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
  await rm(trash, { recursive: true, force: true, maxRetries: 5 });
  // the work directory goes with its last job
  await rmdir(dirname(job.stagingDir)).catch(() => {});
  const parent = dirname(job.output);
  const leftovers = await readdir(parent).catch(() => [] as string[]);
  for (const name of leftovers.filter((n) => n.startsWith(commitPrefix(job)))) {
    await rm(join(parent, name), { recursive: true, force: true });
  }
}

async function replaceFile(job: JobFiles, building: string): Promise<void> {
  await mkdir(dirname(job.output), { recursive: true });
  const out = createWriteStream(building);
  const opened = new Promise((resolve, reject) => out.once("open", resolve).once("error", reject));
  await opened;
  for (let r = 0; r < job.reducers; r++) {
    await pipeline(createReadStream(join(doneDir(job.stagingDir, "reduce", r), REDUCE_OUTPUT)), out, {
      end: false,
    });
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  await syncFile(building);
  await rename(building, job.output);
}

async function replaceDirectory(job: JobFiles, building: string): Promise<void> {
  await mkdir(building, { recursive: true });
  for (let r = 0; r < job.reducers; r++) {
    const part = join(doneDir(job.stagingDir, "reduce", r), REDUCE_OUTPUT);
    const target = join(building, `part-${String(r).padStart(5, "0")}`);
    await link(part, target).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EXDEV" || error.code === "EPERM") return copyFile(part, target);
      throw error;
    });
  }
  // a directory cannot be renamed onto a non-empty one: the old output steps aside first
  const aside = `${building}.old`;
  const hadOutput = await rename(job.output, aside).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return false;
      throw error;
    },
  );
  await rename(building, job.output);
  if (hadOutput) await rm(aside, { recursive: true, force: true });
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function sumCounters(job: JobFiles): Promise<JobCounters> {
  const counters: JobCounters = {
    map_records_in: 0,
    map_records_out: 0,
    shuffle_bytes: 0,
    reduce_records_in: 0,
    reduce_records_out: 0,
    output_bytes: 0,
  };
  for (let p = 0; p < job.maps; p++) {
    const map = await readCounters(doneDir(job.stagingDir, "map", p)).catch(() => undefined);
    if (!map) continue; // the reduces read it already; counters are informative
    counters.map_records_in += map.records_in;
    counters.map_records_out += map.records_out;
    counters.shuffle_bytes += map.bytes_out;
  }
  for (let r = 0; r < job.reducers; r++) {
    const dir = doneDir(job.stagingDir, "reduce", r);
    await access(join(dir, REDUCE_OUTPUT)).catch(() => {
      throw new Error(`reduce partition ${r} has no output in ${dir}: the job cannot commit yet`);
    });
    const reduce = await readCounters(dir).catch(() => undefined);
    if (!reduce) continue;
    counters.reduce_records_in += reduce.records_in;
    counters.reduce_records_out += reduce.records_out;
    counters.output_bytes += reduce.bytes_out;
  }
  return counters;
}
