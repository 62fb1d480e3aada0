import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildNativeSpawner, nativeSpawnerSupported } from "../../test/helpers/native-spawner.js";
import type { Confinement, RunProcessOptions } from "../process-runner.js";
import { Spawner, writeSeccompFilter } from "./spawner.js";

/*
 * Confinement applied by the spawner between fork and exec (SpawnProcess
 * fields 9-14): cgroups, RLIMIT_CORE, the seccomp filter on fd 3, the
 * account; the seccomp filter the native helper writes, tried under bwrap.
 * Most of it needs root (and cgroups, bwrap): what cannot run here says why.
 */

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const env = { PATH };
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const BWRAP = "/usr/bin/bwrap";
const hasBwrap = existsSync(BWRAP);

const none: Confinement = { cgroupProcsFiles: [], noCoreDumps: false };

/** The cgroup hierarchies to put tasks in: v1 pids, memory and cpu controllers, and a v2 one, as mounted. */
function cgroupMounts(): { name: string; mount: string }[] {
  if (process.platform !== "linux") return [];
  const found = new Map<string, string>();
  for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
    const [, mount, type, options = ""] = line.split(" ");
    if (!mount) continue;
    if (type === "cgroup2" && !found.has("v2")) found.set("v2", mount);
    if (type === "cgroup") {
      for (const controller of ["pids", "memory", "cpu"]) {
        if (options.split(",").includes(controller) && !found.has(controller)) found.set(controller, mount);
      }
    }
  }
  return [...found].map(([name, mount]) => ({ name, mount }));
}
const cgroups = cgroupMounts();

if (!isRoot) console.warn("confinement.test.ts: not root; the cgroup, account and bwrap tests are skipped");
if (isRoot && cgroups.length === 0)
  console.warn("confinement.test.ts: no cgroup hierarchy mounted; the cgroup test is skipped");
if (isRoot && !hasBwrap)
  console.warn(`confinement.test.ts: ${BWRAP} is missing; the seccomp filter is not tried`);

let native: ReturnType<typeof buildNativeSpawner> | undefined;
let dir: string;
beforeAll(async () => {
  if (nativeSpawnerSupported) {
    native = buildNativeSpawner();
    // reachable by other accounts, for the helper run as nobody
    await chmod(dirname(native.path), 0o755);
  }
});
afterAll(() => native?.remove());
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-confinement-"));
  await chmod(dir, 0o755);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Options = Partial<RunProcessOptions> & Pick<RunProcessOptions, "command" | "args">;

async function run(spawner: Spawner, options: Options) {
  const output = { stdout: "", stderr: "" };
  const outcome = await spawner.run({
    env,
    cwd: "/",
    killGraceMs: 300,
    onOutput: (stream, data) => {
      output[stream] += data.toString();
    },
    ...options,
  });
  return { outcome, ...output };
}

const sh = (script: string, confine: Confinement | undefined, extra: Partial<Options> = {}) => ({
  command: "/bin/sh",
  args: ["-c", script],
  ...(confine ? { confine } : {}),
  ...extra,
});

