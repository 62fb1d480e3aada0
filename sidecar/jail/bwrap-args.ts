import { existsSync, lstatSync, readlinkSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";

export type JailProfile = "none" | "standard" | "strict";

/** What one jailed process sees; paths are host paths, mounted at the same place inside. */
export interface JailView {
  profile: Exclude<JailProfile, "none">;
  /** Read-write: the task's working directory. */
  cwd: string;
  /** Size of the private /tmp (the task's scratch). */
  tmpBytes: bigint;
  privateNetwork: boolean;
  /** Hidden behind an empty tmpfs, even inside the working directory: the sidecar's state (ledger, data). */
  hidden: readonly string[];
  /** Visible read-only even when under a hidden path: installed dependencies, the `task` command. */
  readOnly: readonly string[];
  /** Read-write binds at another path inside: the hub's socket, the run's shared directory. */
  binds: readonly { host: string; inside: string }[];
  hostname: string;
  /** Whether fd 3 carries a compiled seccomp filter. */
  seccomp: boolean;
}

// Where the host keeps credentials and other services' sockets (PostgreSQL's in /run/postgresql).
const HIDDEN_ALWAYS = ["/root", "/run", "/var/run", "/home"];
// What a strict jail sees of the host: programs and libraries, and the few files they need.
const STRICT_SYSTEM = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
const STRICT_ETC = [
  "/etc/ld.so.cache",
  "/etc/ld.so.conf",
  "/etc/ld.so.conf.d",
  "/etc/alternatives",
  "/etc/localtime",
  "/etc/ssl",
  "/etc/ca-certificates",
];

/**
 * bubblewrap's arguments for one process, up to and including `--`. bwrap
 * runs as the task's account (the spawner switched to it), so every
 * namespace comes from an unprivileged user namespace, nested ones are
 * refused (--disable-userns) and no capability survives into the task.
 */
export function bwrapArgs(view: JailView): string[] {
  const args = [
    "--unshare-user",
    "--disable-userns",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    ...(view.privateNetwork ? ["--unshare-net"] : []),
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--hostname",
    view.hostname,
  ];
  if (view.profile === "standard") {
    args.push("--ro-bind", "/", "/");
    for (const path of HIDDEN_ALWAYS) if (isDirectory(path)) args.push("--tmpfs", path);
  } else {
    for (const path of STRICT_SYSTEM) mountSystemPath(args, path);
    for (const path of STRICT_ETC) args.push("--ro-bind-try", path, path);
  }
  args.push("--proc", "/proc", "--dev", "/dev");
  args.push("--perms", "1777", "--size", String(view.tmpBytes), "--tmpfs", "/tmp");
  for (const path of view.readOnly) if (existsSync(path)) args.push("--ro-bind", path, path);
  // the root stays read-only; /tmp as the working directory is the private one
  if (view.cwd !== "/" && view.cwd !== "/tmp") args.push("--bind", view.cwd, view.cwd);
  // after the binds: the sidecar's state stays hidden even inside the working directory
  for (const path of view.hidden) if (isDirectory(path)) args.push("--tmpfs", path);
  for (const bind of view.binds.filter((b) => existsSync(b.host))) {
    args.push("--dir", dirname(bind.inside), "--bind", bind.host, bind.inside);
  }
  args.push("--chdir", view.cwd);
  if (view.seccomp) args.push("--seccomp", "3");
  args.push("--");
  return args;
}

/** Debian's merged /usr makes /bin and /lib symlinks: recreate those, bind the rest. */
function mountSystemPath(args: string[], path: string): void {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (stat.isSymbolicLink()) args.push("--symlink", readlinkSync(path), path);
  else if (stat.isDirectory()) args.push("--ro-bind", path, path);
}

/** The directory of an absolute command, so that a strict jail can run a program outside /usr. */
export function commandDirectory(command: string): string | undefined {
  return isAbsolute(command) ? dirname(command) : undefined;
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}
