import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * Runs a long-lived loop (a consumer of a stream, a subscription) until
 * `signal` aborts, starting it again with backoff whenever it fails or ends
 * early: a lost connection must pause the work, never end it.
 */
export async function keepRunning(
  name: string,
  signal: AbortSignal,
  loop: (signal: AbortSignal) => Promise<void>,
  logger: Logger,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    const started = Date.now();
    try {
      await loop(signal);
    } catch (error) {
      if (signal.aborted) return;
      logger.error({ err: error }, `${name} failed: ${errorMessage(error)}; starting it again`);
    }
    if (signal.aborted) return;
    if (Date.now() - started > 30_000) failures = 0;
    const delayMs = Math.min(5_000, 100 * 2 ** failures++);
    await sleep(delayMs, undefined, { signal }).catch(() => {});
  }
}