/** A helper started through a wrapper script (run as another account, with an fd open...). */
async function wrappedHelper(name: string, prefix: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${prefix} ${JSON.stringify(native!.path)} "$@"\n`);
  await chmod(path, 0o755);
  return path;
}

describe.skipIf(!nativeSpawnerSupported)("the native helper confines a task", () => {
  let spawner: Spawner;
  beforeEach(() => {
    spawner = new Spawner({ nativeHelper: native!.path });
  });
  afterEach(async () => {
    await spawner.close();
  });

  it.skipIf(!isRoot || cgroups.length === 0)("puts it in every cgroup given, before exec", async () => {
    const name = `taskframe-test-${process.pid}-${Date.now()}`;
    const dirs = cgroups.map(({ mount }) => join(mount, name));
    try {
      for (const cgroup of dirs) await mkdir(cgroup);
      const files = dirs.map((cgroup) => join(cgroup, "cgroup.procs"));
      // $$: the shell is the confined child itself (exec'd), which wrote its pid to each file
      const { outcome, stdout, stderr } = await run(spawner, {
        command: "/bin/sh",
        args: [
          "-c",
          'cat /proc/self/cgroup; for f in "$@"; do grep -qx $$ "$f" && echo "in $f"; done',
          "sh",
          ...files,
        ],
        confine: { ...none, cgroupProcsFiles: files },
      });
      expect({ exitCode: outcome.exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
      const lines = stdout.split("\n");
      for (const file of files) expect(lines).toContain(`in ${file}`);
      // /proc/self/cgroup: one line per hierarchy ("N:pids:/path", "0::/path" for v2)
      for (const { name: hierarchy } of cgroups) {
        const line = lines.find((l) =>
          hierarchy === "v2" ? l.startsWith("0::") : l.split(":")[1]?.split(",").includes(hierarchy),
        );
        expect(line, `${hierarchy} in\n${stdout}`).toMatch(new RegExp(`/${name}$`));
      }
    } finally {
      for (const cgroup of dirs) await removeCgroup(cgroup);
    }
  });

  it.skipIf(!isRoot)("switches to the account given, groups included, for good", async () => {
    const script = "id -u; id -g; id -G; grep ^Groups: /proc/self/status";
    const withGroups = await run(
      spawner,
      sh(script, { ...none, account: { uid: NOBODY, gid: NOBODY, groups: [100, 200] } }),
    );
    const [uid, gid, ids, groups] = withGroups.stdout.split("\n");
    expect({ uid, gid, groups: groupsOf(groups) }).toEqual({
      uid: `${NOBODY}`,
      gid: `${NOBODY}`,
      groups: "100 200",
    });
    expect(new Set(ids?.split(" "))).toEqual(new Set([`${NOBODY}`, "100", "200"]));

    // none given: none at all, not the helper's
    const noGroups = await run(
      spawner,
      sh(script, { ...none, account: { uid: 1234, gid: 4321, groups: [] } }),
    );
    const lines = noGroups.stdout.split("\n");
    expect({ ids: lines.slice(0, 3), groups: groupsOf(lines[3]) }).toEqual({
      ids: ["1234", "4321", "4321"],
      groups: "",
    });
  });

  it.skipIf(!isRoot)("searches PATH and enters the cwd as the account", async () => {
    // the same command in a directory only root can enter, then in one anybody can
    for (const [sub, mode] of [
      ["root-only", 0o700],
      ["anybody", 0o755],
    ] as const) {
      await mkdir(join(dir, sub), { mode });
      await chmod(join(dir, sub), mode);
      await writeFile(join(dir, sub, "which-one"), `#!/bin/sh\necho ${sub}\n`, { mode: 0o755 });
    }
    const options = {
      command: "which-one",
      args: [],
      env: { PATH: `${join(dir, "root-only")}:${join(dir, "anybody")}` },
    };
    expect((await run(spawner, options)).stdout).toBe("root-only\n");
    const account = { uid: NOBODY, gid: NOBODY, groups: [] };
    expect((await run(spawner, { ...options, confine: { ...none, account } })).stdout).toBe("anybody\n");

    const cwd = join(dir, "root-only");
    const refused = await run(spawner, { command: "/bin/pwd", args: [], cwd, confine: { ...none, account } });
    expect(refused.outcome.spawnError).toEqual({
      code: "EACCES",
      message: `cannot start "/bin/pwd": cannot enter the working directory ${cwd} as uid ${NOBODY}: Permission denied`,
    });
    expect((await run(spawner, { command: "/bin/pwd", args: [], cwd })).stdout).toBe(`${cwd}\n`);
  });

  it("sets RLIMIT_CORE to 0, soft and hard", async () => {
    const script = "ulimit -c; ulimit -H -c";
    const confined = await run(spawner, sh(script, { ...none, noCoreDumps: true }));
    expect(confined.stdout).toBe("0\n0\n");
    const free = await run(spawner, sh(script, undefined));
    if (free.stdout === "0\n0\n") console.warn("confinement.test.ts: core dumps are off here already");
    else expect(free.stdout).not.toBe("0\n0\n");
  });

  it("passes the seccomp filter on fd 3, and no other fd above 2", async () => {
    const filter = join(dir, "filter.bpf");
    await writeFile(filter, Buffer.alloc(48, 7));
    // an fd the helper holds without close-on-exec: posix_spawn passes it on, the confined path must not
    const leaky = new Spawner({
      nativeHelper: await wrappedHelper("leaky-helper", "exec 7</etc/hostname; exec"),
    });
    try {
      // no pipeline: while the shell sets one up it holds the pipe's fds itself, and ls would list them
      const script = "ls /proc/$$/fd; if [ -e /proc/$$/fd/3 ]; then wc -c <&3; readlink /proc/$$/fd/3; fi";
      const withFilter = await run(leaky, sh(script, { ...none, seccompFilterPath: filter }));
      expect(withFilter.stdout).toBe(`0\n1\n2\n3\n48\n${filter}\n`);
      const without = await run(leaky, sh(script, { ...none, noCoreDumps: true }));
      expect(without.stdout).toBe("0\n1\n2\n");
      // the fast path, for comparison: the helper's fd 7 shows (with whatever else it inherited)
      expect((await run(leaky, sh(script, undefined))).stdout.split("\n")).toContain("7");
    } finally {
      await leaky.close();
    }
  });

  it("stops a confined task on timeout and cancel, its group included", async () => {
    const confine = { ...none, noCoreDumps: true };
    const timedOut = await run(spawner, sh("sleep 30 & sleep 30", confine, { timeoutMs: 200 }));
    expect(timedOut.outcome).toMatchObject({ timedOut: true, signal: "SIGTERM", exitCode: null });
    const stop = new AbortController();
    const cancelled = run(spawner, sh("sleep 30", confine, { signal: stop.signal }));
    setTimeout(() => stop.abort(), 200);
    expect((await cancelled).outcome).toMatchObject({ cancelled: true, signal: "SIGTERM" });
  });

  describe("reports what failed", () => {
    const failure = async (options: Options) => {
      const { outcome } = await run(spawner, options);
      expect(outcome).toMatchObject({ exitCode: null, pid: undefined });
      return outcome.spawnError;
    };

    it("a cgroup.procs file that does not exist", async () => {
      const file = join(dir, "no-such-cgroup", "cgroup.procs");
      expect(
        await failure({ command: "/bin/true", args: [], confine: { ...none, cgroupProcsFiles: [file] } }),
      ).toEqual({
        code: "ENOENT",
        message: `cannot start "/bin/true": cannot join cgroup ${file}: No such file or directory`,
      });
    });

    it("a seccomp filter that cannot be read", async () => {
      const missing = join(dir, "missing.bpf");
      expect(
        await failure({ command: "/bin/true", args: [], confine: { ...none, seccompFilterPath: missing } }),
      ).toEqual({
        code: "ENOENT",
        message: `cannot start "/bin/true": cannot open seccomp filter ${missing}: No such file or directory`,
      });
      expect(
        await failure({ command: "/bin/true", args: [], confine: { ...none, seccompFilterPath: dir } }),
      ).toEqual({
        code: "EISDIR",
        message: `cannot start "/bin/true": cannot open seccomp filter ${dir}: Is a directory`,
      });
    });

    it.skipIf(!isRoot)("exec after the switch to another account, described as for any task", async () => {
      const confine = { ...none, account: { uid: NOBODY, gid: NOBODY, groups: [] } };
      expect(await failure({ command: "/taskframe/no/such/program", args: [], confine })).toEqual({
        code: "ENOENT",
        message: `cannot start "/taskframe/no/such/program": no such file`,
      });
      expect(await failure({ command: "taskframe-no-such-command", args: [], confine })).toEqual({
        code: "ENOENT",
        message: `cannot start "taskframe-no-such-command": command not found in PATH`,
      });
      // executable by root alone
      const program = join(dir, "root-only");
      await writeFile(program, "#!/bin/sh\necho ran\n", { mode: 0o700 });
      expect((await run(spawner, { command: program, args: [] })).stdout).toBe("ran\n");
      expect(await failure({ command: program, args: [], confine })).toEqual({
        code: "EACCES",
        message: `cannot start ${JSON.stringify(program)}: permission denied (not executable, or a directory)`,
      });
    });

    it.skipIf(!isRoot)("an account switch the helper is not allowed to make", async () => {
      const as = async (caps: string) => {
        const helper = await wrappedHelper(
          `helper-${caps || "none"}`,
          `exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups${
            caps ? ` --inh-caps=${caps} --ambient-caps=${caps}` : ""
          } --`,
        );
        const limited = new Spawner({ nativeHelper: helper });
        try {
          const { outcome } = await run(limited, {
            command: "/bin/true",
            args: [],
            confine: { ...none, account: { uid: 1234, gid: 4321, groups: [5] } },
          });
          return outcome.spawnError;
        } finally {
          await limited.close();
        }
      };
      expect(await as("")).toEqual({
        code: "EPERM",
        message: `cannot start "/bin/true": cannot set the supplementary groups (5): Operation not permitted`,
      });
      expect(await as("+setgid")).toEqual({
        code: "EPERM",
        message: `cannot start "/bin/true": cannot switch to uid 1234: Operation not permitted`,
      });
      // CAP_SETUID survives a switch between two accounts that are not root: refused
      expect(await as("+setgid,+setuid")).toEqual({
        code: "EPERM",
        message: `cannot start "/bin/true": cannot drop root: uid 1234 can still switch back to uid 0`,
      });
    });
  });
});

