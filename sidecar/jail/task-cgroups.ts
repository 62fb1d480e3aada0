import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../../core/errors.js";
import type { CgroupController, CgroupLayout } from "./cgroup-layout.js";

export interface CgroupLimits {
  /** 0: none. */
  memoryBytes: bigint;
  /** 0: none. */
  pids: number;
  /** Thousandths of a CPU; 0: no quota. */
  cpuMillis: number;
}

/** What the kernel counted for a task's cgroups. */
export interface CgroupReport {
  /** Processes the OOM killer killed in the task's memory cgroup. */
  oomKills: number;
  /** Times a fork failed because the task hit its process limit (v2 and kernels whose v1 pids has pids.events). */
  pidsLimitHits: number;
}

const CPU_PERIOD_US = 100_000;
// how long a cgroup may take to empty once its processes are killed
const EMPTY_WAIT_MS = 2_000;

/**
 * The cgroups of this sidecar's tasks: `<own cgroup>/taskframe-<instance>/<task>`
 * per controller. Creates them with their limits, reports what the kernel
 * counted, and removes them only once empty, killing what is left.
 */
export class TaskCgroupRoot {
  readonly #parents: Partial<Record<CgroupController, string>> = {};

  constructor(
    readonly layout: CgroupLayout,
    readonly instance: string,
  ) {
    for (const [controller, dir] of Object.entries(layout.dirs) as [CgroupController, string][])
      this.#parents[controller] = join(dir, `taskframe-${instance}`);
  }

