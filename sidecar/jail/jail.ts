import { accessSync, chmodSync, chownSync, constants } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import type { TaskSpec } from "../../core/gen/taskframe/v1/spec_pb.js";
import { TaskState } from "../../core/states.js";
import type { AttemptResult } from "../outcome.js";
import type { Confinement } from "../process-runner.js";
import { type Account, AccountError, AccountResolver } from "./accounts.js";
import { bwrapArgs, commandDirectory, type JailProfile, type JailView } from "./bwrap-args.js";
import { type HostSupport, jailProblems } from "./host-support.js";
import { blockingDirectory } from "./reachable.js";
import type { RunDirs } from "./run-dirs.js";
import type { CgroupLimits, TaskCgroupRoot, TaskCgroups } from "./task-cgroups.js";

export type { JailProfile } from "./bwrap-args.js";

/** The operator's choice for a pool (sidecar settings); tasks can tighten it, never loosen it. */
export interface JailPolicy {
  /** `auto`: standard where the host supports it, else none (with a warning at start). */
  profile: JailProfile | "auto";
  /** Who runs tasks without `User=` when the sidecar is root. @default "nobody" */
  defaultUser: string;
  /** A limit this host cannot enforce is noted in the task's log instead of failing it. */
  allowUnenforcedLimits: boolean;
  /** Processes per task when the task sets no LimitPids=. */
  defaultPids: number;
  /** Size of a task's private /tmp when it sets no LimitDisk=. */
  defaultTmpBytes: bigint;
  /** Sidecar state hidden from tasks (ledger, sockets, data directory). */
  hidden: readonly string[];
  /** Visible read-only inside every jail (the `task` command's package). */
  readOnly: readonly string[];
  /** Where each run gets a directory its tasks on this host share (TASKFRAME_RUN_DIR). */
  runDirs?: RunDirs;
}

export const JAIL_RANK: Record<JailProfile, number> = { none: 0, standard: 1, strict: 2 };

/** How one attempt runs: every process of it (checks and command) goes through `wrap`. */
export interface JailedAttempt {
  profile: JailProfile;
  account?: Account;
  /** Lines for the task's log before it runs (limits allowed to go unenforced). */
  notes: string[];
  wrap(command: string, args: readonly string[]): { command: string; args: string[]; confine?: Confinement };
  /** Environment changes: HOME and TMPDIR inside the jail, the hub socket's path inside. */
  env(base: Record<string, string>): Record<string, string>;
  /** Reclassifies an ended attempt with what the kernel counted (OOM kill). */
  classify(result: AttemptResult): AttemptResult;
  /** Kills what is left of the attempt and removes its cgroups; the attempt ends after this. */
  release(): Promise<void>;
}

export interface AttemptContext {
  spec: TaskSpec;
  cwd: string;
  host: string;
  /** Unique among running attempts on this sidecar (names the cgroup). */
  key: string;
  runId: string;
  /** The hub's unix socket for `task spawn`, exposed inside the jail. */
  hubSocket?: string;
  /** Extra read-only paths for this attempt (its installed dependencies). */
  readOnly?: readonly string[];
  /** Unix sockets to bind in, read-write, at another path (a worker's Runner socket). */
  sockets?: readonly { host: string; inside: string }[];
}

/** Why an attempt cannot run as asked: the task ends CHECK_FAILED with this. */
export class JailRefusal extends Error {}

const HUB_SOCKET_INSIDE = "/run/taskframe/hub.sock";
const RUN_DIR_INSIDE = "/run/taskframe/work";
const ROOT_USERS = new Set(["root", "0"]);

/**
 * The sidecar's jail: decides per attempt which profile, account and limits
 * apply, refuses what this host or pool cannot honour (CHECK_FAILED, never
 * silently ignored), and turns each process of the attempt into a bwrap
 * command line plus the confinement the spawner applies between fork and exec.
 */
export class Jail {
  readonly profile: JailProfile;
  readonly #accounts = new AccountResolver();

  constructor(
    readonly policy: JailPolicy,
    readonly support: HostSupport,
    private readonly cgroups: TaskCgroupRoot | undefined,
    private readonly seccompFilterPath: string | undefined,
  ) {
    const problems = jailProblems(support);
    if (policy.profile === "auto") {
      // the caller says so where its user will see it (task run, the sidecar's log)
      this.profile = problems.length === 0 ? "standard" : "none";
    } else {
      if (policy.profile !== "none" && problems.length > 0)
        throw new Error(`cannot jail tasks (jail: ${policy.profile}): ${problems.join("; ")}`);
      this.profile = policy.profile;
    }
  }

  /** Problems that keep this host from jailing, for messages. */
  get problems(): string[] {
    return jailProblems(this.support);
  }