/** The fast path (posix_spawn) and the confined one (fork) start processes the same way. */
describe.skipIf(!nativeSpawnerSupported)("the confined path agrees with the fast path", () => {
  let spawner: Spawner;
  beforeEach(async () => {
    spawner = new Spawner({ nativeHelper: native!.path });
    await writeFile(join(dir, "no-shebang.sh"), "echo ran by $0 with $# args: $*\n", { mode: 0o755 });
    await writeFile(join(dir, "a-file"), "");
    await mkdir(join(dir, "bin"));
    await writeFile(join(dir, "bin", "in-bin"), "#!/bin/sh\necho in-bin $PWD\n", { mode: 0o755 });
  });
  afterEach(async () => {
    await spawner.close();
  });

  const cases: [string, () => Options][] = [
    ["an exit code", () => ({ command: "/bin/sh", args: ["-c", "echo out; echo err >&2; exit 42"] })],
    ["a signal", () => ({ command: "/bin/sh", args: ["-c", "kill -TERM $$"] })],
    ["a relative PATH entry", () => ({ command: "in-bin", args: [], env: { PATH: "/nonexistent:bin" } })],
    ["a script without #!", () => ({ command: "./no-shebang.sh", args: ["a", "b c"] })],
    ["a missing command", () => ({ command: "taskframe-no-such-command", args: [] })],
    ["a directory", () => ({ command: dir, args: [] })],
    ["a missing cwd", () => ({ command: "/bin/true", args: [], cwd: join(dir, "missing") })],
    ["a cwd that is a file", () => ({ command: "/bin/true", args: [], cwd: join(dir, "a-file") })],
    [
      // (not open descriptors: the fast path passes on those the helper holds without close-on-exec)
      "argv, stdin, session and signal dispositions",
      () => ({
        command: "/bin/sh",
        args: [
          "-c",
          `echo "$0|$1|$2"; read line; echo "stdin $?"; set -- $(cut -d' ' -f1,5,6 /proc/$$/stat);
           [ "$1" = "$2" ] && [ "$2" = "$3" ] && echo "leads its session and group";
           grep -E '^Sig(Ign|Blk)' /proc/self/status`,
          "one",
          "two three",
        ],
      }),
    ],
  ];

  it.each(cases)("%s", async (_name, make) => {
    const results = await Promise.all(
      [undefined, { ...none, noCoreDumps: true }].map(async (confine) => {
        const { outcome, stdout, stderr } = await run(spawner, {
          cwd: dir,
          ...make(),
          ...(confine ? { confine } : {}),
        });
        const { pid, startedAtMs, durationMs, ...rest } = outcome;
        return { started: pid !== undefined, ...rest, stdout, stderr };
      }),
    );
    expect(results[1]).toEqual(results[0]);
  });
});

