import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** What /proc says about a process at one moment (Linux). */
export interface ProcSample {
  pid: number;
  atMs: number;
  /** VmRSS: resident now. */
  rssBytes: number;
  /** RssAnon: resident and private (heap, stacks); less shared files and shared memory. */
  rssAnonBytes: number;
  /** VmHWM: the peak of VmRSS since the process started. */
  hwmBytes: number;
  /** utime + stime in clock ticks. */
  cpuTicks: number;
}

const kb = (status: string, field: string) => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return match ? Number(match[1]) * 1024 : 0;
};

/** undefined when the process is gone (or this is not Linux). */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command name, which is in parentheses and may hold spaces: state is field 3
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      pid,
      atMs: performance.now(),
      rssBytes: kb(status, "VmRSS"),
      rssAnonBytes: kb(status, "RssAnon"),
      hwmBytes: kb(status, "VmHWM"),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
    };
  } catch {
    return undefined;
  }
}

/** CPU used between two samples of one process, in seconds and as a % of one core. */
export function cpuBetween(from: ProcSample, to: ProcSample): { seconds: number; percent: number } {
  const seconds = (to.cpuTicks - from.cpuTicks) / TICKS_PER_SECOND;
  return { seconds, percent: (100 * seconds) / ((to.atMs - from.atMs) / 1000) };
}

/** Pids whose command line matches `test` (e.g. every Postgres backend of one database). */
export function findPids(test: (cmdline: string, comm: string) => boolean): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      const comm = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      if (test(cmdline, comm)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export interface IdleReport {
  /** RSS at the end of the window. */
  rssBytes: number;
  rssAnonBytes: number;
  /** Highest RSS seen in the window. */
  maxRssBytes: number;
  cpuSeconds: number;
  /** % of one core over the window. */
  cpuPercent: number;
}

/**
 * Samples every process in `pids` once a second for `seconds` (they should be
 * idle) and reports each one's RSS and CPU over the window; a process that
 * is gone by the end is left out.
 */
export async function watchIdle<K extends string>(
  pids: Readonly<Record<K, number | undefined>>,
  seconds: number,
): Promise<Partial<Record<K, IdleReport>>> {
  const keys = Object.keys(pids) as K[];
  const first = new Map<K, ProcSample>();
  const maxRss = new Map<K, number>();
  const sampleAll = () => {
    const now = new Map<K, ProcSample>();
    for (const key of keys) {
      const pid = pids[key];
      const sample = pid === undefined ? undefined : procSample(pid);
      if (!sample) continue;
      now.set(key, sample);
      maxRss.set(key, Math.max(maxRss.get(key) ?? 0, sample.rssBytes));
    }
    return now;
  };
  for (const [key, sample] of sampleAll()) first.set(key, sample);
  let last = first;
  for (let i = 0; i < seconds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    last = sampleAll();
  }
  const report: Partial<Record<K, IdleReport>> = {};
  for (const [key, end] of last) {
    const start = first.get(key);
    if (!start) continue;
    const cpu = cpuBetween(start, end);
    report[key] = {
      rssBytes: end.rssBytes,
      rssAnonBytes: end.rssAnonBytes,
      maxRssBytes: maxRss.get(key) ?? end.rssBytes,
      cpuSeconds: cpu.seconds,
      cpuPercent: cpu.percent,
    };
  }
  return report;
}

/** Sum of RSS (and RssAnon) of several processes, e.g. Postgres backends. */
export function sumRss(pids: readonly number[]): { rssBytes: number; rssAnonBytes: number; count: number } {
  let rssBytes = 0;
  let rssAnonBytes = 0;
  let count = 0;
  for (const pid of pids) {
    const sample = procSample(pid);
    if (!sample) continue;
    rssBytes += sample.rssBytes;
    rssAnonBytes += sample.rssAnonBytes;
    count++;
  }
  return { rssBytes, rssAnonBytes, count };
}