  async prepare(context: AttemptContext): Promise<JailedAttempt> {
    const { spec } = context;
    const notes: string[] = [];
    const unenforced = (what: string) => {
      if (!this.policy.allowUnenforcedLimits)
        throw new JailRefusal(`${what}, and this pool does not allow unenforced limits`);
      notes.push(`[taskframe] note: ${what}; not enforced (the pool allows unenforced limits)`);
    };
    const profile = this.#profileFor(spec);
    const jailed = profile !== "none";
    const account = await this.#accountFor(spec, profile, context.host);
    const limits = spec.limits;
    const cgroupLimits: CgroupLimits = {
      memoryBytes: limits?.memoryBytes ?? 0n,
      pids: limits?.pids || this.policy.defaultPids,
      cpuMillis: limits?.cpuMillis ?? 0,
    };
    if (jailed && account) {
      const blocked = blockingDirectory(context.cwd, account);
      if (blocked)
        throw new JailRefusal(
          `user ${account.user} cannot reach the working directory ${context.cwd}: ${blocked.dir} is mode ${blocked.mode.toString(8).padStart(4, "0")} (make it reachable, set User=, or run the pool with --jail none)`,
        );
    }
    const controllers = this.cgroups?.controllers ?? [];
    if (cgroupLimits.memoryBytes > 0n && !controllers.includes("memory")) {
      unenforced("LimitMem= needs the memory cgroup controller, which this sidecar cannot use");
      cgroupLimits.memoryBytes = 0n;
    }
    if (cgroupLimits.cpuMillis > 0 && !controllers.includes("cpu")) {
      unenforced("LimitCPU= needs the cpu cgroup controller, which this sidecar cannot use");
      cgroupLimits.cpuMillis = 0;
    }
    if (!controllers.includes("pids")) {
      if (limits?.pids)
        unenforced("LimitPids= needs the pids cgroup controller, which this sidecar cannot use");
      cgroupLimits.pids = 0;
    }
    if ((limits?.diskBytes ?? 0n) > 0n && !jailed)
      unenforced("LimitDisk= sizes the jail's private /tmp, and this pool runs tasks without a jail");
    if (spec.privateNetwork && !jailed)
      unenforced("PrivateNetwork= needs the jail, and this pool runs tasks without one");
    for (const socket of context.sockets ?? []) {
      const blocked = account && blockingDirectory(socket.host, account);
      if (blocked)
        throw new JailRefusal(
          `user ${account.user} cannot reach ${socket.host}: ${blocked.dir} is mode ${blocked.mode.toString(8).padStart(4, "0")}`,
        );
    }
    // without a jail, a cgroup only when there is something to limit: plain tasks keep the fast path
    const wantCgroups =
      this.cgroups !== undefined &&
      (jailed || cgroupLimits.memoryBytes > 0n || cgroupLimits.cpuMillis > 0 || (limits?.pids ?? 0) > 0);
    const taskCgroups = wantCgroups ? this.cgroups!.create(`t-${context.key}`, cgroupLimits) : undefined;
    const hubBind =
      context.hubSocket &&
      !(profile === "strict" || spec.privateNetwork) &&
      !(account && blockingDirectory(context.hubSocket, account))
        ? [{ host: context.hubSocket, inside: HUB_SOCKET_INSIDE }]
        : [];
    const view: (JailView & { binds: JailView["binds"] }) | undefined = jailed
      ? {
          profile,
          cwd: context.cwd,
          tmpBytes: (limits?.diskBytes ?? 0n) > 0n ? limits!.diskBytes : this.policy.defaultTmpBytes,
          privateNetwork: profile === "strict" || spec.privateNetwork,
          hidden: this.policy.hidden,
          readOnly: [...this.policy.readOnly, ...(context.readOnly ?? [])],
          binds: [...(context.sockets ?? []), ...hubBind],
          hostname: context.host,
          seccomp: this.seccompFilterPath !== undefined,
        }
      : undefined;
    const confine: Confinement | undefined =
      taskCgroups || account || jailed
        ? {
            cgroupProcsFiles: taskCgroups?.procsFiles ?? [],
            ...(jailed && this.seccompFilterPath ? { seccompFilterPath: this.seccompFilterPath } : {}),
            noCoreDumps: jailed,
            ...(account ? { account: { uid: account.uid, gid: account.gid, groups: account.groups } } : {}),
          }
        : undefined;
    const cgroups = taskCgroups;
    const runDir = this.policy.runDirs?.dirFor(context.runId);
    if (view && runDir) view.binds = [...view.binds, { host: runDir, inside: RUN_DIR_INSIDE }];
    return {
      profile,
      ...(account ? { account } : {}),
      notes,
      wrap: (command, args) => {
        if (!view) return { command, args: [...args], ...(confine ? { confine } : {}) };
        const commandDir = profile === "strict" ? commandDirectory(command) : undefined;
        const withCommand = commandDir ? { ...view, readOnly: [...view.readOnly, commandDir] } : view;
        return {
          command: this.support.bwrap!.path,
          args: [...bwrapArgs(withCommand), command, ...args],
          confine,
        };
      },
      env: (base) => {
        const env: Record<string, string> = { ...base };
        if (runDir) env.TASKFRAME_RUN_DIR = view ? RUN_DIR_INSIDE : runDir;
        if (account) Object.assign(env, { USER: account.user, LOGNAME: account.user });
        if (!view) return env;
        Object.assign(env, { TMPDIR: "/tmp", TASKFRAME_SCRATCH: "/tmp" });
        if (account) env.HOME = "/tmp";
        if (view.binds.some((b) => b.inside === HUB_SOCKET_INSIDE) && env.TASKFRAME_HUB?.startsWith("unix:"))
          env.TASKFRAME_HUB = `unix:${HUB_SOCKET_INSIDE}`;
        return env;
      },
      classify: (result) => classifyWithCgroups(result, cgroups, cgroupLimits),
      release: async () => {
        await cgroups?.destroy();
      },
    };
  }

