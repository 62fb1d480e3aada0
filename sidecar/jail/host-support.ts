import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { packageRoot } from "../../core/package-root.js";
import { isExecutable } from "../spawner/spawner.js";
import { AccountResolver } from "./accounts.js";
import { type CgroupLayout, detectCgroupLayout } from "./cgroup-layout.js";
import { blockingDirectory } from "./reachable.js";

const run = promisify(execFile);

export const NAMESPACES = ["pid", "mnt", "ipc", "uts", "net", "user", "cgroup"] as const;
export type Namespace = (typeof NAMESPACES)[number];

/** What this host offers a jail; `task doctor` prints it, the sidecar decides from it. */
export interface HostSupport {
  root: boolean;
  /** bubblewrap on PATH (or /usr/bin/bwrap). */
  bwrap?: { path: string; version: string };
  /** Kernel namespaces this kernel has (/proc/self/ns). */
  namespaces: Record<Namespace, boolean>;
  /** An unprivileged user can create a user namespace (what bwrap needs when not setuid). */
  unprivilegedUserNamespaces: boolean;
  cgroups?: CgroupLayout;
  /** The native spawner helper is built: it joins cgroups and switches accounts between fork and exec. */
  nativeSpawner: boolean;
  /** libseccomp can compile the jail's syscall filter. */
  seccomp: boolean;
  /**
   * When root: the first directory on the way to Taskframe's own files (the
   * `task` command jailed tasks call, the SDKs) that the default task
   * account cannot pass, if any; bubblewrap binds paths as that account.
   */
  packageBlockedAt?: { dir: string; mode: number; user: string };
}

export interface ProbeOptions {
  nativeSpawner: boolean;
  /** Compiles the seccomp filter to the given path; rejects when it cannot. */
  writeSeccompFilter?: (path: string) => Promise<void>;
  seccompFilterPath?: string;
  /** The account jailed tasks run as by default (when root): Taskframe's files must be reachable by it. */
  defaultUser?: string;
}

export async function probeHost(options: ProbeOptions): Promise<HostSupport> {
  const bwrapPath = findOnPath("bwrap") ?? (isExecutable("/usr/bin/bwrap") ? "/usr/bin/bwrap" : undefined);
  let bwrap: HostSupport["bwrap"];
  if (bwrapPath) {
    try {
      const { stdout } = await run(bwrapPath, ["--version"]);
      bwrap = { path: bwrapPath, version: stdout.trim().replace(/^bubblewrap\s*/, "") };
    } catch {
      // a bwrap that cannot say its version cannot be trusted to jail
    }
  }
  const namespaces = Object.fromEntries(
    NAMESPACES.map((ns) => [ns, existsSync(`/proc/self/ns/${ns}`)]),
  ) as Record<Namespace, boolean>;
  let seccomp = false;
  if (options.writeSeccompFilter && options.seccompFilterPath) {
    seccomp = await options.writeSeccompFilter(options.seccompFilterPath).then(
      () => true,
      () => false,
    );
  }
  const cgroups = detectCgroupLayout();
  const root = process.getuid?.() === 0;
  let packageBlockedAt: HostSupport["packageBlockedAt"];
  if (root && options.defaultUser) {
    const account = await new AccountResolver()
      .resolve(options.defaultUser, undefined, hostname())
      .catch(() => undefined);
    const blocked = account && blockingDirectory(packageRoot, account);
    if (blocked) packageBlockedAt = { ...blocked, user: account.user };
  }
  return {
    ...(packageBlockedAt ? { packageBlockedAt } : {}),
    root,
    ...(bwrap ? { bwrap } : {}),
    namespaces,
    unprivilegedUserNamespaces: unprivilegedUserNamespaces(),
    ...(cgroups ? { cgroups } : {}),
    nativeSpawner: options.nativeSpawner,
    seccomp,
  };
}

/** Why the standard and strict profiles cannot run here; empty when they can. */
export function jailProblems(support: HostSupport): string[] {
  const problems: string[] = [];
  if (!support.bwrap)
    problems.push("bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)");
  for (const ns of ["pid", "mnt", "ipc", "uts", "net", "user"] as const)
    if (!support.namespaces[ns]) problems.push(`the kernel has no ${ns} namespaces`);
  if (!support.unprivilegedUserNamespaces)
    problems.push(
      "unprivileged user namespaces are disabled (sysctl user.max_user_namespaces / kernel.unprivileged_userns_clone)",
    );
  if (!support.nativeSpawner)
    problems.push("the native spawner helper is not built (it needs a C compiler at npm install)");
  if (!support.seccomp) problems.push("libseccomp2 is missing: the syscall filter cannot be compiled");
  const blocked = support.packageBlockedAt;
  if (blocked)
    problems.push(
      `user ${blocked.user} cannot reach Taskframe's own files at ${packageRoot} (${blocked.dir} is mode ${blocked.mode.toString(8).padStart(4, "0")}): install it where every user can read it`,
    );
  if (support.root && !support.cgroups?.dirs.pids)
    problems.push("no pids cgroup controller is mounted: a fork bomb could not be contained");
  return problems;
}

function unprivilegedUserNamespaces(): boolean {
  const max = readNumber("/proc/sys/user/max_user_namespaces");
  if (max !== undefined && max <= 0) return false;
  // Debian and Ubuntu kernels gate them behind this sysctl
  const clone = readNumber("/proc/sys/kernel/unprivileged_userns_clone");
  if (clone === 0) return false;
  const apparmor = readNumber("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  return apparmor !== 1;
}

function readNumber(path: string): number | undefined {
  try {
    return Number(readFileSync(path, "utf8").trim());
  } catch {
    return undefined;
  }
}

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, command);
    if (isExecutable(path)) return path;
  }
  return undefined;
}