  /** Controllers this host can apply. */
  get controllers(): CgroupController[] {
    return Object.keys(this.#parents) as CgroupController[];
  }

  /**
   * Creates the per-sidecar parents, first removing task cgroups a killed
   * predecessor with the same instance name left behind (their processes
   * killed). Returns how many leftovers were removed.
   */
  async open(): Promise<number> {
    if (this.layout.version === 2) this.#delegateV2();
    let leftovers = 0;
    for (const parent of new Set(Object.values(this.#parents))) {
      mkdirSync(parent, { recursive: true });
      if (this.layout.version === 2) enableControllers(parent, this.controllers);
      for (const entry of readdirSync(parent, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        await removeCgroup(join(parent, entry.name), this.layout.version);
        leftovers++;
      }
    }
    return leftovers;
  }

  /** Removes the per-sidecar parents (and any task cgroup left in them). */
  async close(): Promise<void> {
    for (const parent of new Set(Object.values(this.#parents))) {
      if (!existsSync(parent)) continue;
      for (const entry of readdirSync(parent, { withFileTypes: true }))
        if (entry.isDirectory()) await removeCgroup(join(parent, entry.name), this.layout.version);
      await removeCgroup(parent, this.layout.version);
    }
  }

  /** A task's cgroups in the controllers its limits need (pids always). */
  create(name: string, limits: CgroupLimits): TaskCgroups {
    const wanted: CgroupController[] = ["pids"];
    if (limits.memoryBytes > 0n) wanted.push("memory");
    if (limits.cpuMillis > 0) wanted.push("cpu");
    const dirs = new Map<CgroupController, string>();
    const cgroups = new TaskCgroups(dirs, this.layout.version);
    try {
      for (const controller of wanted) {
        const parent = this.#parents[controller];
        if (!parent) throw new Error(`the ${controller} cgroup controller is not available on this host`);
        const dir = join(parent, name);
        // recursive: a leftover of the same attempt (a crashed predecessor's) is reused, not an error
        if (![...dirs.values()].includes(dir)) mkdirSync(dir, { recursive: true });
        dirs.set(controller, dir);
      }
      cgroups.apply(limits);
    } catch (error) {
      void cgroups.destroy();
      throw error;
    }
    return cgroups;
  }

  /** cgroup v2 forbids processes in a cgroup whose children take controllers: move this process to a leaf. */
  #delegateV2(): void {
    const own = this.layout.dirs.pids;
    if (!own || own === "/sys/fs/cgroup") return;
    const leaf = join(own, "sidecar");
    mkdirSync(leaf, { recursive: true });
    writeFileSync(join(leaf, "cgroup.procs"), `${process.pid}\n`);
    enableControllers(own, this.controllers);
  }
}

function enableControllers(dir: string, controllers: readonly CgroupController[]): void {
  writeFileSync(join(dir, "cgroup.subtree_control"), controllers.map((c) => `+${c}`).join(" "));
}

/** One task's cgroups, per controller. */
export class TaskCgroups {
  #destroyed?: Promise<void>;
  #lastReport?: CgroupReport;

  constructor(
    private readonly dirs: Map<CgroupController, string>,
    private readonly version: 1 | 2,
  ) {}

  /** What the child writes its pid to before exec: one file per distinct directory. */
  get procsFiles(): string[] {
    return [...new Set(this.dirs.values())].map((dir) => join(dir, "cgroup.procs"));
  }

  apply(limits: CgroupLimits): void {
    const pids = this.dirs.get("pids");
    if (pids && limits.pids > 0) writeFileSync(join(pids, "pids.max"), String(limits.pids));
    const memory = this.dirs.get("memory");
    if (memory && limits.memoryBytes > 0n) {
      const bytes = String(limits.memoryBytes);
      if (this.version === 2) {
        writeFileSync(join(memory, "memory.max"), bytes);
        writeIfPresent(join(memory, "memory.swap.max"), "0");
        // the OOM killer takes the whole task, not one of its processes
        writeIfPresent(join(memory, "memory.oom.group"), "1");
      } else {
        writeFileSync(join(memory, "memory.limit_in_bytes"), bytes);
        // memory+swap at the same limit: no swapping past it
        writeIfPresent(join(memory, "memory.memsw.limit_in_bytes"), bytes);
      }
    }
    const cpu = this.dirs.get("cpu");
    if (cpu && limits.cpuMillis > 0) {
      const quota = Math.max(1_000, Math.round((limits.cpuMillis / 1000) * CPU_PERIOD_US));
      if (this.version === 2) writeFileSync(join(cpu, "cpu.max"), `${quota} ${CPU_PERIOD_US}`);
      else {
        writeFileSync(join(cpu, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
        writeFileSync(join(cpu, "cpu.cfs_quota_us"), String(quota));
      }
    }
  }

  /** What the kernel counted; after destroy(), what it had counted just before. */
  report(): CgroupReport {
    if (this.#lastReport) return this.#lastReport;
    const memory = this.dirs.get("memory");
    const pids = this.dirs.get("pids");
    const oomFile = memory && join(memory, this.version === 2 ? "memory.events" : "memory.oom_control");
    return {
      oomKills: oomFile ? counter(oomFile, "oom_kill") : 0,
      pidsLimitHits: pids ? counter(join(pids, "pids.events"), "max") : 0,
    };
  }

  /** Processes still in the task's cgroups. */
  processes(): number[] {
    const pids = new Set<number>();
    for (const file of this.procsFiles) for (const pid of readPids(file)) pids.add(pid);
    return [...pids];
  }

  /** Kills whatever is left, waits until the cgroups are empty, removes them. Safe to call twice. */
  destroy(): Promise<void> {
    this.#destroyed ??= (async () => {
      this.#lastReport = this.report();
      for (const dir of new Set(this.dirs.values())) await removeCgroup(dir, this.version);
    })();
    return this.#destroyed;
  }
}

async function removeCgroup(dir: string, version: 1 | 2): Promise<void> {
  if (!existsSync(dir)) return;
  const procs = join(dir, "cgroup.procs");
  const deadline = performance.now() + EMPTY_WAIT_MS;
  for (let round = 0; ; round++) {
    const left = readPids(procs);
    if (left.length === 0) {
      try {
        rmdirSync(dir);
        return;
      } catch (error) {
        // EBUSY: a process is still leaving (zombies count until reaped)
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        if (performance.now() > deadline)
          throw new Error(`cannot remove cgroup ${dir}: ${errorMessage(error)}`);
      }
    } else if (version === 2 && existsSync(join(dir, "cgroup.kill"))) {
      writeFileSync(join(dir, "cgroup.kill"), "1");
    } else {
      for (const pid of left) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    if (performance.now() > deadline)
      throw new Error(`cgroup ${dir} still holds processes ${left.join(", ")} after SIGKILL`);
    await sleep(round < 5 ? 2 : 20);
  }
}

function readPids(file: string): number[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `name N` in a flat-keyed cgroup file. */
function counter(file: string, name: string): number {
  try {
    const match = new RegExp(`^${name} (\\d+)$`, "m").exec(readFileSync(file, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function writeIfPresent(file: string, value: string): void {
  if (existsSync(file)) writeFileSync(file, value);
}
