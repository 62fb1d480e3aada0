import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/*
 * A directory where the spawner writes down every task process group it
 * runs: if the sidecar and its spawner are killed outright, the next sidecar
 * on the host finds what they left running and stops it. Each record holds
 * the process's start time too, so that a reused pid is never killed.
 *
 * Each spawner helper (this module for spawner-process.ts; the same format in
 * native/taskframe-spawner.c) keeps one file, `spawner-<pid>-<unix ms>`, of
 * fixed RECORD_BYTES text records, "<pid> <start time>" padded with spaces
 * and ended by a newline; a free slot is all spaces. Records are written in
 * place as groups start and end: one write each, where a file per group cost
 * an inode (0.2-0.4 ms of CPU per task on ext4). A helper that ends with
 * nothing running removes its file. Earlier versions wrote one file per
 * group, named by its pid and holding its start time; those are still read.
 */

export const RECORD_BYTES = 32;
const BLANK = Buffer.from(`${" ".repeat(RECORD_BYTES - 1)}\n`);
const LEDGER_FILE = /^spawner-\d+(-\d+)?$/;

/** One spawner helper's file in a ledger directory. */
export class ProcessLedger {
  readonly path: string;
  readonly #fd: number;
  readonly #slots = new Map<number, number>();
  readonly #free: number[] = [];
  #next = 0;
  #closed = false;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    let fd: number | undefined;
    let path = "";
    // a name of its own, even should a dead helper have had this pid
    for (let attempt = 0; fd === undefined; attempt++) {
      path = join(dir, `spawner-${process.pid}-${Date.now() + attempt}`);
      try {
        fd = openSync(path, "wx");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 100) throw error;
      }
    }
    this.path = path;
    this.#fd = fd;
  }

  record(pid: number): void {
    if (this.#closed) return;
    const startTime = processStartTime(pid);
    if (startTime === undefined) return;
    const text = `${pid} ${startTime}`;
    if (text.length >= RECORD_BYTES) return;
    const slot = this.#free.pop() ?? this.#next++;
    this.#slots.set(pid, slot);
    writeSync(
      this.#fd,
      Buffer.from(`${text.padEnd(RECORD_BYTES - 1)}\n`),
      0,
      RECORD_BYTES,
      slot * RECORD_BYTES,
    );
  }

  forget(pid: number): void {
    const slot = this.#slots.get(pid);
    if (slot === undefined || this.#closed) return;
    this.#slots.delete(pid);
    writeSync(this.#fd, BLANK, 0, RECORD_BYTES, slot * RECORD_BYTES);
    this.#free.push(slot);
  }

  /** Closes the file; removes it when nothing recorded is running any more. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
    if (this.#slots.size === 0) rmSync(this.path, { force: true });
  }
}

/** The groups a ledger file records: [pid, start time] pairs. */
export function readLedgerFile(path: string): [number, string][] {
  const records: [number, string][] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const [pid, startTime, ...rest] = line.trim().split(/ +/);
    if (pid && startTime && rest.length === 0 && /^\d+$/.test(pid)) records.push([Number(pid), startTime]);
  }
  return records;
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
  const kill = (pid: number, recorded: string) => {
    if (!Number.isInteger(pid) || pid <= 1 || processStartTime(pid) !== recorded) return;
    try {
      process.kill(-pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // already gone
    }
  };
  for (const entry of entries) {
    const path = join(dir, entry);
    if (LEDGER_FILE.test(entry)) {
      for (const [pid, recorded] of readLedgerFile(path)) kill(pid, recorded);
    } else if (/^\d+$/.test(entry)) {
      kill(Number(entry), readFileSync(path, "utf8").trim());
    } else {
      continue;
    }
    rmSync(path, { force: true });
  }
  return killed;
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
