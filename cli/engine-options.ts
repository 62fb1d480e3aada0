import type { WorkerPoolSpec } from "../core/definitions/worker-pools.js";
import { createLogger } from "../core/logger.js";
import type { EmbeddedOptions } from "../embedded/engine.js";
import { DEFAULT_ADMISSION, loadPoolPolicy } from "../hub/admission.js";
import type { JailConfig } from "../sidecar/jail/jail-config.js";
import { dataDirOf } from "./options.js";

/** The options of the commands that run an embedded engine in the foreground (`task run`, `task dev`). */
export interface EngineCommandOptions {
  data: string;
  slots?: number;
  jail?: JailConfig["profile"];
  jailUser?: string;
  /** `--pool-policy FILE`: what a task may ask for, per pool (hub/admission.ts). */
  poolPolicy?: string;
}

/** The engine those options ask for, with the worker pools its definitions declare. */
export function engineOptionsOf(
  options: EngineCommandOptions,
  workerPools: readonly WorkerPoolSpec[],
): EmbeddedOptions {
  return {
    dataDir: dataDirOf(options),
    workerPools,
    ...(options.slots ? { slots: options.slots } : {}),
    jail: {
      ...(options.jail ? { profile: options.jail } : {}),
      ...(options.jailUser ? { defaultUser: options.jailUser } : {}),
    },
    logger: createLogger("taskframe", "warn"),
    ...(options.poolPolicy
      ? { admission: { ...DEFAULT_ADMISSION, pools: loadPoolPolicy(options.poolPolicy) } }
      : {}),
  };
}
