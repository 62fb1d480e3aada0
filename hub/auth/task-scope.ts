import { Code } from "@connectrpc/connect";
import { parseTaskToken } from "../../core/task-token.js";
import { AuthDenied } from "./authenticator.js";
import type { Principal } from "./principal.js";

/**
 * A task token speaks for one attempt: SpawnTasks must name that attempt as
 * the parent, CommitMapReduce must carry that token. Anything else is refused.
 */
export function checkTaskScope(
  principal: Extract<Principal, { kind: "task" }>,
  method: string,
  message: unknown,
): void {
  const deny = (reason: string) => new AuthDenied(Code.PermissionDenied, reason, principal.name);
  if (method === "SpawnTasks") {
    const request = message as { parentTaskId?: string; attempt?: number; leaseEpoch?: bigint };
    if (
      request.parentTaskId !== principal.taskId ||
      request.attempt !== principal.attempt ||
      Number(request.leaseEpoch ?? 0n) !== principal.leaseEpoch
    ) {
      throw deny("a task token may spawn children of its own attempt only");
    }
    return;
  }
  if (method === "CommitMapReduce") {
    const ref = parseTaskToken((message as { taskToken?: string }).taskToken ?? "");
    if (
      !ref ||
      ref.taskId !== principal.taskId ||
      ref.attempt !== principal.attempt ||
      ref.leaseEpoch !== principal.leaseEpoch
    ) {
      throw deny("a task token may commit its own attempt's job only");
    }
    return;
  }
  throw deny(`a task token may not call ${method}`);
}
