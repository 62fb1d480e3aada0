import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

const ARCH_DIRS: Partial<Record<NodeJS.Architecture, string>> = { x64: "x86_64", arm64: "aarch64" };

/** Debian's libfaketime (package `faketime`, installed by sdks/install-toolchains.sh). */
export const LIBFAKETIME = `/usr/lib/${ARCH_DIRS[process.arch] ?? process.arch}-linux-gnu/faketime/libfaketime.so.1`;

/**
 * A wall clock a scenario can move while processes run: libfaketime,
 * preloaded into the processes given `env`, reads the offset from a file at
 * every call. The monotonic clock is left alone, as a real clock step
 * (NTP, an operator's `date -s`) leaves it.
 */
export class FakeClock {
  private constructor(private readonly file: string) {}

  static async create(dir: string): Promise<FakeClock> {
    const clock = new FakeClock(join(dir, "faketime"));
    await clock.set("+0");
    return clock;
  }

  static get available(): boolean {
    return existsSync(LIBFAKETIME);
  }

  get env(): Record<string, string> {
    return {
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: this.file,
      FAKETIME_NO_CACHE: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    };
  }

  /** Sets the processes' wall clock to real time plus `offset` (libfaketime's syntax: `+1h`, `-1h`, `+0`). */
  async set(offset: string): Promise<void> {
    await writeFile(this.file, `${offset}\n`);
  }
}
