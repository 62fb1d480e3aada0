import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ResourceLimitsSchema, TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import type { HostSupport } from "./host-support.js";
import { Jail, type JailPolicy, JailRefusal } from "./jail.js";

/*
 * The jail's decisions, on a described host (no process is started): which
 * profile and account a task gets, and what is refused rather than run
 * weaker than asked. test/jail.test.ts runs real jailed tasks.
 */

const CAPABLE: HostSupport = {
  root: true,
  bwrap: { path: "/usr/bin/bwrap", version: "0.8.0" },
  namespaces: { pid: true, mnt: true, ipc: true, uts: true, net: true, user: true, cgroup: true },
  unprivilegedUserNamespaces: true,
  cgroups: { version: 1, dirs: { pids: "/sys/fs/cgroup/pids" } },
  nativeSpawner: true,
  seccomp: true,
};

const POLICY: JailPolicy = {
  profile: "auto",
  defaultUser: "nobody",
  allowUnenforcedLimits: false,
  defaultPids: 4096,
  defaultTmpBytes: 2n ** 30n,
  hidden: [],
  readOnly: [],
};

// no cgroup root given: limits cannot be applied, as on a host whose cgroups the sidecar may not write
const jail = (support: HostSupport, policy: Partial<JailPolicy> = {}) =>
  new Jail({ ...POLICY, ...policy }, support, undefined, undefined);

const prepare = (target: Jail, spec: Parameters<typeof create<typeof TaskSpecSchema>>[1]) =>
  target.prepare({
    spec: create(TaskSpecSchema, { name: "t", ...spec }),
    cwd: "/",
    host: "test-host",
    key: "k",
    runId: "",
  });

describe("the jail's profile", () => {
  it("is standard where the host can jail, none (with the reasons) where it cannot", () => {
    expect(jail(CAPABLE).profile).toBe("standard");
    const bare = jail({ ...CAPABLE, bwrap: undefined, seccomp: false });
    expect(bare.profile).toBe("none");
    expect(bare.problems).toEqual([
      "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)",
      "libseccomp2 is missing: the syscall filter cannot be compiled",
    ]);
  });

  it("is none where the default account cannot reach Taskframe's own files (a checkout under /root)", () => {
    const blocked = jail({ ...CAPABLE, packageBlockedAt: { dir: "/root", mode: 0o700, user: "nobody" } });
    expect(blocked.profile).toBe("none");
    expect(blocked.problems).toEqual([
      expect.stringMatching(
        /^user nobody cannot reach Taskframe's own files at \/.* \(\/root is mode 0700\): install it/,
      ),
    ]);
  });

  it("refuses to start a pool whose operator asked for a jail the host cannot give", () => {
    expect(() => jail({ ...CAPABLE, unprivilegedUserNamespaces: false }, { profile: "strict" })).toThrow(
      /cannot jail tasks \(jail: strict\): unprivileged user namespaces are disabled/,
    );
  });

  it("lets a task tighten its pool's profile, never loosen it", async () => {
    const standard = jail(CAPABLE);
    expect((await prepare(standard, { jail: "strict", user: "nobody" })).profile).toBe("strict");
    expect((await prepare(standard, { jail: "none", user: "nobody" })).profile).toBe("standard");
    const strict = jail(CAPABLE, { profile: "strict" });
    expect((await prepare(strict, { jail: "standard", user: "nobody" })).profile).toBe("strict");
    const none = jail({ ...CAPABLE, bwrap: undefined });
    await expect(prepare(none, { jail: "strict" })).rejects.toThrow(
      /^Jail=strict cannot be honoured on this host: bubblewrap is not installed/,
    );
  });
});

describe("the jail's accounts", () => {
  it("runs a jailed task as the pool's default account, and never as root", async () => {
    const standard = jail(CAPABLE);
    const attempt = await prepare(standard, {});
    expect(attempt.account).toMatchObject({ user: "nobody", uid: 65534 });
    await expect(prepare(standard, { user: "root" })).rejects.toThrow(
      "User=root: a jailed task cannot run as root (the pool's jail is standard)",
    );
    await expect(prepare(standard, { user: "taskframe-no-such-user" })).rejects.toThrow(
      "User=taskframe-no-such-user: no such user on host test-host",
    );
    await expect(prepare(standard, { user: "nobody", group: "taskframe-no-such-group" })).rejects.toThrow(
      "Group=taskframe-no-such-group: no such group on host test-host",
    );
  });

  it("runs the command through bwrap with the account's confinement", async () => {
    const attempt = await prepare(jail(CAPABLE), {});
    const wrapped = attempt.wrap("echo", ["hi"]);
    expect(wrapped.command).toBe("/usr/bin/bwrap");
    expect(wrapped.args.slice(-3)).toEqual(["--", "echo", "hi"]);
    expect(wrapped.args).toContain("--disable-userns");
    expect(wrapped.confine).toMatchObject({ noCoreDumps: true, account: { uid: 65534 } });
  });
});

describe("limits the host cannot enforce", () => {
  const limited = {
    limits: create(ResourceLimitsSchema, { memoryBytes: 2n ** 26n, pids: 64 }),
    user: "nobody",
  };

  it("end the task CHECK_FAILED, saying why", async () => {
    const error = await prepare(jail(CAPABLE), limited).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JailRefusal);
    expect(String(error)).toContain(
      "LimitMem= needs the memory cgroup controller, which this sidecar cannot use, and this pool does not allow unenforced limits",
    );
    const unjailed = jail({ ...CAPABLE, bwrap: undefined });
    await expect(prepare(unjailed, { privateNetwork: true })).rejects.toThrow(
      "PrivateNetwork= needs the jail, and this pool runs tasks without one",
    );
    await expect(
      prepare(unjailed, { limits: create(ResourceLimitsSchema, { diskBytes: 2n ** 20n }) }),
    ).rejects.toThrow("LimitDisk= sizes the jail's private /tmp, and this pool runs tasks without a jail");
  });

  it("run with a note in the task's log where the pool allows unenforced limits", async () => {
    const attempt = await prepare(jail(CAPABLE, { allowUnenforcedLimits: true }), limited);
    expect(attempt.notes).toEqual([
      "[taskframe] note: LimitMem= needs the memory cgroup controller, which this sidecar cannot use; not enforced (the pool allows unenforced limits)",
      "[taskframe] note: LimitPids= needs the pids cgroup controller, which this sidecar cannot use; not enforced (the pool allows unenforced limits)",
    ]);
  });
});
