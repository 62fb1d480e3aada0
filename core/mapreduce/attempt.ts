import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  COUNTERS,
  doneDir,
  openAttemptDir,
  type Phase,
  type PhaseCounters,
  publishAttempt,
} from "./staging.js";

export interface AttemptOutcome {
  counters: PhaseCounters;
  /** `lost`: another attempt of the partition published first; this one's files are gone. */
  published: "won" | "lost";
}

/**
 * Runs `work` in a fresh attempt directory of the partition and publishes
 * it; on any failure the directory is removed, so a failed attempt leaves nothing.
 */
export async function inAttemptDir(
  where: { staging: string; phase: Phase; partition: number; attempt: number },
  work: (dir: string) => Promise<PhaseCounters>,
): Promise<AttemptOutcome> {
  const dir = await openAttemptDir(where.staging, where.phase, where.partition, where.attempt);
  try {
    const counters = await work(dir);
    await writeFile(join(dir, COUNTERS), JSON.stringify(counters));
    const published = await publishAttempt(dir, doneDir(where.staging, where.phase, where.partition));
    return { counters, published };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
