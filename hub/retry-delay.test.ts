import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Backoff, RetryPolicySchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { maxAttemptsOf, retryDelayMs } from "./retry-delay.js";

describe("retryDelayMs", () => {
  it("waits the fixed interval before every retry", () => {
    const policy = create(RetryPolicySchema, { retries: 3, intervalMs: 1500n, backoff: Backoff.FIXED });
    expect([1, 2, 3].map((a) => retryDelayMs(policy, a))).toEqual([1500, 1500, 1500]);
  });

  it("doubles an exponential interval per attempt up to the cap", () => {
    const policy = create(RetryPolicySchema, {
      retries: 6,
      intervalMs: 100n,
      backoff: Backoff.EXPONENTIAL,
      maxIntervalMs: 500n,
    });
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(policy, a))).toEqual([100, 200, 400, 500, 500]);
  });

  it("adds at most jitter * delay", () => {
    const policy = create(RetryPolicySchema, { intervalMs: 1000n, jitter: 0.5 });
    expect(retryDelayMs(policy, 1, () => 0)).toBe(1000);
    expect(retryDelayMs(policy, 1, () => 0.999)).toBe(1500);
  });

  it("counts the first attempt plus retries", () => {
    expect(maxAttemptsOf(undefined)).toBe(1);
    expect(maxAttemptsOf(create(RetryPolicySchema, { retries: 2 }))).toBe(3);
  });
});
