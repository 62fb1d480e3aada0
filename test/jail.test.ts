import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { type Dirent, existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Task } from "../core/gen/taskframe/v1/hub_pb.js";
import { ResourceLimitsSchema, type TaskSpec, TaskSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { packagePath } from "../core/package-root.js";
import { RunState, TaskState } from "../core/states.js";
import { task as taskCli } from "./helpers/cli.js";
import { startCluster } from "./helpers/cluster.js";
import {
  type FinishedRun,
  finishedAt,
  runSpec,
  runToEnd,
  startEngine,
  startedAt,
  type TestEngine,
} from "./helpers/engine.js";

/*
 * The standard jail, end to end through an embedded engine: what a jailed
 * task can see and do, the limits the kernel enforces, and what is left on
 * the host once an attempt has ended. Needs root, bubblewrap, cgroups and the
 * native spawner; on a host without them the file says why and skips.
 */

const PYTHON = "/usr/bin/python3";
const NOBODY = 65534;
const PROBE = join(import.meta.dirname, "fixtures", "jail", "escape_probe.py");

let harness: TestEngine | undefined;
let skipReason: string | undefined;
let workDir: string;
const servers: Server[] = [];
const cleanup: string[] = [];

/** A token no other process on this host carries: markers in argv and file names. */
const token = () => randomBytes(6).toString("hex");
/** A `sleep` duration unique to one test, so that `ps` finds exactly its processes (e.g. 313.71234567). */
const sleepMarker = () => `313.7${Number.parseInt(token(), 16) % 10 ** 8}`;

beforeAll(async () => {
  // tasks run as nobody: their working directory must be reachable by it
  workDir = await mkdtemp(join(tmpdir(), "taskframe-jail-"));
  await chmod(workDir, 0o755);
  cleanup.push(workDir);
  try {
    // the engine's data directory inside the tasks' working directory (as `./.taskframe` is by default):
    // the jail must hide it even there
    harness = await startEngine("pglite", {
      dataDir: join(workDir, ".taskframe"),
      jail: { profile: "standard" },
      slots: 8,
    });
  } catch (error) {
    // the jail refuses to open with profile standard on a host that lacks something; say what
    if (!/cannot jail tasks/.test(String(error))) throw error;
    skipReason = String(error);
  }
  const problems = harness?.engine.jail?.problems ?? [];
  if (problems.length > 0) skipReason = `the host cannot jail tasks: ${problems.join("; ")}`;
  if (skipReason) {
    console.warn(`jail.test.ts skipped: ${skipReason}`);
    return;
  }
  // a first task starts the spawner helper, whose pid the escape probe tries to reach
  const warmUp = await run("warm-up", [sh("warm-up", "true")]);
  if (stateOf(warmUp, "warm-up") !== "SUCCEEDED")
    throw new Error(`a jailed \`true\` did not succeed: ${await logsOf(warmUp, "warm-up")}`);
});

afterAll(async () => {
  for (const server of servers) server.close();
  const runsDir = harness?.engine.jail?.policy.runDirs?.base;
  await harness?.[Symbol.asyncDispose]();
  for (const path of cleanup) await rm(path, { recursive: true, force: true });
  // closing the engine leaves nothing on the host: no task-cgroup parent, no runs directory
  if (runsDir) {
    const instance = basename(runsDir).replace(/^taskframe-runs-/, "");
    expect(taskCgroupParents().filter((parent) => basename(parent) === `taskframe-${instance}`)).toEqual([]);
    expect(existsSync(runsDir)).toBe(false);
  }
});

/** A test that runs only where the host can jail. */
const jailed = (name: string, fn: () => Promise<void>, timeout?: number) =>
  it(
    name,
    async (ctx) => {
      if (skipReason) ctx.skip(skipReason);
      await fn();
    },
    timeout,
  );

type Extra = Omit<MessageInitShape<typeof TaskSpecSchema>, "name" | "target" | "$typeName">;

/** An exec task in the shared working directory (or `cwd`). */
function task(name: string, command: string, args: string[], extra: Extra = {}, cwd = workDir): TaskSpec {
  return create(TaskSpecSchema, {
    name,
    target: { case: "exec", value: { command, args, cwd } },
    ...extra,
  });
}
const sh = (name: string, script: string, extra: Extra = {}, cwd = workDir) =>
  task(name, "/bin/sh", ["-c", script], extra, cwd);
const python = (name: string, code: string, extra: Extra = {}) => task(name, PYTHON, ["-c", code], extra);
const limits = (init: MessageInitShape<typeof ResourceLimitsSchema>) => create(ResourceLimitsSchema, init);

function engine(): TestEngine {
  if (!harness) throw new Error("no engine");
  return harness;
}

async function run(name: string, tasks: TaskSpec[]): Promise<FinishedRun> {
  return runToEnd(engine().client, runSpec(name, tasks));
}

function taskOf(finished: FinishedRun, name: string): Task {
  const found = finished.tasks.get(name);
  if (!found) throw new Error(`no task ${name} in run ${finished.run.id}`);
  return found;
}

async function logsOf(finished: FinishedRun, name: string): Promise<string> {
  const out: string[] = [];
  for await (const r of engine().client.getLogs({ task: { taskId: taskOf(finished, name).id } }))
    out.push(...r.entries.map((e) => Buffer.from(e.data).toString()));
  return out.join("");
}

const stateOf = (finished: FinishedRun, name: string) => TaskState[taskOf(finished, name).state];

/** Command lines of the host's processes carrying `marker`. */
function hostProcessesWith(marker: string): string[] {
  return execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(marker));
}

