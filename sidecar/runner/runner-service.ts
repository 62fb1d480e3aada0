import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { TaskframeError } from "../../core/errors.js";
import type { ChildSpec, ChildStatusSchema, RunnerService } from "../../core/gen/taskframe/v1/runner_pb.js";
import { toConnectError as domainError } from "../../hub/api/errors.js";
import { type HandlerRunner, UnknownWorkerError } from "./handler-runner.js";

/** The Runner protocol's handlers over a HandlerRunner; errors become Connect codes here only. */
/** Adds children to a running task on the hub. */
export type SpawnTasks = (request: {
  parentTaskId: string;
  attempt: number;
  leaseEpoch: number;
  children: ChildSpec[];
}) => Promise<{ key: string; taskId: string; name: string; existing: boolean }[]>;

/** Where a task's children stand, from the hub. */
export type ReadChildren = (
  parentTaskId: string,
  keys: string[],
) => Promise<MessageInitShape<typeof ChildStatusSchema>[]>;

export function createRunnerService(
  runner: HandlerRunner,
  hub: { spawnTasks?: SpawnTasks | undefined; readChildren?: ReadChildren | undefined },
): ServiceImpl<typeof RunnerService> {
  const { spawnTasks, readChildren } = hub;
  const guard = async <T>(work: () => T | Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw toConnectError(error);
    }
  };
  return {
    register: (request) =>
      guard(() => {
        const { workerId, heartbeatIntervalMs } = runner.register(request);
        return { workerId, heartbeatIntervalMs: BigInt(heartbeatIntervalMs) };
      }),
    async *assignments(request, context) {
      try {
        for await (const message of runner.stream(request.workerId, context.signal)) yield message;
      } catch (error) {
        throw toConnectError(error);
      }
    },
    complete: (request) =>
      guard(async () => ({ receipts: await runner.complete(request.workerId, request.completions) })),
    heartbeat: (request) => guard(() => ({ lostTaskIds: runner.heartbeat(request.workerId, request.tasks) })),
    log: (request) =>
      guard(() => {
        runner.log(request.workerId, request.lines);
        return {};
      }),
    spawn: (request) =>
      guard(async () => {
        runner.assertHolds(request.workerId, request);
        if (!spawnTasks) {
          throw new ConnectError("this sidecar has no hub to spawn children on", Code.Unimplemented);
        }
        const children = await spawnTasks({
          parentTaskId: request.taskId,
          attempt: request.attempt,
          leaseEpoch: Number(request.leaseEpoch),
          children: request.children,
        });
        return { children };
      }),
    children: (request) =>
      guard(async () => {
        runner.assertHolds(request.workerId, request);
        if (!readChildren) {
          throw new ConnectError("this sidecar has no hub to ask about children", Code.Unimplemented);
        }
        return { children: await readChildren(request.taskId, request.keys) };
      }),
    drain: (request) =>
      guard(() => {
        runner.drain(request.workerId);
        return {};
      }),
  };
}

function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof UnknownWorkerError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof TaskframeError) return domainError(error);
  return ConnectError.from(error, Code.InvalidArgument);
}
