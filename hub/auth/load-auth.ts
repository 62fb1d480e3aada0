import type { HubConfig } from "../../core/config.js";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import { loadTaskTokenSecret } from "../../core/task-token.js";
import type { AuthSettings } from "./authenticator.js";
import { loadJwtKeys } from "./jwt.js";
import { loadTokensFile } from "./tokens-file.js";

/**
 * The hub's auth settings from its flags, checked at start; undefined when
 * none is given (protected mode). With auth, the task token secret is required:
 * a hub that checks callers must not take forgeable task tokens.
 */
export function loadAuthSettings(config: HubConfig): AuthSettings | undefined {
  const tokensFile = config["auth-tokens"];
  const jwt = loadJwtKeys(config["auth-jwt-secret-file"], config["auth-jwt-public-key"]);
  const taskTokenSecret = loadTaskTokenSecret(config["task-token-secret-file"]);
  if (!tokensFile && !jwt.secret && !jwt.publicKey) return undefined;
  if (!taskTokenSecret) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      "hub configuration: with --auth-tokens or --auth-jwt-*, give --task-token-secret-file FILE " +
        "(or TASKFRAME_TASK_TOKEN_SECRET), the same as the sidecars': tasks' tokens must be signed",
    );
  }
  return { tokens: tokensFile ? loadTokensFile(tokensFile) : [], jwt, taskTokenSecret };
}
