import { permittedTaskEnv } from "../core/forbidden-env.js";
import type { WorkItem } from "../core/gen/taskframe/v1/messages_pb.js";
import { packagePath } from "../core/package-root.js";
import { taskToken } from "../core/task-token.js";

/**
 * What a task inherits from the sidecar's environment: enough to find
 * programs and behave like a login shell would, and nothing else (no
 * credentials, no NODE_OPTIONS, no LD_PRELOAD).
 */
const INHERITED = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

const FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface TaskEnvironmentOptions {
  /** What the basics are inherited from. @default process.env */
  base?: NodeJS.ProcessEnv;
  /** For `task spawn` from inside the task: the hub's address and the secret that signs its token. */
  hub?: { url: string; taskTokenSecret?: Uint8Array; tlsCa?: string };
  /** Forbidden variables (core/forbidden-env.ts) this sidecar lets tasks set (`--allow-env`). */
  allowEnv?: ReadonlySet<string>;
}

/**
 * The task's whole environment: inherited basics, then the task's own `env`
 * (less what it may not set: `stripped`), then TASKFRAME_* (always ours).
 */
export function taskEnvironment(
  item: WorkItem,
  host: string,
  leaseEpoch: number,
  options: TaskEnvironmentOptions = {},
): { env: Record<string, string>; stripped: string[] } {
  const base = options.base ?? process.env;
  const env: Record<string, string> = { PATH: FALLBACK_PATH };
  for (const name of INHERITED) {
    const value = base[name];
    if (value !== undefined) env[name] = value;
  }
  const exec = item.spec?.target.case === "exec" ? item.spec.target.value : undefined;
  // defence in depth: the hub refuses these at submit unless the pool's policy allows them
  const own = permittedTaskEnv(exec?.env ?? {}, options.allowEnv);
  Object.assign(env, own.env);
  env.TASKFRAME_TASK_ID = item.taskId;
  env.TASKFRAME_TASK_NAME = item.spec?.name ?? "";
  env.TASKFRAME_RUN_ID = item.runId;
  env.TASKFRAME_ATTEMPT = String(item.attempt);
  env.TASKFRAME_HOST = host;
  // which lease this execution holds: results carry it, and tests' ledgers record it
  env.TASKFRAME_LEASE_EPOCH = String(leaseEpoch);
  if (options.hub) {
    // what `task spawn` needs to add children to this attempt (and only this one: the hub fences it)
    env.TASKFRAME_HUB = options.hub.url;
    if (options.hub.tlsCa) env.TASKFRAME_HUB_TLS_CA = options.hub.tlsCa;
    env.TASKFRAME_TASK_TOKEN = taskToken(
      { taskId: item.taskId, attempt: item.attempt, leaseEpoch },
      options.hub.taskTokenSecret,
    );
    // last on PATH, so that a `task` the user installed wins
    env.PATH = `${env.PATH}:${packagePath("bin")}`;
  }
  return { env, stripped: own.stripped };
}
