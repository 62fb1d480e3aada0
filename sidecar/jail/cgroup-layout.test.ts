import { describe, expect, it } from "vitest";
import { detectCgroupLayout } from "./cgroup-layout.js";

const V1_MOUNTS = [
  "30 24 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755",
  "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "32 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "33 30 0:29 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");

const V1_SELF = ["4:memory:/process_api/abc", "8:pids:/", "1:cpu:/", "0::/"].join("\n");

describe("detectCgroupLayout", () => {
  it("uses the v1 hierarchies when the v2 one has no memory or pids controller (a hybrid host)", () => {
    const layout = detectCgroupLayout(V1_MOUNTS, V1_SELF, () => ["hugetlb"]);
    expect(layout).toEqual({
      version: 1,
      dirs: {
        memory: "/sys/fs/cgroup/memory/process_api/abc",
        pids: "/sys/fs/cgroup/pids",
        cpu: "/sys/fs/cgroup/cpu",
      },
    });
  });

  it("uses cgroup v2 where its hierarchy offers memory and pids, in this process's own cgroup", () => {
    const mounts = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
    const layout = detectCgroupLayout(mounts, "0::/system.slice/taskframe.service", (dir) =>
      dir === "/sys/fs/cgroup/system.slice/taskframe.service"
        ? ["cpuset", "cpu", "io", "memory", "pids"]
        : [],
    );
    expect(layout).toEqual({
      version: 2,
      dirs: {
        memory: "/sys/fs/cgroup/system.slice/taskframe.service",
        pids: "/sys/fs/cgroup/system.slice/taskframe.service",
        cpu: "/sys/fs/cgroup/system.slice/taskframe.service",
      },
    });
  });

  it("maps a path through a mount of a sub-cgroup (a container's view), octal escapes included", () => {
    const mounts = "29 23 0:26 /kubepods/pod\\0401 /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
    const layout = detectCgroupLayout(mounts, "0::/kubepods/pod 1/ctr", () => ["memory", "pids"]);
    expect(layout?.dirs.pids).toBe("/sys/fs/cgroup/ctr");
    expect(layout?.dirs.cpu).toBeUndefined();
  });

  it("finds nothing where no cgroup hierarchy is mounted", () => {
    expect(detectCgroupLayout("22 1 8:1 / / rw - ext4 /dev/vda rw", "0::/", () => [])).toBeUndefined();
  });
});
