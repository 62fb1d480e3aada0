import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";

/*
 * The staging directory of a MapReduce job (docs/mapreduce.md, "Staging
 * layout"): attempts write in directories of their own and publish by
 * renaming them to `done`, which fails once another attempt did.
 */

export type Phase = "map" | "reduce";

export const partitionDir = (staging: string, phase: Phase, partition: number): string =>
  join(staging, phase, String(partition));

export const doneDir = (staging: string, phase: Phase, partition: number): string =>
  join(partitionDir(staging, phase, partition), "done");

/** A map's records for reduce partition `reducer`. */
export const recordsFile = (reducer: number): string => `r-${reducer}`;
export const REDUCE_OUTPUT = "part";
export const COUNTERS = "counters.json";

/** What an attempt counted: records read and written, bytes written. */
export interface PhaseCounters {
  records_in: number;
  records_out: number;
  bytes_out: number;
}

/** The job's directories, made when the job is submitted; every task account may write in them. */
export async function makeStaging(staging: string, maps: number, reducers: number): Promise<void> {
  await mkdir(staging, { recursive: true });
  const dirs = [staging, join(staging, "map"), join(staging, "reduce")];
  for (let p = 0; p < maps; p++) dirs.push(partitionDir(staging, "map", p));
  for (let r = 0; r < reducers; r++) dirs.push(partitionDir(staging, "reduce", r));
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true });
    // tasks may run as another account (the jail's); the hub removes all of it at the end
    await chmod(dir, 0o777);
  }
}

export class StagingGoneError extends Error {
  constructor(staging: string) {
    super(
      `the job's staging directory ${staging} is gone: the job was aborted (or committed) without this attempt`,
    );
  }
}

/** A fresh directory for one attempt of a partition. Never re-creates a staging directory that was removed. */
export async function openAttemptDir(staging: string, phase: Phase, partition: number, attempt: number) {
  const dir = join(
    partitionDir(staging, phase, partition),
    `attempt-${attempt}-${randomBytes(6).toString("hex")}`,
  );
  try {
    await mkdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new StagingGoneError(staging);
    throw error;
  }
  return dir;
}

/**
 * Makes an attempt's output the partition's, unless another attempt's already
 * is: a directory rename onto a non-empty directory fails. The loser removes
 * its own directory; map and reduce are deterministic, so either output is right.
 */
export async function publishAttempt(attemptDir: string, done: string): Promise<"won" | "lost"> {
  try {
    await rename(attemptDir, done);
    return "won";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EEXIST" && code !== "ENOTEMPTY") throw error;
    await rm(attemptDir, { recursive: true, force: true });
    return "lost";
  }
}

export async function readCounters(dir: string): Promise<PhaseCounters> {
  const parsed = JSON.parse(await readFile(join(dir, COUNTERS), "utf8")) as Partial<PhaseCounters>;
  return {
    records_in: Number(parsed.records_in ?? 0),
    records_out: Number(parsed.records_out ?? 0),
    bytes_out: Number(parsed.bytes_out ?? 0),
  };
}
