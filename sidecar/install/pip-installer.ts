/** pip requirements, installed into a virtual environment at `<set>/venv`. */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runInstallCommand } from "./install-command.js";
import type { Exposure, InstallerContext } from "./installer.js";

// Settings that would send pip's files somewhere other than the venv, or make Python look elsewhere.
const NOT_PASSED_ON = [
  "PYTHONHOME",
  "PYTHONPATH",
  "VIRTUAL_ENV",
  "PIP_USER",
  "PIP_TARGET",
  "PIP_PREFIX",
  "PIP_ROOT",
];

export async function installPip(
  requirements: readonly string[],
  python: string,
  context: InstallerContext,
): Promise<Exposure> {
  const venv = join(context.setDir, "venv");
  const env = { ...context.env };
  for (const name of NOT_PASSED_ON) delete env[name];
  const run = {
    ecosystem: "pip" as const,
    env,
    cwd: context.setDir,
    log: context.log,
    signal: context.signal,
  };
  await runInstallCommand({ ...run, command: python, args: ["-m", "venv", venv] });
  await runInstallCommand({
    ...run,
    command: join(venv, "bin", "python"),
    // wheels only: building a source distribution runs its setup.py as the sidecar's user (root, often)
    args: [
      "-m",
      "pip",
      "install",
      "--disable-pip-version-check",
      "--no-input",
      "--only-binary=:all:",
      ...requirements,
    ],
  });
  const prefix = await basePrefix(venv);
  return {
    env: { VIRTUAL_ENV: venv },
    pathPrepend: [join(venv, "bin")],
    readOnlyPaths: prefix ? [prefix] : [],
  };
}

/**
 * The base interpreter's installation (`/usr` for /usr/bin/python3): the venv's
 * python is a symbolic link to it and its standard library lives there, so a
 * jail needs it too. From pyvenv.cfg's `home`, the directory of that python.
 */
async function basePrefix(venv: string): Promise<string | undefined> {
  const config = await readFile(join(venv, "pyvenv.cfg"), "utf8").catch(() => "");
  const home = /^home\s*=\s*(.+?)\s*$/m.exec(config)?.[1];
  return home ? dirname(home) : undefined;
}
