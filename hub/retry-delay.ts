import { Backoff, type RetryPolicy } from "../core/gen/taskframe/v1/spec_pb.js";

/**
 * How long to wait before the attempt after `failedAttempt` (1-based).
 * Fixed: interval. Exponential: interval * 2^(failedAttempt-1), capped at
 * max_interval. Jitter adds up to `jitter * delay` at random, so that many
 * tasks failing for one reason do not all retry at the same instant.
 */
export function retryDelayMs(
  policy: RetryPolicy | undefined,
  failedAttempt: number,
  random = Math.random,
): number {
  if (!policy) return 0;
  const interval = Number(policy.intervalMs);
  let delay =
    policy.backoff === Backoff.EXPONENTIAL ? interval * 2 ** Math.max(0, failedAttempt - 1) : interval;
  const cap = Number(policy.maxIntervalMs);
  if (cap > 0) delay = Math.min(delay, cap);
  const jitter = Math.min(Math.max(policy.jitter, 0), 1);
  if (jitter > 0) delay += random() * jitter * delay;
  return Math.round(delay);
}

export const maxAttemptsOf = (policy: RetryPolicy | undefined): number => 1 + (policy?.retries ?? 0);
