import { Code, ConnectError } from "@connectrpc/connect";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";

const CODES: Record<TaskframeErrorCode, Code> = {
  [TaskframeErrorCode.InvalidDefinition]: Code.InvalidArgument,
  [TaskframeErrorCode.InvalidArgument]: Code.InvalidArgument,
  [TaskframeErrorCode.NotFound]: Code.NotFound,
  [TaskframeErrorCode.Conflict]: Code.AlreadyExists,
  [TaskframeErrorCode.Unavailable]: Code.Unavailable,
  [TaskframeErrorCode.Stale]: Code.FailedPrecondition,
  [TaskframeErrorCode.ResourceExhausted]: Code.ResourceExhausted,
};

/** Domain errors become Connect errors with their code; anything else is Internal (original kept as cause). */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof TaskframeError)
    return new ConnectError(error.message, CODES[error.code], undefined, undefined, error);
  return ConnectError.from(error, Code.Internal);
}