describe("the Node helper and confinement", () => {
  let spawner: Spawner;
  beforeEach(() => {
    spawner = new Spawner({ nativeHelper: false });
  });
  afterEach(async () => {
    await spawner.close();
  });

  it("refuses cgroups and seccomp, which need the native helper", async () => {
    const expected = {
      code: "ENOTSUP",
      message: `cannot start "/bin/true": cgroups and seccomp need the native spawner helper (built at install with a C compiler)`,
    };
    for (const confine of [
      { ...none, cgroupProcsFiles: ["/sys/fs/cgroup/pids/x/cgroup.procs"] },
      { ...none, seccompFilterPath: "/etc/hostname" },
    ]) {
      const { outcome } = await run(spawner, { command: "/bin/true", args: [], confine });
      expect(outcome).toMatchObject({ exitCode: null, pid: undefined, spawnError: expected });
    }
  });

  it("runs a task with noCoreDumps alone (left out)", async () => {
    const { outcome } = await run(spawner, sh("exit 3", { ...none, noCoreDumps: true }));
    expect(outcome.exitCode).toBe(3);
  });

  it.skipIf(!isRoot)("switches account, every supplementary group dropped", async () => {
    const { stdout } = await run(
      spawner,
      sh("id -u; id -g; grep ^Groups: /proc/self/status", {
        ...none,
        account: { uid: NOBODY, gid: 4321, groups: [100] },
      }),
    );
    const lines = stdout.split("\n");
    expect({ ids: lines.slice(0, 2), groups: groupsOf(lines[2]) }).toEqual({
      ids: [`${NOBODY}`, "4321"],
      groups: "",
    });
  });
});

