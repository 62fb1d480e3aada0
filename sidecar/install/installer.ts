/** What every installer (pip, npm, apt, artifacts) is given, and what it gives back. */

export interface InstallerContext {
  /** The set's directory: the final path, since venvs cannot move (see install-cache.ts). */
  setDir: string;
  /** The sidecar's environment, which installers pass on (pip and npm read their index settings from it). */
  env: Record<string, string>;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** How a task reaches what an installer put in place. */
export interface Exposure {
  env: Record<string, string>;
  /** Directories to put before the task's PATH, first one first. */
  pathPrepend: string[];
  /** Directories outside the set's own that a jail must bind read-only for the task to use it. */
  readOnlyPaths: string[];
}

export const NOTHING_EXPOSED: Exposure = { env: {}, pathPrepend: [], readOnlyPaths: [] };

export function mergeExposures(exposures: readonly Exposure[]): Exposure {
  return {
    env: Object.assign({}, ...exposures.map((exposure) => exposure.env)),
    pathPrepend: [...new Set(exposures.flatMap((exposure) => exposure.pathPrepend))],
    readOnlyPaths: [...new Set(exposures.flatMap((exposure) => exposure.readOnlyPaths))],
  };
}
