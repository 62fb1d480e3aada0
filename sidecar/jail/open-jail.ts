import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Logger } from "../../core/logger.js";
import { packagePath } from "../../core/package-root.js";
import { probeHost } from "./host-support.js";
import { Jail, type JailPolicy } from "./jail.js";
import { RunDirs } from "./run-dirs.js";
import { TaskCgroupRoot } from "./task-cgroups.js";

export interface JailSettings extends Omit<JailPolicy, "hidden" | "readOnly"> {
  /** The sidecar's own state directory: hidden from tasks; the compiled seccomp filter lives here. */
  stateDir: string;
  /** More of the sidecar's state to hide (data directory, config). */
  hidden?: readonly string[];
  /** Whether the native spawner helper runs tasks (it applies cgroups, seccomp and accounts). */
  nativeSpawner: boolean;
  writeSeccompFilter?: (path: string) => Promise<void>;
}

/**
 * Probes the host and sets up the sidecar's jail: the cgroups its tasks go
 * under (removing what a killed predecessor left), the compiled seccomp
 * filter, and the profile tasks get.
 */
export async function openJail(settings: JailSettings, logger?: Logger): Promise<Jail> {
  const stateDir = resolve(settings.stateDir);
  mkdirSync(stateDir, { recursive: true });
  const seccompFilterPath = join(stateDir, "seccomp.bpf");
  const support = await probeHost({
    nativeSpawner: settings.nativeSpawner,
    ...(settings.writeSeccompFilter ? { writeSeccompFilter: settings.writeSeccompFilter } : {}),
    seccompFilterPath,
    defaultUser: settings.defaultUser,
  });
  let root: TaskCgroupRoot | undefined;
  if (support.root && support.cgroups && settings.nativeSpawner) {
    // one parent per sidecar state directory: a restarted sidecar finds its predecessor's leftovers there
    root = new TaskCgroupRoot(
      support.cgroups,
      createHash("sha256").update(stateDir).digest("hex").slice(0, 12),
    );
    try {
      const leftovers = await root.open();
      if (leftovers > 0) logger?.warn({ leftovers }, "removed task cgroups a previous sidecar left behind");
    } catch (error) {
      logger?.warn({ err: error }, "cannot create task cgroups: limits cannot be enforced");
      root = undefined;
    }
  }
  const instance = createHash("sha256").update(stateDir).digest("hex").slice(0, 12);
  const policy: JailPolicy = {
    ...settings,
    hidden: [stateDir, ...(settings.hidden ?? [])],
    readOnly: [packagePath()],
    runDirs: new RunDirs(join(tmpdir(), `taskframe-runs-${instance}`)),
  };
  return new Jail(policy, support, root, support.seccomp ? seccompFilterPath : undefined);
}