describe.skipIf(!nativeSpawnerSupported)("the seccomp filter", () => {
  it("is written as a BPF program that kills other ABIs", async () => {
    const filter = join(dir, "filter.bpf");
    await writeSeccompFilter(filter, native!.path);
    const program = await readFile(filter);
    expect((await stat(filter)).mode & 0o777).toBe(0o644);
    expect(program.length % 8).toBe(0);
    expect(program.length).toBeGreaterThan(8 * 40);
    // struct sock_filter { u16 code; u8 jt, jf; u32 k; }
    const insn = (i: number) => ({
      code: program.readUInt16LE(i * 8),
      jt: program.readUInt8(i * 8 + 2),
      jf: program.readUInt8(i * 8 + 3),
      k: program.readUInt32LE(i * 8 + 4),
    });
    // ld [4] (seccomp_data.arch); jeq <native arch>, else: ret KILL
    expect(insn(0)).toEqual({ code: 0x20, jt: 0, jf: 0, k: 4 });
    const check = insn(1);
    expect(check.code).toBe(0x15);
    if (process.arch === "x64") expect(check.k).toBe(0xc000003e);
    const otherAbi = insn(2 + check.jf);
    expect(otherAbi.code).toBe(0x06);
    expect([0, 0x80000000]).toContain(otherAbi.k);
  });

  it("reports what went wrong", async () => {
    await expect(writeSeccompFilter(join(dir, "missing", "filter.bpf"), native!.path)).rejects.toThrow(
      `taskframe-spawner: cannot write the seccomp filter ${join(dir, "missing", "filter.bpf")} (create): No such file or directory`,
    );
    await expect(writeSeccompFilter(join(dir, "filter.bpf"), "/taskframe/no/such/helper")).rejects.toThrow(
      "the native spawner helper /taskframe/no/such/helper was not built",
    );
  });

  it.skipIf(!isRoot || !hasBwrap)("tells to install libseccomp2 when it is missing", async () => {
    const library = /=> (\S+)/.exec(
      execFileSync("ldconfig", ["-p"], { encoding: "utf8" })
        .split("\n")
        .find((line) => line.includes("libseccomp.so.2 ")) ?? "",
    )?.[1];
    if (!library) {
      console.warn("confinement.test.ts: libseccomp.so.2 is not installed here");
      await expect(writeSeccompFilter(join(dir, "filter.bpf"), native!.path)).rejects.toThrow(
        "libseccomp.so.2 not found: install libseccomp2",
      );
      return;
    }
    // the library hidden behind an empty file
    const helper = await wrappedHelper(
      "no-libseccomp",
      `exec ${BWRAP} --bind / / --ro-bind /dev/null ${realpathSync(library)} --dev /dev --`,
    );
    await expect(writeSeccompFilter(join(dir, "filter.bpf"), helper)).rejects.toThrow(
      /^libseccomp.so.2 not found: install libseccomp2$/,
    );
    expect(existsSync(join(dir, "filter.bpf"))).toBe(false);
  });

  describe.skipIf(!isRoot || !hasBwrap || process.arch !== "x64")("under bwrap --seccomp 3", () => {
    let spawner: Spawner;
    let filter: string;
    let probe: string;
    beforeEach(async () => {
      spawner = new Spawner({ nativeHelper: native!.path });
      filter = join(dir, "filter.bpf");
      await writeSeccompFilter(filter, native!.path);
      probe = join(dir, "probe");
      await writeFile(`${probe}.c`, PROBE);
      const built = spawnSync("cc", ["-O2", "-o", probe, `${probe}.c`], { encoding: "utf8" });
      expect(built.stderr).toBe("");
      expect(built.status).toBe(0);
    });
    afterEach(async () => {
      await spawner.close();
    });

    const bwrap = (seccomp: boolean, command: string[]) =>
      run(spawner, {
        command: BWRAP,
        args: [
          "--ro-bind",
          "/",
          "/",
          "--dev",
          "/dev",
          "--proc",
          "/proc",
          "--unshare-pid",
          ...(seccomp ? ["--seccomp", "3"] : []),
          "--",
          ...command,
        ],
        confine: { ...none, noCoreDumps: true, ...(seccomp ? { seccompFilterPath: filter } : {}) },
      });
    const results = (stdout: string) =>
      Object.fromEntries(
        stdout
          .trim()
          .split("\n")
          .map((line) => line.split("=")),
      );

    it("refuses what it denies, and allows the rest", async () => {
      const confined = await bwrap(true, [probe]);
      expect({ exitCode: confined.outcome.exitCode, stderr: confined.stderr }).toEqual({
        exitCode: 0,
        stderr: "",
      });
      const free = await bwrap(false, [probe]);
      expect(free.outcome.exitCode).toBe(0);
      const without = results(free.stdout);
      expect(results(confined.stdout)).toEqual({
        keyctl: "EPERM",
        io_uring_setup: "EPERM",
        unshare: "EPERM",
        clone_newuser: "EPERM",
        clone3: "ENOSYS",
        tiocsti: "EPERM",
        // the command compared on its low 32 bits, as the kernel reads it
        tiocsti_high: "EPERM",
        ptrace: "EPERM",
        fork: "ok",
        x32: "SIGSYS",
        // int 0x80 (i386): killed, unless this kernel runs no i386 code at all
        i386: without.i386 === "ok" ? "SIGSYS" : without.i386,
      });
      // without the filter, the same calls get as far as the kernel
      expect(without).toMatchObject({ tiocsti: "ENOTTY", tiocsti_high: "ENOTTY", fork: "ok" });
      expect(without.keyctl).not.toBe("EPERM");
      expect(without.clone3).not.toBe("ENOSYS");
    });

    it("runs ordinary commands", async () => {
      expect((await bwrap(true, ["true"])).outcome.exitCode).toBe(0);
      const piped = await bwrap(true, ["/bin/sh", "-c", "echo hi | cat; ls / >/dev/null && echo listed"]);
      expect(piped).toMatchObject({ stdout: "hi\nlisted\n", stderr: "", outcome: { exitCode: 0 } });
    });
  });
});

