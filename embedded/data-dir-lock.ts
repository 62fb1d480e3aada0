import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TaskframeError, TaskframeErrorCode } from "../core/errors.js";

/** Who holds an embedded data directory, and where its hub answers (if it serves one). */
export interface LockOwner {
  pid: number;
  /** Unix socket of the owner's hub API, when it is a running engine. */
  socketPath?: string;
}

/**
 * An embedded data directory has one user at a time (PGlite is a single
 * process database). The lock file names that process; a lock whose process
 * is gone is stale and taken over.
 */
export class DataDirLock {
  private constructor(
    readonly path: string,
    private owner: LockOwner,
  ) {}

  static lockPath(dataDir: string): string {
    return join(dataDir, "lock");
  }

  /** The live owner of `dataDir`, if any (possibly this very process, with another engine). */
  static readOwner(dataDir: string): LockOwner | undefined {
    let owner: LockOwner;
    try {
      owner = JSON.parse(readFileSync(DataDirLock.lockPath(dataDir), "utf8")) as LockOwner;
    } catch {
      return undefined;
    }
    return isAlive(owner.pid) ? owner : undefined;
  }

  /** Takes the lock, waiting up to `waitMs` for a live owner to let go. */
  static async acquire(dataDir: string, waitMs = 0): Promise<DataDirLock> {
    mkdirSync(dataDir, { recursive: true });
    const path = DataDirLock.lockPath(dataDir);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const owner: LockOwner = { pid: process.pid };
      try {
        writeFileSync(path, JSON.stringify(owner), { flag: "wx" });
        return new DataDirLock(path, owner);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const current = DataDirLock.readOwner(dataDir);
      if (!current) {
        rmSync(path, { force: true }); // stale: its process is gone
        continue;
      }
      if (Date.now() >= deadline) {
        throw new TaskframeError(
          TaskframeErrorCode.Unavailable,
          `${dataDir} is in use by another task process (pid ${current.pid}); wait for it to finish or use --data`,
        );
      }
      await sleep(100);
    }
  }

  /** Publishes where this owner's hub answers. */
  announce(socketPath: string): void {
    this.owner = { ...this.owner, socketPath };
    writeFileSync(this.path, JSON.stringify(this.owner));
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
