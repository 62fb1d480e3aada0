import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The controllers a task's limits need. */
export type CgroupController = "memory" | "pids" | "cpu";
export const CGROUP_CONTROLLERS: readonly CgroupController[] = ["memory", "pids", "cpu"];

/**
 * Where this process's cgroups are, per controller: under cgroup v2 one
 * directory holds every controller; under v1 each controller has its own
 * hierarchy (this machine kind mounts memory, pids and cpu at
 * /sys/fs/cgroup/<controller>). A controller missing from `dirs` cannot be
 * used on this host.
 */
export interface CgroupLayout {
  version: 1 | 2;
  dirs: Partial<Record<CgroupController, string>>;
}

interface Mount {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** /proc/self/mountinfo: `id parent dev root mountpoint opts [optional...] - fstype source superopts`. */
function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const fields = left.split(" ");
    const [fsType, , superOptions = ""] = right.split(" ");
    if (!fsType || fields.length < 5) continue;
    mounts.push({
      root: unescapeMountPath(fields[3]!),
      mountPoint: unescapeMountPath(fields[4]!),
      fsType,
      superOptions: superOptions.split(","),
    });
  }
  return mounts;
}

const unescapeMountPath = (path: string) =>
  path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** /proc/self/cgroup: `hierarchy:controllers:path`; v2 is `0::path`. */
function parseSelfCgroups(text: string): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    if (match[1] === "0" && match[2] === "") v2 = match[3]!;
    else for (const controller of match[2]!.split(",")) v1.set(controller, match[3]!);
  }
  return { ...(v2 === undefined ? {} : { v2 }), v1 };
}

/** The directory of `cgroupPath` in a mount of its hierarchy (whose root may be a sub-cgroup). */
function dirIn(mount: Mount, cgroupPath: string): string | undefined {
  const root = mount.root === "/" ? "" : mount.root;
  if (root && cgroupPath !== root && !cgroupPath.startsWith(`${root}/`)) return undefined;
  const relative = cgroupPath.slice(root.length).replace(/^\/+|\/+$/g, "");
  return relative ? join(mount.mountPoint, relative) : mount.mountPoint;
}

/**
 * Detects the cgroup layout from this process's mounts and membership:
 * cgroup v2 when its hierarchy offers the memory and pids controllers,
 * otherwise the v1 hierarchies that are mounted. Undefined when neither is.
 */
export function detectCgroupLayout(
  mountInfo = readOrEmpty("/proc/self/mountinfo"),
  selfCgroup = readOrEmpty("/proc/self/cgroup"),
  readControllers: (dir: string) => string[] = (dir) =>
    readOrEmpty(join(dir, "cgroup.controllers")).trim().split(/\s+/).filter(Boolean),
): CgroupLayout | undefined {
  const mounts = parseMountInfo(mountInfo);
  const self = parseSelfCgroups(selfCgroup);
  const unified = mounts.find((m) => m.fsType === "cgroup2");
  if (unified && self.v2 !== undefined) {
    const dir = dirIn(unified, self.v2);
    if (dir) {
      const available = readControllers(dir);
      if (available.includes("memory") && available.includes("pids")) {
        const dirs: CgroupLayout["dirs"] = {};
        for (const controller of CGROUP_CONTROLLERS)
          if (available.includes(controller)) dirs[controller] = dir;
        return { version: 2, dirs };
      }
    }
  }
  const dirs: CgroupLayout["dirs"] = {};
  for (const controller of CGROUP_CONTROLLERS) {
    const mount = mounts.find((m) => m.fsType === "cgroup" && m.superOptions.includes(controller));
    const path = self.v1.get(controller);
    if (!mount || path === undefined) continue;
    const dir = dirIn(mount, path);
    if (dir) dirs[controller] = dir;
  }
  return Object.keys(dirs).length > 0 ? { version: 1, dirs } : undefined;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