/** The groups of a "Groups:" line of /proc/PID/status, space-separated. */
function groupsOf(line: string | undefined): string | undefined {
  return line?.startsWith("Groups:") ? line.slice("Groups:".length).trim().split(/\s+/).join(" ") : undefined;
}

/** Removes a test cgroup once its processes are gone (they leave it as they are reaped). */
async function removeCgroup(path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Tries each call the filter denies; prints name=ok, name=ERRNO, or name=SIGNAL for those run in a child. */
const PROBE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *result(long rc) {
  if (rc >= 0) return "ok";
  switch (errno) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOTTY: return "ENOTTY";
    case EACCES: return "EACCES";
    case ENOKEY: return "ENOKEY";
    case ESRCH: return "ESRCH";
    default: return strerror(errno);
  }
}

/* runs body in a child: "ok", "failed", or the signal that killed it */
static const char *in_child(int (*body)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return "no child";
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSYS ? "SIGSYS" : strsignal(WTERMSIG(status));
  return WEXITSTATUS(status) == 0 ? "ok" : "failed";
}

static int x32_getpid(void) { return syscall(0x40000000 | 39) < 0; }
static int i386_getpid(void) {
  long rc;
  __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L) : "memory");
  return rc <= 0;
}

int main(void) {
  printf("keyctl=%s\n", result(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0)));
  char params[120] = {0};
  printf("io_uring_setup=%s\n", result(syscall(SYS_io_uring_setup, 1, params)));
  printf("unshare=%s\n", result(unshare(CLONE_NEWUSER)));
  fflush(stdout);
  long child = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (child == 0) _exit(0);
  if (child > 0) waitpid(child, 0, 0);
  printf("clone_newuser=%s\n", result(child));
  printf("clone3=%s\n", result(syscall(SYS_clone3, 0, 0)));
  printf("tiocsti=%s\n", result(ioctl(0, TIOCSTI, "x")));
  printf("tiocsti_high=%s\n", result(syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, "x")));
  printf("ptrace=%s\n", result(ptrace(PTRACE_PEEKDATA, getppid(), 0, 0)));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(pid, 0, 0);
  printf("fork=%s\n", pid > 0 ? "ok" : strerror(errno));
  printf("x32=%s\n", in_child(x32_getpid));
  printf("i386=%s\n", in_child(i386_getpid));
  return 0;
}
`;
