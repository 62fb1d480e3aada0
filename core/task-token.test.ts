import { describe, expect, it } from "vitest";
import { parseTaskToken, taskToken, verifyTaskToken } from "./task-token.js";

const ref = { taskId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", attempt: 2, leaseEpoch: 7 };
const secret = Buffer.from("a shared secret of enough bytes");

describe("task tokens", () => {
  it("are unsigned without a secret, and parse either way", () => {
    expect(taskToken(ref)).toBe(`${ref.taskId}:2:7`);
    expect(parseTaskToken(taskToken(ref))).toEqual(ref);
    expect(parseTaskToken(taskToken(ref, secret))).toMatchObject(ref);
  });

  it("verify only when signed with the same secret and unchanged", () => {
    const token = taskToken(ref, secret);
    expect(verifyTaskToken(token, secret)).toEqual(ref);
    expect(verifyTaskToken(taskToken(ref), secret)).toBeUndefined();
    expect(verifyTaskToken(token, Buffer.from("another secret of enough bytes!"))).toBeUndefined();
    const signature = token.split(":")[3]!;
    expect(verifyTaskToken(`${ref.taskId}:3:7:${signature}`, secret)).toBeUndefined();
    expect(
      verifyTaskToken(`${token.slice(0, -1)}0`.replace(/0$/, token.endsWith("0") ? "1" : "0"), secret),
    ).toBeUndefined();
  });
});
