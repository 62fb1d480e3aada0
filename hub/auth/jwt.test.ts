import { generateKeyPairSync } from "node:crypto";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { type JwtKeys, verifyJwt } from "./jwt.js";

const secret = new TextEncoder().encode("a-jwt-secret-of-at-least-32-bytes!!");
const keys: JwtKeys = { secret };

const claims = { role: "reader", tenants: ["team-a"] };

function sign(
  payload: Record<string, unknown>,
  options: { key?: Uint8Array; exp?: string | number; sub?: string | null; alg?: string } = {},
) {
  let jwt = new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? "HS256" }).setIssuedAt();
  if (options.sub !== null) jwt = jwt.setSubject(options.sub ?? "alice");
  if (options.exp !== undefined) jwt = jwt.setExpirationTime(options.exp);
  return jwt.sign(options.key ?? secret);
}

describe("JWT verification", () => {
  it("takes a valid HS256 token and returns its claims", async () => {
    const token = await sign(claims, { exp: "5m" });
    await expect(verifyJwt(token, keys)).resolves.toEqual({ sub: "alice", ...claims });
  });

  it("refuses an expired token", async () => {
    const token = await sign(claims, { exp: Math.floor(Date.now() / 1000) - 60 });
    await expect(verifyJwt(token, keys)).rejects.toThrow("the JWT has expired");
  });

  it("refuses a token signed with another secret", async () => {
    const token = await sign(claims, {
      exp: "5m",
      key: new TextEncoder().encode("another-secret-of-32-bytes-or-more!!"),
    });
    await expect(verifyJwt(token, keys)).rejects.toThrow("signature does not verify");
  });

  it("refuses an algorithm it was not given a key for, and alg none", async () => {
    const token = await sign(claims, { exp: "5m", alg: "HS512" });
    await expect(verifyJwt(token, keys)).rejects.toThrow("algorithm is not accepted");
    const [, body] = token.split(".");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${body}.`;
    await expect(verifyJwt(none, keys)).rejects.toThrow(/JWT/);
  });

  it("refuses tokens without exp, sub, role or tenants", async () => {
    await expect(verifyJwt(await sign(claims), keys)).rejects.toThrow(/exp/);
    await expect(verifyJwt(await sign(claims, { exp: "5m", sub: null }), keys)).rejects.toThrow(/sub/);
    await expect(verifyJwt(await sign({ tenants: ["a"] }, { exp: "5m" }), keys)).rejects.toThrow(/role/);
    await expect(verifyJwt(await sign({ role: "admin" }, { exp: "5m" }), keys)).rejects.toThrow(/tenants/);
    await expect(
      verifyJwt(await sign({ role: "admin", tenants: "team-a" }, { exp: "5m" }), keys),
    ).rejects.toThrow(/tenants/);
  });

  it("takes an EdDSA token with the public key, and not an HS256 one forged with the public key's bytes", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const withKey: JwtKeys = { publicKey: { key: publicKey, algorithm: "EdDSA" } };
    const token = await new SignJWT({ role: "admin", tenants: "*" })
      .setProtectedHeader({ alg: "EdDSA" })
      .setSubject("ops")
      .setExpirationTime("1m")
      .sign(privateKey);
    await expect(verifyJwt(token, withKey)).resolves.toEqual({ sub: "ops", role: "admin", tenants: "*" });
    const pem = new TextEncoder().encode(publicKey.export({ type: "spki", format: "pem" }).toString());
    const forged = await sign({ role: "admin", tenants: "*" }, { exp: "5m", key: pem });
    await expect(verifyJwt(forged, withKey)).rejects.toThrow(/JWT/);
  });
});
