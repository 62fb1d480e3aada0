/**
 * The cross-process lock on one installed set: `<set dir>.lock`, a directory
 * created atomically by proper-lockfile, whose mtime the holder refreshes; a
 * lock not refreshed for STALE_MS (its holder died) is taken over. Within one
 * process, a second lock of the same set waits like any other process would.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { lock } from "proper-lockfile";

export type ReleaseLock = () => Promise<void>;

const STALE_MS = 20_000;
const UPDATE_MS = 5_000;
const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1_000;

export interface LockSetOptions {
  signal: AbortSignal;
  /** Called once, when the lock is held by someone else and the caller starts waiting. */
  onWait?: () => void;
  /** The lock was lost while held (its directory removed, or not refreshed in time). */
  onCompromised: (error: Error) => void;
}

/** Waits until the lock on `setDir` is ours, or rejects with the signal's reason. */
export async function lockSet(setDir: string, options: LockSetOptions): Promise<ReleaseLock> {
  let pollMs = FIRST_POLL_MS;
  let waiting = false;
  for (;;) {
    options.signal.throwIfAborted();
    const release = await tryLockSet(setDir, options.onCompromised);
    if (release) {
      if (!options.signal.aborted) return release;
      await release();
      options.signal.throwIfAborted();
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.();
    }
    await sleep(pollMs, undefined, { signal: options.signal });
    pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
  }
}

/** The lock if it is free now, undefined if someone holds it. */
export async function tryLockSet(
  setDir: string,
  onCompromised: (error: Error) => void,
): Promise<ReleaseLock | undefined> {
  let release: () => Promise<void>;
  try {
    release = await lock(setDir, {
      lockfilePath: `${setDir}.lock`,
      realpath: false,
      stale: STALE_MS,
      update: UPDATE_MS,
      retries: 0,
      onCompromised,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOCKED") return undefined;
    throw error;
  }
  return async () => {
    try {
      await release();
    } catch (error) {
      // already released because it was compromised: onCompromised said so
      if ((error as NodeJS.ErrnoException).code !== "ERELEASED") throw error;
    }
  };
}
