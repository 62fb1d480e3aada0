import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packagePath } from "../core/package-root.js";
import type { ThroughputRow } from "./scenario.js";

/** Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux build in use). */
const USER_HZ = 100;

/** Wall-clock and CPU seconds of one peer run. */
export interface PeerTiming {
  seconds: number;
  cpuSeconds: number;
}

/** Runs `command` to its end, timing it; throws when it fails. */
function timeCommand(command: string, args: readonly string[], what: string): PeerTiming {
  const cpuBefore = processTreeCpuSeconds();
  const started = performance.now();
  const result = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0)
    throw new Error(`${what} failed (${result.status ?? result.signal}): ${result.stderr}`);
  return { seconds, cpuSeconds: processTreeCpuSeconds() - cpuBefore };
}

/**
 * Compiles bench/native/posix-spawn-true.c with the machine's C compiler
 * (`cc -O2`) into a temporary directory and runs it: /bin/true `count` times
 * with posix_spawn + waitpid, `parallel` in flight. The plain C spawn rate,
 * the ceiling any runner on this machine works under.
 */
export function posixSpawnTiming(count: number, parallel: number): PeerTiming {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-posix-spawn-"));
  try {
    const binary = join(dir, "posix-spawn-true");
    const source = packagePath("bench", "native", "posix-spawn-true.c");
    const compiled = spawnSync("cc", ["-O2", "-o", binary, source], { stdio: ["ignore", "ignore", "pipe"] });
    if (compiled.error) throw new Error(`cannot run cc: ${compiled.error.message}`);
    if (compiled.status !== 0) throw new Error(`cc failed on ${source}:\n${compiled.stderr}`);
    return timeCommand(binary, [String(count), String(parallel)], "posix-spawn-true");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Wall-clock seconds for `xargs -P parallel` to run /bin/true `count` times: the machine's plain spawn rate. */
export function xargsSeconds(count: number, parallel: number): number {
  return xargsTiming(count, parallel).seconds;
}

/** `xargs -P parallel` running /bin/true `count` times, wall clock and CPU. */
export function xargsTiming(count: number, parallel: number): PeerTiming {
  return timeCommand("sh", ["-c", `seq ${count} | xargs -P ${parallel} -n 1 /bin/true`], "xargs");
}

/**
 * bubblewrap alone, as the jail peer: `xargs -P parallel` running /bin/true
 * `count` times, each in a bwrap sandbox with the namespaces the standard
 * profile uses, as `nobody` (setpriv) when run as root. Undefined when bwrap
 * is not installed.
 */
export function bwrapTiming(count: number, parallel: number): PeerTiming | undefined {
  if (spawnSync("bwrap", ["--version"]).status !== 0) return undefined;
  const sandbox =
    "bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --die-with-parent --new-session " +
    "--ro-bind / / --proc /proc --dev /dev --tmpfs /tmp /bin/true";
  const asNobody = process.getuid?.() === 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  return timeCommand(
    "sh",
    ["-c", `seq ${count} | xargs -P ${parallel} -I{} ${asNobody}${sandbox}`],
    "xargs + bwrap",
  );
}

/** Wall-clock seconds for `make -j parallel` over `count` independent targets that each run /bin/true. */
export function makeSeconds(count: number, parallel: number): number {
  return makeTiming(count, parallel).seconds;
}

/** `make -j parallel` over `count` targets that each run /bin/true, wall clock and CPU. */
export function makeTiming(count: number, parallel: number): PeerTiming {
  const dir = mkdtempSync(join(tmpdir(), "taskframe-bench-make-"));
  try {
    const targets = Array.from({ length: count }, (_, i) => `t${i}`);
    const rules = targets.map((t) => `${t}:\n\t@/bin/true`).join("\n");
    writeFileSync(
      join(dir, "Makefile"),
      `.PHONY: all ${targets.join(" ")}\nall: ${targets.join(" ")}\n${rules}\n`,
    );
    return timeCommand("make", ["-s", "-j", String(parallel), "-C", dir], "make");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** xargs -P and make -j running /bin/true `tasks` times: the plain spawn rate of this machine's tools. */
export function shellPeerRows(
  tasks: number,
  parallel: number,
  progress: (text: string) => void,
): ThroughputRow[] {
  progress(`  xargs -P ${parallel} ...`);
  const xargs = xargsSeconds(tasks, parallel);
  progress(`  make -j ${parallel} ...`);
  const make = makeSeconds(tasks, parallel);
  return [
    { runner: `xargs -P ${parallel} /bin/true`, tasks, seconds: xargs, note: "no record, no logs" },
    { runner: `make -j ${parallel}`, tasks, seconds: make, note: "no record, no logs" },
  ];
}

/** CPU seconds (user + system) of process `pid` itself, from /proc (Linux; 0 elsewhere or once it is gone). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds (user + system) of process `root` and every descendant, alive
 * or ended and waited for, read from /proc (Linux; 0 elsewhere). The
 * difference between two readings is what a run cost the machine's CPUs,
 * which contention from other work on the machine changes far less than
 * the wall clock.
 */
export function processTreeCpuSeconds(root: number = process.pid): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // after the state: ppid is field 4 of the line, utime/stime/cutime/cstime 14-17
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      stats.set(pid, { ppid: Number(fields[1]), ticks });
    } catch {
      // gone between the listing and the read
    }
  }
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of stats) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  let ticks = 0;
  const pending = [root];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    ticks += stats.get(pid)?.ticks ?? 0;
    pending.push(...(children.get(pid) ?? []));
  }
  return ticks / USER_HZ;
}
