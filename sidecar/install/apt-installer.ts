/** Debian packages, installed host-wide: only on pools that allow it (sidecar --allow-apt). */
import { runInstallCommand } from "./install-command.js";
import { InstallError } from "./install-error.js";
import { type Exposure, type InstallerContext, NOTHING_EXPOSED } from "./installer.js";

// dpkg takes one install at a time per host: queue this process's installs, and
// let apt-get wait for another process's (DPkg::Lock::Timeout, in seconds).
let queue: Promise<unknown> = Promise.resolve();
const DPKG_LOCK_TIMEOUT_S = 300;

export function aptNotAllowed(packages: readonly string[]): InstallError {
  return new InstallError(
    `apt packages (${packages.join(", ")}) need a pool that allows host-wide installs (sidecar --allow-apt)`,
    { ecosystem: "apt" },
  );
}

export async function installApt(packages: readonly string[], context: InstallerContext): Promise<Exposure> {
  const install = queue.then(() =>
    runInstallCommand({
      ecosystem: "apt",
      command: "apt-get",
      args: [
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        `DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT_S}`,
        ...packages,
      ],
      env: { ...context.env, DEBIAN_FRONTEND: "noninteractive" },
      cwd: "/",
      log: context.log,
      signal: context.signal,
    }),
  );
  queue = install.catch(() => {});
  await install;
  return NOTHING_EXPOSED;
}