/** Waits up to `withinMs` for no host process to carry `marker`; returns what is still there. */
async function survivors(marker: string, withinMs: number): Promise<string[]> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const left = hostProcessesWith(marker);
    if (left.length === 0 || performance.now() > deadline) return left;
    await sleep(50);
  }
}

/** The sidecars' task-cgroup parents (`taskframe-<instance>`) in every hierarchy mounted under /sys/fs/cgroup. */
function taskCgroupParents(): string[] {
  const parents: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      if (entry.name.startsWith("taskframe-")) parents.push(join(dir, entry.name));
      else if (depth < 5) walk(join(dir, entry.name), depth + 1);
    }
  };
  walk("/sys/fs/cgroup", 0);
  return parents;
}

/** The task's cgroup directories still on the host, in any controller. */
function cgroupsLeft(t: Task): string[] {
  const name = `t-${t.id}-${t.attempt}`;
  return taskCgroupParents()
    .map((parent) => join(parent, name))
    .filter((dir) => existsSync(dir));
}

async function listen(path: string): Promise<void> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  servers.push(server);
  await chmod(path, 0o777);
}

describe("a jailed task (standard profile, run as nobody)", () => {
  jailed(
    "cannot read secrets, gain privileges, see or trace the host's processes, or reach hidden sockets",
    async () => {
      const marker = token();
      await copyFile(PROBE, join(workDir, "escape_probe.py"));
      // a setuid-root copy of id: were setuid honoured, it would report euid 0
      const setuidId = join(workDir, "id-setuid");
      await copyFile("/usr/bin/id", setuidId);
      await chmod(setuidId, 0o4755);
      expect((await stat(setuidId)).mode & 0o7777).toBe(0o4755);
      // sockets anyone could connect to, were they visible: in /run and in the engine's data directory
      // (which is inside the working directory)
      expect(engine().engine.dataDir.startsWith(`${workDir}/`)).toBe(true);
      expect((await stat(engine().engine.dataDir)).mode & 0o005).toBe(0o005);
      const runDir = join("/run", `taskframe-jail-test-${marker}`);
      await mkdir(runDir, { mode: 0o755 });
      cleanup.push(runDir);
      const hiddenInRun = join(runDir, "s.sock");
      const hiddenInData = join(engine().engine.dataDir, `escape-${marker}.sock`);
      const control = join(workDir, `control-${marker}.sock`);
      for (const path of [hiddenInRun, hiddenInData, control]) await listen(path);

      // the warm-up task started the spawner helper, the tasks' parent
      const spawnerPid = engine().engine.spawnerPid ?? 0;
      expect(spawnerPid).toBeGreaterThan(0);
      const finished = await run("escape", [
        task("probe", PYTHON, [
          "escape_probe.py",
          String(process.pid),
          String(spawnerPid),
          hiddenInRun,
          hiddenInData,
          "--",
          control,
          setuidId,
          marker,
        ]),
      ]);
      const logs = await logsOf(finished, "probe");
      expect(stateOf(finished, "probe"), logs).toBe("SUCCEEDED");
      const line = logs.split("\n").find((l) => l.startsWith("RESULT "));
      expect(line, logs).toBeDefined();
      const r = JSON.parse(line!.slice("RESULT ".length));

      expect(r.uid).toEqual([NOBODY, NOBODY, NOBODY]);
      expect(r.shadow).toBe("EACCES");
      expect(r.setuid_euid).toBe(String(NOBODY));
      // the sidecar (this process) and the spawner: not in the task's pid namespace
      expect(r.ptrace_sidecar).not.toBe("ok");
      expect(r.proc_sidecar_visible).toBe(false);
      expect(r.ptrace_spawner).not.toBe("ok");
      expect(r.proc_spawner_visible).toBe(false);
      // absent inside, though reachable by anyone on the host: hidden, not merely forbidden
      expect(r.hidden_sockets).toEqual({ [hiddenInRun]: "ENOENT", [hiddenInData]: "ENOENT" });
      expect(readdirSync(engine().engine.dataDir).length).toBeGreaterThan(1);
      expect(r.hidden_dirs[engine().engine.dataDir]).toEqual([]);
      // the probe can connect where the jail lets it: the failures above are the jail's
      expect(r.control_socket).toBe("ok");
      expect(r.mount_syscall).toBe("EPERM");
      expect(r.mount_command).not.toBe(0);
      expect(["EROFS", "EACCES"]).toContain(r.cgroup_mkdir);
      expect(["EROFS", "EACCES"]).toContain(r.cgroup_write);
      expect(existsSync(`/sys/fs/cgroup/pids/escape-${marker}`)).toBe(false);
      expect(["EROFS", "EACCES"]).toContain(r.etc_write);
      expect(r.unshare_user).not.toBe(0);
      expect(r.keyctl).toBe("EPERM");
      expect(r.io_uring_setup).toBe("EPERM");
      expect(r.status).toMatchObject({ NoNewPrivs: "1", Seccomp: "2", CapEff: "0000000000000000" });
      expect(r.status.CapPrm).toBe("0000000000000000");
      // stdin, stdout, stderr and nothing else (no seccomp fd 3, no sidecar pipe or socket)
      expect(Object.keys(r.fds).sort(), JSON.stringify(r.fds)).toEqual(["0", "1", "2"]);
      // bwrap's init, the probe: a handful, none of the host's
      expect(Object.keys(r.procs).length, JSON.stringify(r.procs)).toBeLessThanOrEqual(3);
      for (const pid of Object.keys(r.procs)) expect(Number(pid)).toBeLessThan(10);
      expect(r.hostname).not.toBe(hostname());
      expect(r.hostname).toBe("embedded");
      expect(r.root_listing).toEqual([]);
    },
  );

  jailed("is OOM-killed at LimitMem while a sibling in the same run succeeds", async () => {
    const finished = await run("memory-bomb", [
      python("bomb", "b = b'x' * (256 << 20)\nprint('allocated', len(b), flush=True)", {
        limits: limits({ memoryBytes: 64n << 20n }),
      }),
      sh("sibling", "sleep 1; echo ok"),
    ]);
    const bomb = taskOf(finished, "bomb");
    const bombLogs = await logsOf(finished, "bomb");
    expect(stateOf(finished, "bomb"), bombLogs).toBe("FAILED");
    expect(bombLogs).not.toContain("allocated");
    expect(stateOf(finished, "sibling")).toBe("SUCCEEDED");
    expect(await logsOf(finished, "sibling")).toContain("ok\n");
    // they ran at the same time: the sibling started before the bomb was killed
    expect(startedAt(taskOf(finished, "sibling"))).toBeLessThanOrEqual(finishedAt(bomb));
    expect(cgroupsLeft(bomb)).toEqual([]);
    // the kernel's OOM kill, told apart from any other SIGKILL
    expect(bomb.detail, bombLogs).toMatch(/; oom_killed: the task reached its memory limit/);
  });

  jailed("cannot fork past LimitPids, and nothing of it is left on the host afterwards", async () => {
    const marker = sleepMarker();
    const bomb = [
      "import subprocess, time",
      "started = failed = 0",
      "for _ in range(200):",
      "    try:",
      `        subprocess.Popen(['sleep', '${marker}'])`,
      "        started += 1",
      "    except OSError:",
      "        failed += 1",
      "print(f'started={started} failed={failed}', flush=True)",
      "time.sleep(30)",
    ].join("\n");
    const finished = await run("fork-bomb", [
      python("bomb", bomb, { limits: limits({ pids: 32 }), timeoutMs: 3_000n }),
    ]);
    const logs = await logsOf(finished, "bomb");
    expect(["FAILED", "TIMED_OUT"], logs).toContain(stateOf(finished, "bomb"));
    const counts = /started=(\d+) failed=(\d+)/.exec(logs);
    expect(counts, logs).not.toBeNull();
    expect(Number(counts![1])).toBeLessThan(32);
    expect(Number(counts![2])).toBeGreaterThan(200 - 32);
    expect(hostProcessesWith(marker)).toEqual([]);
    expect(cgroupsLeft(taskOf(finished, "bomb"))).toEqual([]);
  });

  jailed("writes to a private /tmp of LimitDisk, not the host's", async () => {
    const name = `big-${token()}`;
    const finished = await run("disk", [
      sh("fill", `dd if=/dev/zero of=/tmp/${name} bs=1M count=20 2>&1; echo "dd exit $?"`, {
        limits: limits({ diskBytes: 8n << 20n }),
      }),
    ]);
    const logs = await logsOf(finished, "fill");
    expect(stateOf(finished, "fill"), logs).toBe("SUCCEEDED");
    expect(logs).toContain("No space left on device");
    expect(logs).toMatch(/dd exit [1-9]/);
    expect(existsSync(join(tmpdir(), name))).toBe(false);
    expect(existsSync(join(workDir, name))).toBe(false);
  });

  jailed("times out with its double-forked grandchildren, which are all gone within 2 s", async () => {
    const marker = sleepMarker();
    const finished = await run("timeout", [
      sh(
        "stuck",
        `(setsid sh -c 'sleep ${marker}' &); setsid sh -c 'sleep ${marker}' & echo started; sleep 30`,
        {
          timeoutMs: 1_000n,
        },
      ),
    ]);
    const logs = await logsOf(finished, "stuck");
    expect(stateOf(finished, "stuck"), logs).toBe("TIMED_OUT");
    expect(logs).toContain("started");
    expect(await survivors(marker, 2_000)).toEqual([]);
    expect(cgroupsLeft(taskOf(finished, "stuck"))).toEqual([]);
  });

  jailed("succeeds when it exits 0, and the daemon it left behind is gone when it ends", async () => {
    const marker = sleepMarker();
    const finished = await run("daemon", [
      sh("spawns-daemon", `(setsid sh -c 'sleep ${marker}' >/dev/null 2>&1 &); sleep 0.3; exit 0`),
    ]);
    const logs = await logsOf(finished, "spawns-daemon");
    expect(stateOf(finished, "spawns-daemon"), logs).toBe("SUCCEEDED");
    // the attempt ends only once nothing of it runs: no grace period here
    expect(hostProcessesWith(marker)).toEqual([]);
    expect(cgroupsLeft(taskOf(finished, "spawns-daemon"))).toEqual([]);
  });

  jailed("gets no more CPU than LimitCPU= allows", async () => {
    // two seconds of a busy loop: a quarter of a CPU allows half a second of CPU time
    const busy =
      "import time\nend = time.monotonic() + 2\nwhile time.monotonic() < end: pass\nprint(time.process_time())";
    const finished = await run("cpu", [python("busy", busy, { limits: limits({ cpuMillis: 250 }) })]);
    const logs = await logsOf(finished, "busy");
    expect(stateOf(finished, "busy"), logs).toBe("SUCCEEDED");
    const cpuSeconds = Number(logs.trim());
    expect(cpuSeconds).toBeGreaterThan(0.2);
    expect(cpuSeconds).toBeLessThan(0.7);
  });

  jailed("runs its [Checks] in the same jail, before the command", async () => {
    const finished = await run("checks", [
      sh("checked", "echo command ran", {
        checks: [
          {
            name: "account",
            command: "/bin/sh",
            args: ["-c", "echo check as $(id -u); test ! -r /etc/shadow"],
          },
        ],
      }),
    ]);
    const logs = await logsOf(finished, "checked");
    expect(stateOf(finished, "checked"), logs).toBe("SUCCEEDED");
    expect(logs).toBe("check as 65534\ncommand ran\n");
  });

  jailed("runs as the User= and Group= asked for; an unknown user or root is CHECK_FAILED", async () => {
    const missing = `no-such-user-${token()}`;
    const finished = await run("accounts", [
      sh("as-nobody", 'echo "uid=$(id -u) gid=$(id -g)"', { user: "nobody", group: "nogroup" }),
      sh("unknown", "echo ran", { user: missing }),
      sh("as-root", "echo ran", { user: "root" }),
    ]);
    expect(stateOf(finished, "as-nobody")).toBe("SUCCEEDED");
    expect(await logsOf(finished, "as-nobody")).toContain(`uid=${NOBODY} gid=${NOBODY}\n`);
    expect(stateOf(finished, "unknown")).toBe("CHECK_FAILED");
    expect(taskOf(finished, "unknown").detail).toContain(missing);
    expect(await logsOf(finished, "unknown")).not.toContain("ran");
    expect(stateOf(finished, "as-root")).toBe("CHECK_FAILED");
    expect(taskOf(finished, "as-root").detail).toMatch(/User=root: a jailed task cannot run as root/);
    expect(await logsOf(finished, "as-root")).not.toContain("ran");
  });

  jailed("under Jail=strict sees no /etc/passwd, no /root and no network but loopback", async () => {
    const script = [
      'if [ -e /etc/passwd ]; then echo "passwd: present"; else echo "passwd: absent"; fi',
      "echo \"ifaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')\"",
      'if [ -e /root ]; then echo "root: $(ls -A /root | wc -l) entries"; else echo "root: absent"; fi',
    ].join("\n");
    const finished = await run("strict", [sh("strict", script, { jail: "strict" }), sh("standard", script)]);
    const strict = await logsOf(finished, "strict");
    expect(stateOf(finished, "strict"), strict).toBe("SUCCEEDED");
    expect(strict).toContain("passwd: absent\n");
    expect(strict).toContain("ifaces: lo \n");
    expect(strict).toMatch(/root: (absent|0 entries)\n/);
    // the same script under the pool's standard profile: the differences are the strict jail's
    const standard = await logsOf(finished, "standard");
    expect(standard).toContain("passwd: present\n");
  });

  jailed("with PrivateNetwork= cannot reach 127.0.0.1:5432, which it reaches without", async () => {
    const probe = [
      "import socket",
      "s = socket.socket(); s.settimeout(1)",
      "try:",
      "    s.connect(('127.0.0.1', 5432)); print('connect: ok')",
      "except OSError as e:",
      "    print('connect:', type(e).__name__)",
    ].join("\n");
    const finished = await run("network", [
      python("private", probe, { privateNetwork: true }),
      python("shared", probe),
    ]);
    const priv = await logsOf(finished, "private");
    const shared = await logsOf(finished, "shared");
    expect(stateOf(finished, "private"), priv).toBe("SUCCEEDED");
    expect(priv).toMatch(/connect: (ConnectionRefusedError|OSError|TimeoutError)/);
    expect(shared).toContain("connect: ok\n");
  });

  jailed("shares TASKFRAME_RUN_DIR between the tasks of a run, each with its own empty /tmp", async () => {
    const file = `shared-${token()}`;
    const listTmp = `echo "tmp: [$(ls -A /tmp | tr '\\n' ' ')]"`;
    const finished = await run("run-dir", [
      sh(
        "writer",
        `${listTmp}; echo "hello ${file}" > "$TASKFRAME_RUN_DIR/${file}"; echo mine > /tmp/${file}; echo "dir: $TASKFRAME_RUN_DIR"`,
      ),
      sh("reader", `cat "$TASKFRAME_RUN_DIR/${file}"; ${listTmp}`, { needs: ["writer"] }),
    ]);
    const writer = await logsOf(finished, "writer");
    const reader = await logsOf(finished, "reader");
    expect(finished.run.state, `${writer}\n${reader}`).toBe(RunState.SUCCEEDED);
    expect(writer).toContain("dir: /run/taskframe/work\n");
    expect(reader).toContain(`hello ${file}\n`);
    // a fresh tmpfs each: nothing but the mount points bwrap made in it for paths under the host's /tmp
    // (the working directory, made in tmpdir() by this test; Taskframe's own files, in a checkout there)
    const mountPoints = [workDir, packagePath(".")]
      .filter((path) => dirname(path) === tmpdir())
      .map((path) => basename(path));
    for (const [name, logs] of [
      ["writer", writer],
      ["reader", reader],
    ] as const) {
      const listed = /tmp: \[(.*)\]/.exec(logs)?.[1]?.split(" ").filter(Boolean);
      expect(listed, `${name}: ${logs}`).toBeDefined();
      expect(
        listed!.filter((entry) => !mountPoints.includes(entry)),
        `${name}: ${logs}`,
      ).toEqual([]);
    }
    expect(existsSync(join(tmpdir(), file))).toBe(false);
    // on the host: in the sidecar's runs directory, under the run's id
    const runsDir = engine().engine.jail?.policy.runDirs?.base;
    expect(runsDir).toBeDefined();
    expect(readFileSync(join(runsDir!, finished.run.id, file), "utf8")).toBe(`hello ${file}\n`);
  });

  jailed("is CHECK_FAILED when nobody cannot reach its working directory", async () => {
    const closed = await mkdtemp(join(tmpdir(), "taskframe-jail-closed-"));
    cleanup.push(closed);
    const finished = await run("unreachable", [sh("closed", "echo ran", {}, closed)]);
    expect(stateOf(finished, "closed")).toBe("CHECK_FAILED");
    expect(taskOf(finished, "closed").detail).toBe(
      `user nobody cannot reach the working directory ${closed}: ${closed} is mode 0700 (make it reachable, set User=, or run the pool with --jail none)`,
    );
    expect(await logsOf(finished, "closed")).not.toContain("ran");
  });
});

