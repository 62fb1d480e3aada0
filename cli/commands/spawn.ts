import { create } from "@bufbuild/protobuf";
import { parseDurationMs } from "../../core/definitions/duration.js";
import { ChildSpecSchema } from "../../core/gen/taskframe/v1/runner_pb.js";
import { parseTaskToken } from "../../core/task-token.js";
import { CliError, ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { printJson } from "../render/json.js";

export interface SpawnOptions extends StoreOptions {
  needs?: string[];
  after?: string[];
  retries?: number;
  retryInterval?: string;
  timeout?: string;
  handler?: string;
  input?: string;
  /** TASKFRAME_TASK_TOKEN, set by the sidecar for every running task. */
  taskToken?: string;
}

/**
 * `task spawn KEY [--needs K] -- COMMAND ARGS...` (or `--handler NAME --input JSON`),
 * run from inside a running task: adds the child `<task>/<KEY>` to its run.
 * Spawning the same key again (a retried task) returns the existing child.
 */
export async function spawnCommand(key: string, command: string[], options: SpawnOptions): Promise<number> {
  const token = options.taskToken ?? process.env.TASKFRAME_TASK_TOKEN ?? "";
  const parent = parseTaskToken(token);
  if (!parent) {
    throw new CliError(
      token
        ? `TASKFRAME_TASK_TOKEN '${token}' is malformed: expected TASK_ID:ATTEMPT:LEASE_EPOCH`
        : "task spawn runs inside a task: TASKFRAME_TASK_TOKEN is not set (the sidecar sets it, with TASKFRAME_HUB, for every task it runs)",
      ExitCode.Usage,
    );
  }
  if (options.handler && command.length > 0) {
    throw new CliError("give a command after -- or --handler, not both", ExitCode.Usage);
  }
  if (!options.handler && command.length === 0) {
    throw new CliError("nothing to run: give a command after -- (or --handler NAME)", ExitCode.Usage);
  }
  if (options.input !== undefined && !options.handler) {
    throw new CliError("--input is for --handler children", ExitCode.Usage);
  }
  const input = options.input === undefined ? undefined : jsonInput(options.input);
  const child = create(ChildSpecSchema, {
    key,
    spec: {
      name: key,
      target: options.handler
        ? {
            case: "handler",
            value: {
              handler: options.handler,
              input: input ?? new Uint8Array(),
              contentType: input ? "application/json" : "",
            },
          }
        : { case: "exec", value: { command: command[0]!, args: command.slice(1) } },
      needs: options.needs ?? [],
      after: options.after ?? [],
      retry: {
        retries: options.retries ?? 0,
        intervalMs: BigInt(options.retryInterval ? duration("--retry-interval", options.retryInterval) : 0),
      },
      timeoutMs: BigInt(options.timeout ? duration("--timeout", options.timeout) : 0),
    },
  });
  // the task's own token is its credential (the hub takes it for this attempt's calls only)
  return withHubClient({ ...options, token: options.token ?? token }, async (client) => {
    const { children } = await client.spawnTasks({
      parentTaskId: parent.taskId,
      attempt: parent.attempt,
      leaseEpoch: BigInt(parent.leaseEpoch),
      children: [child],
    });
    const spawned = children[0];
    if (options.json) printJson({ children });
    else if (spawned)
      process.stdout.write(`${spawned.name}${spawned.existing ? " (already spawned)" : ""}\n`);
    return ExitCode.Ok;
  });
}

function jsonInput(text: string): Uint8Array {
  try {
    JSON.parse(text);
  } catch (error) {
    throw new CliError(`--input is not valid JSON: ${(error as Error).message}`, ExitCode.Usage);
  }
  return Buffer.from(text, "utf8");
}

function duration(flag: string, text: string): number {
  try {
    return parseDurationMs(text);
  } catch (error) {
    throw new CliError(`${flag}: ${(error as Error).message}`, ExitCode.Usage);
  }
}
