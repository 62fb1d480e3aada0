import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { taskToken } from "../../core/task-token.js";
import { AuthDenied, Authenticator } from "./authenticator.js";
import { isLoopback } from "./peer.js";
import { sha256 } from "./tokens-file.js";

const secret = Buffer.from("task-token-secret-0123456789");
const ref = { taskId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", attempt: 1, leaseEpoch: 3 };

const configured = (current = true) =>
  new Authenticator(
    {
      tokens: [{ name: "alice", digest: sha256("alice-token-0123456789"), tenants: ["a"], role: "reader" }],
      jwt: {},
      taskTokenSecret: secret,
    },
    async () => current,
  );

async function refusal(promise: Promise<unknown>): Promise<[Code, string] | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!(error instanceof AuthDenied)) throw error;
    return [error.code, error.reason];
  }
}

describe("the authenticator", () => {
  it("knows loopback peers", () => {
    for (const peer of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", ""])
      expect(isLoopback(peer)).toBe(true);
    for (const peer of ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "128.0.0.1", "192.168.1.2"])
      expect(isLoopback(peer)).toBe(false);
  });

  it("in protected mode lets loopback callers do everything and refuses the rest", async () => {
    const auth = new Authenticator(undefined, async () => true);
    await expect(auth.authenticate(undefined, "127.0.0.1")).resolves.toEqual({
      kind: "local",
      name: "local",
    });
    const refused = await refusal(auth.authenticate("Bearer whatever", "10.1.2.3"));
    expect(refused?.[0]).toBe(Code.Unauthenticated);
    expect(refused?.[1]).toContain("protected mode");
  });

  it("with auth, gives loopback no exemption and refuses malformed or unknown credentials", async () => {
    const auth = configured();
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer nothing",
      "Basic YTpi",
      "alice-token-0123456789",
      "Bearer a b",
    ]) {
      expect((await refusal(auth.authenticate(header, "127.0.0.1")))?.[0], String(header)).toBe(
        Code.Unauthenticated,
      );
    }
    await expect(auth.authenticate("Bearer alice-token-0123456789", "10.0.0.1")).resolves.toMatchObject({
      kind: "user",
      name: "alice",
      role: "reader",
      tenants: ["a"],
    });
  });

  it("takes a signed task token of a current attempt only", async () => {
    await expect(configured().authenticate(`Bearer ${taskToken(ref, secret)}`, "")).resolves.toMatchObject({
      kind: "task",
      ...ref,
    });
    expect(await refusal(configured().authenticate(`Bearer ${taskToken(ref)}`, ""))).toEqual([
      Code.Unauthenticated,
      "unsigned task token: this hub requires signed ones",
    ]);
    expect(await refusal(configured(false).authenticate(`Bearer ${taskToken(ref, secret)}`, ""))).toEqual([
      Code.Unauthenticated,
      "the task token's attempt has ended",
    ]);
    const other = taskToken(ref, Buffer.from("another-secret-0123456789"));
    expect((await refusal(configured().authenticate(`Bearer ${other}`, "")))?.[1]).toContain(
      "does not verify",
    );
  });
});
