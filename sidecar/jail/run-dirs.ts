import { chmodSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const RUN_ID = /^[0-9a-zA-Z-]+$/;
const SWEEP_EVERY_MS = 3_600_000;

/**
 * The directories runs share on this host (TASKFRAME_RUN_DIR): made on a
 * run's first task, writable by every task account and sticky; the base is
 * in the temp directory, so that every account can reach it, and listable by
 * no one but the sidecar (0711). A run's directory goes once nothing touched
 * it for `keepIdleMs` (checked hourly), or with the whole base on close when
 * the runs end with the process (embedded mode).
 */
export class RunDirs {
  readonly #made = new Set<string>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly base: string,
    private readonly keepIdleMs = 24 * 3_600_000,
  ) {
    mkdirSync(base, { recursive: true });
    chmodSync(base, 0o711);
    this.sweep();
    this.#timer = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.#timer.unref();
  }

  /** The run's directory, made if needed; undefined for an id that is not one. */
  dirFor(runId: string): string | undefined {
    if (!RUN_ID.test(runId)) return undefined;
    const dir = join(this.base, runId);
    if (!this.#made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o1777);
      this.#made.add(dir);
    }
    return dir;
  }

  sweep(now = Date.now()): void {
    for (const name of readdirSync(this.base)) {
      const dir = join(this.base, name);
      try {
        if (now - statSync(dir).mtimeMs <= this.keepIdleMs) continue;
        rmSync(dir, { recursive: true, force: true });
        this.#made.delete(dir);
      } catch {
        // removed meanwhile
      }
    }
  }

  close(removeAll: boolean): void {
    clearInterval(this.#timer);
    if (removeAll) rmSync(this.base, { recursive: true, force: true });
    else {
      try {
        rmdirSync(this.base);
      } catch {
        // runs still have directories here: they stay for the next sidecar
      }
    }
  }
}
