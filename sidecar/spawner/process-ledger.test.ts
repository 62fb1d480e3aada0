import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitUntilGone } from "../../test/helpers/processes.js";
import {
  killLeftovers,
  ProcessLedger,
  processStartTime,
  RECORD_BYTES,
  readLedgerFile,
} from "./process-ledger.js";

/** A process group of its own, as the spawner starts them: its pid and a way to stop it. */
function group(): { pid: number; stop: () => void } {
  const child = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
  child.unref();
  return {
    pid: child.pid!,
    stop: () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    },
  };
}

describe("ProcessLedger", () => {
  let dir: string;
  const groups: { stop: () => void }[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "taskframe-ledger-"));
  });
  afterEach(async () => {
    for (const g of groups.splice(0)) g.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("writes fixed records in place, reuses freed slots, and removes its file when nothing runs", async () => {
    const [a, b, c] = [group(), group(), group()];
    groups.push(a, b, c);
    const ledger = new ProcessLedger(dir);
    ledger.record(a.pid);
    ledger.record(b.pid);
    ledger.forget(a.pid);
    ledger.record(c.pid); // takes a's slot
    const text = await readFile(ledger.path, "utf8");
    expect(text.length).toBe(2 * RECORD_BYTES);
    expect(text.split("\n").map((line) => line.length)).toEqual([RECORD_BYTES - 1, RECORD_BYTES - 1, 0]);
    expect(readLedgerFile(ledger.path)).toEqual([
      [c.pid, processStartTime(c.pid)],
      [b.pid, processStartTime(b.pid)],
    ]);
    ledger.forget(b.pid);
    ledger.forget(c.pid);
    expect(readLedgerFile(ledger.path)).toEqual([]);
    ledger.close();
    expect(await readdir(dir)).toEqual([]);
  });

  it("keeps its file at close while a recorded group still runs", async () => {
    const a = group();
    groups.push(a);
    const ledger = new ProcessLedger(dir);
    ledger.record(a.pid);
    ledger.close();
    expect(readLedgerFile(ledger.path)).toEqual([[a.pid, processStartTime(a.pid)]]);
  });

  it("gives two ledgers in one directory files of their own", () => {
    const first = new ProcessLedger(dir);
    const second = new ProcessLedger(dir);
    expect(first.path).not.toBe(second.path);
    first.close();
    second.close();
  });

  it("kills what ledgers and per-pid files of earlier versions recorded, never a reused pid, and clears them", async () => {
    const [a, b, old, other] = [group(), group(), group(), group()];
    groups.push(a, b, old, other);
    const ledger = new ProcessLedger(dir);
    ledger.record(a.pid);
    ledger.record(b.pid);
    ledger.close();
    // a record whose start time is not the running process's: its pid was reused
    await writeFile(join(dir, "spawner-1-2"), `${other.pid} 1\n`.padStart(RECORD_BYTES, " "));
    await writeFile(join(dir, String(old.pid)), processStartTime(old.pid)!);
    await writeFile(join(dir, "notes.txt"), "not a ledger");
    expect(killLeftovers(dir).sort((x, y) => x - y)).toEqual([a.pid, b.pid, old.pid].sort((x, y) => x - y));
    for (const pid of [a.pid, b.pid, old.pid]) expect(await waitUntilGone(pid)).toBe(true);
    expect(await waitUntilGone(other.pid, 200)).toBe(false);
    expect(await readdir(dir)).toEqual(["notes.txt"]);
    expect(killLeftovers(dir)).toEqual([]);
  });
});
