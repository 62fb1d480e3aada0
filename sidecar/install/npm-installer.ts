/** npm packages, installed under `<set>/node_modules`. */
import { join } from "node:path";
import { runInstallCommand } from "./install-command.js";
import type { Exposure, InstallerContext } from "./installer.js";

export async function installNpm(specs: readonly string[], context: InstallerContext): Promise<Exposure> {
  await runInstallCommand({
    ecosystem: "npm",
    command: "npm",
    args: [
      "install",
      "--prefix",
      context.setDir,
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      // the sidecar installs as its own user (root, often): no package's scripts run with that
      "--ignore-scripts",
      ...specs,
    ],
    env: context.env,
    cwd: context.setDir,
    log: context.log,
    signal: context.signal,
  });
  const modules = join(context.setDir, "node_modules");
  // NODE_PATH is honoured by require(), not by ESM `import`
  return { env: { NODE_PATH: modules }, pathPrepend: [join(modules, ".bin")], readOnlyPaths: [] };
}
