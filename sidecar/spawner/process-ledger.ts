import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A directory with one file per running task process group, written by the
 * spawner: if the sidecar and its spawner are killed outright, the next
 * sidecar on the host finds what they left running and stops it. A file
 * records the process's start time too, so that a reused pid is never killed.
 */
export class ProcessLedger {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  record(pid: number): void {
    const startTime = processStartTime(pid);
    if (startTime !== undefined) writeFileSync(join(this.dir, String(pid)), startTime);
  }

  forget(pid: number): void {
    rmSync(join(this.dir, String(pid)), { force: true });
  }
}

/** Kills (SIGKILL, whole group) every process group a previous spawner recorded and that still runs. */
export function killLeftovers(dir: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    const path = join(dir, entry);
    const recorded = readFileSync(path, "utf8").trim();
    if (Number.isInteger(pid) && pid > 1 && processStartTime(pid) === recorded) {
      try {
        process.kill(-pid, "SIGKILL");
        killed.push(pid);
      } catch {
        // already gone
      }
    }
    rmSync(path, { force: true });
  }
  return killed;
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