  /**
   * Where this sidecar's sockets for jailed processes go when its own
   * directories may be out of their reach (embedded mode keeps its data in
   * the user's directory): the runs' base, which every account can pass.
   */
  get socketDir(): string | undefined {
    return this.profile === "none" ? undefined : this.policy.runDirs?.base;
  }

  /**
   * Lets jailed processes connect to a socket of the sidecar's (the Runner
   * socket for workers, the hub's for `task spawn`): group-owned by the
   * default task account's group, mode 0660, rather than open to every
   * local user.
   */
  async shareSocket(path: string, host: string): Promise<void> {
    if (this.profile === "none" || !this.support.root) return;
    const account = await this.#accounts.resolve(this.policy.defaultUser, undefined, host);
    chownSync(path, 0, account.gid);
    chmodSync(path, 0o660);
  }

  /** Removes this sidecar's cgroups; with `runsEnd`, the runs' shared directories too (embedded mode). */
  async close(runsEnd: boolean): Promise<void> {
    this.policy.runDirs?.close(runsEnd);
    await this.cgroups?.close();
  }

  #profileFor(spec: TaskSpec): JailProfile {
    const asked = spec.jail as JailProfile | "";
    if (!asked || JAIL_RANK[asked] === undefined) return this.profile;
    if (JAIL_RANK[asked] <= JAIL_RANK[this.profile]) return this.profile;
    if (this.profile === "none" && this.problems.length > 0)
      throw new JailRefusal(`Jail=${asked} cannot be honoured on this host: ${this.problems.join("; ")}`);
    return asked;
  }

  async #accountFor(spec: TaskSpec, profile: JailProfile, host: string): Promise<Account | undefined> {
    const root = this.support.root;
    const user = spec.user || (root && profile !== "none" ? this.policy.defaultUser : "");
    if (!user) {
      if (spec.group) throw new JailRefusal(`Group=${spec.group} needs User= as well`);
      return undefined;
    }
    if (!root) {
      const self = process.env.USER ?? "";
      if (user === self || user === String(process.getuid?.())) return undefined;
      throw new JailRefusal(
        `User=${user}: this sidecar does not run as root, so tasks run as ${self || "its user"}`,
      );
    }
    if (ROOT_USERS.has(user) && profile !== "none")
      throw new JailRefusal(`User=${user}: a jailed task cannot run as root (the pool's jail is ${profile})`);
    try {
      return await this.#accounts.resolve(user, spec.group || undefined, host);
    } catch (error) {
      if (error instanceof AccountError) throw new JailRefusal(error.message);
      throw error;
    }
  }
}

function classifyWithCgroups(
  result: AttemptResult,
  cgroups: TaskCgroups | undefined,
  limits: CgroupLimits,
): AttemptResult {
  if (!cgroups || result.state !== TaskState.FAILED) return result;
  const report = cgroups.report();
  if (report.oomKills > 0) {
    const detail = `oom_killed: the task reached its memory limit (LimitMem=${limits.memoryBytes} bytes)`;
    const ended = result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode}`;
    return { ...result, detail, systemLine: `[taskframe] ${detail}; ${ended}` };
  }
  return result;
}

/** The cgroup name for an attempt: unique while it runs. */
export const attemptKey = (taskId: string, attempt: number): string => `${taskId}-${attempt}`;

/**
 * Whether `command` cannot be found as the jail would look for it (PATH of
 * the task's environment, relative to its working directory): bwrap would
 * only say so on stderr with exit code 1, so the sidecar reports it as the
 * spawn error it is.
 */
export function commandMissing(command: string, cwd: string, path: string | undefined): boolean {
  const candidates = command.includes("/")
    ? [resolve(cwd, command)]
    : (path ?? "")
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(resolve(cwd, dir), command));
  return !candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.F_OK);
      return true;
    } catch {
      return false;
    }
  });
}