describe("a jailed worker pool", () => {
  jailed(
    "serves handlers from the pool's jail, as its User= and under its LimitPids=, through task run",
    async () => {
      const data = await mkdtemp(join(tmpdir(), "taskframe-jailed-pool-"));
      cleanup.push(data);
      const result = await taskCli(
        ["run", "test/fixtures/jail/worker/pipeline.yaml", "--data", data, "--jail", "standard", "-q"],
        { cwd: packagePath(".") },
      );
      expect(result.code, result.stderr).toBe(0);
      const logs = (
        await taskCli(["logs", "probe", "--data", data], { cwd: packagePath(".") })
      ).stdout.toString();
      const line = logs.split("\n").find((l) => l.startsWith("REPORT "));
      expect(line, logs).toBeDefined();
      const report = JSON.parse(line!.slice("REPORT ".length)) as Record<string, unknown>;
      expect(report).toMatchObject({
        uid: 65534,
        no_new_privs: "1",
        seccomp: "2",
        cap_eff: "0000000000000000",
        reads_shadow: false,
        socket: "/run/taskframe/runner.sock",
      });
      // 60 children asked for under pids.max 32 (python and the jail's init count too)
      expect(report.forks_refused).toBeGreaterThanOrEqual(28);
      expect(report.forks_refused).toBeLessThan(60);
    },
  );
});

describe("a task sidecar process", () => {
  jailed("jails executables by default (auto), as a distributed sidecar on NATS and Postgres", async () => {
    await using cluster = await startCluster({ sidecars: 1, jail: "auto" });
    const finished = await runToEnd(
      cluster.client(),
      runSpec("distributed-jail", [
        sh(
          "probe",
          "id -u; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; cat /etc/shadow || echo no-shadow",
        ),
      ]),
    );
    const probe = finished.tasks.get("probe")!;
    let logs = "";
    for await (const r of cluster.client().getLogs({ task: { taskId: probe.id } }))
      logs += r.entries.map((e) => Buffer.from(e.data).toString()).join("");
    expect(probe.state, logs).toBe(TaskState.SUCCEEDED);
    expect(logs).toMatch(/^65534\nNoNewPrivs:\s+1\nSeccomp:\s+2\n/);
    expect(logs).toContain("no-shadow");
  });
});
