import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { packagePath } from "../../core/package-root.js";

/** The native spawner helper is Linux-only; elsewhere its tests are skipped. */
export const nativeSpawnerSupported = process.platform === "linux";

/**
 * Builds the native spawner helper from source into a temporary directory,
 * with the same script `npm install` runs; throws with the compiler's output
 * when it fails. `remove` deletes it.
 */
export function buildNativeSpawner(): { path: string; remove: () => void } {
  const path = join(mkdtempSync(join(tmpdir(), "taskframe-native-spawner-")), "taskframe-spawner");
  const result = spawnSync(
    process.execPath,
    [packagePath("sidecar", "spawner", "native", "build.mjs"), "--out", path],
    { encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`building the native spawner failed:\n${result.stderr}`);
  return { path, remove: () => rmSync(dirname(path), { recursive: true, force: true }) };
}
