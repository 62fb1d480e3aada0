import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { RunnerService } from "../../core/gen/taskframe/v1/runner_pb.js";
import { type HandlerRunner, UnknownWorkerError } from "./handler-runner.js";

/** The Runner protocol's handlers over a HandlerRunner; errors become Connect codes here only. */
export function createRunnerService(
  runner: HandlerRunner,
  spawn: ServiceImpl<typeof RunnerService>["spawn"],
): ServiceImpl<typeof RunnerService> {
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
    spawn: (request, context) => guard(() => spawn(request, context)),
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
  return ConnectError.from(error, Code.InvalidArgument);
}
