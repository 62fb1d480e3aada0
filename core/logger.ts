import { type Logger, pino } from "pino";
import { REDACTED_LOG_PATHS } from "./redact.js";

export type { Logger };

/**
 * Taskframe's own diagnostics (not task output), as JSON lines on stderr.
 * TASKFRAME_LOG_LEVEL overrides the level (trace, debug, info, warn, error, silent).
 * Credential fields are written as [Redacted].
 */
export function createLogger(name: string, level = "info"): Logger {
  return pino(
    { name, level: process.env.TASKFRAME_LOG_LEVEL ?? level, redact: [...REDACTED_LOG_PATHS] },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything: the default for embedded components and tests. */
export const silentLogger: Logger = pino({ level: "silent" });
