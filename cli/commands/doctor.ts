import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import pc from "picocolors";
import { errorMessage } from "../../core/errors.js";
import { TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import type { HostSupport } from "../../sidecar/jail/host-support.js";
import type { Jail } from "../../sidecar/jail/jail.js";
import { DEFAULT_JAIL_CONFIG } from "../../sidecar/jail/jail-config.js";
import { openJail } from "../../sidecar/jail/open-jail.js";
import { Spawner, writeSeccompFilter } from "../../sidecar/spawner/spawner.js";
import { ExitCode } from "../cli-error.js";
import { renderTable } from "../render/table.js";

export interface DoctorOptions {
  json?: boolean;
  jailUser?: string;
}

interface Finding {
  what: string;
  ok: boolean;
  detail: string;
}

/**
 * `task doctor`: what this host can enforce for tasks (namespaces, cgroups,
 * bubblewrap, seccomp, accounts), then a jailed `true` started exactly as a
 * sidecar would start it, as proof. Exit 0 when the standard jail and every
 * limit can be enforced, 1 otherwise.
 */
export async function doctorCommand(options: DoctorOptions): Promise<number> {
  const stateDir = await mkdtemp(join(tmpdir(), "taskframe-doctor-"));
  const spawner = new Spawner({ ledgerDir: join(stateDir, "processes") });
  let jail: Jail | undefined;
  try {
    jail = await openJail({
      ...DEFAULT_JAIL_CONFIG,
      ...(options.jailUser ? { defaultUser: options.jailUser } : {}),
      stateDir,
      nativeSpawner: spawner.native,
      writeSeccompFilter,
    });
    const findings = [...hostFindings(jail.support, jail), await smokeTest(jail, spawner)];
    const ok = findings.every((f) => f.ok);
    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({ ok, profile: jail.profile, support: jail.support, findings }, bigintJson, 2)}\n`,
      );
    } else {
      process.stdout.write(`${pc.bold("What this host can enforce for tasks")}\n\n`);
      process.stdout.write(
        `${renderTable(
          ["CHECK", "", "DETAIL"],
          findings.map((f) => [f.what, f.ok ? pc.green("yes") : pc.red("no"), f.detail]),
        )}\n\n`,
      );
      process.stdout.write(
        ok
          ? `${pc.green("✓")} tasks are jailed by default here (profile ${jail.profile}); every limit is enforced\n`
          : `${pc.yellow("!")} default profile here: ${jail.profile}; a task asking for what says "no" above ends CHECK_FAILED, unless its pool allows unenforced limits\n`,
      );
    }
    return ok ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    await spawner.close();
    await jail?.close(true);
    await rm(stateDir, { recursive: true, force: true });
  }
}

function hostFindings(support: HostSupport, jail: Jail): Finding[] {
  const cgroups = support.cgroups;
  const controllers = cgroups ? Object.keys(cgroups.dirs) : [];
  const canUseCgroups = support.root && support.nativeSpawner && cgroups !== undefined;
  const controller = (name: string) => canUseCgroups && controllers.includes(name);
  const cgroupDetail = cgroups
    ? `v${cgroups.version}: ${Object.entries(cgroups.dirs)
        .map(([c, dir]) => `${c} (${dir})`)
        .join(", ")}${support.root ? "" : "; not root: cannot create task cgroups"}`
    : "none mounted";
  const namespaces = Object.entries(support.namespaces);
  return [
    {
      what: "bubblewrap",
      ok: support.bwrap !== undefined,
      detail: support.bwrap
        ? `${support.bwrap.path} ${support.bwrap.version}`
        : "not installed: apt-get install bubblewrap",
    },
    {
      what: "namespaces",
      ok: namespaces.every(([, has]) => has),
      detail: namespaces.map(([ns, has]) => (has ? ns : `no ${ns}`)).join(" "),
    },
    {
      what: "user namespaces",
      ok: support.unprivilegedUserNamespaces,
      detail: support.unprivilegedUserNamespaces
        ? "unprivileged users may create them (bwrap needs this)"
        : "disabled by sysctl or AppArmor",
    },
    {
      what: "seccomp filter",
      ok: support.seccomp,
      detail: support.seccomp ? "compiled with libseccomp" : "libseccomp2 or the native spawner is missing",
    },
    {
      what: "native spawner",
      ok: support.nativeSpawner,
      detail: support.nativeSpawner
        ? "built (joins cgroups, switches accounts)"
        : "not built: needs cc at npm install",
    },
    { what: "cgroups", ok: canUseCgroups, detail: cgroupDetail },
    {
      what: "LimitMem=",
      ok: controller("memory"),
      detail: "memory controller; OOM kills reported as oom_killed",
    },
    {
      what: "LimitPids=",
      ok: controller("pids"),
      detail: "pids controller; on by default (fork bombs stay in their task)",
    },
    { what: "LimitCPU=", ok: controller("cpu"), detail: "cpu controller (CFS quota)" },
    { what: "LimitDisk=", ok: jail.problems.length === 0, detail: "size of the jail's private /tmp (tmpfs)" },
    {
      what: "PrivateNetwork=",
      ok: jail.problems.length === 0 && support.namespaces.net,
      detail: "empty network namespace",
    },
    {
      what: "User=/Group=",
      ok: support.root && support.nativeSpawner,
      detail: support.root
        ? "running as root: tasks can run as any account"
        : "not root: tasks run as this user",
    },
    {
      what: "MaxTime=",
      ok: true,
      detail: "kills the whole task: its process group, cgroup and PID namespace",
    },
    ...jail.problems.map((problem) => ({ what: "jail", ok: false, detail: problem })),
  ];
}

/** Starts `true` in the default jail exactly as a sidecar would: the proof that the jail works here. */
async function smokeTest(jail: Jail, spawner: Spawner): Promise<Finding> {
  if (jail.profile === "none")
    return { what: "jailed task", ok: false, detail: "skipped: no jail on this host" };
  const spec = create(TaskSpecSchema, { name: "doctor" });
  try {
    const attempt = await jail.prepare({ spec, cwd: "/", host: "doctor", key: "doctor", runId: "doctor" });
    try {
      const wrapped = attempt.wrap("true", []);
      const started = performance.now();
      const output: string[] = [];
      const outcome = await spawner.run({
        command: wrapped.command,
        args: wrapped.args,
        env: attempt.env({ PATH: "/usr/bin:/bin" }),
        cwd: "/",
        onOutput: (_, data) => output.push(data.toString()),
        ...(wrapped.confine ? { confine: wrapped.confine } : {}),
      });
      const ms = Math.round(performance.now() - started);
      const ok = outcome.exitCode === 0;
      return {
        what: "jailed task",
        ok,
        detail: ok
          ? `a ${jail.profile} jail ran true as ${attempt.account?.user ?? "this user"} in ${ms} ms`
          : `true failed in the jail: ${outcome.spawnError?.message ?? `exit ${outcome.exitCode}`} ${output.join("").trim()}`,
      };
    } finally {
      await attempt.release();
    }
  } catch (error) {
    return { what: "jailed task", ok: false, detail: errorMessage(error) };
  }
}

function bigintJson(_: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
