import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { errors as joseErrors, jwtVerify } from "jose";
import { z } from "zod";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import { ROLES, type Role, type Tenants } from "./principal.js";
import { tenantsSchema } from "./tokens-file.js";

/** The keys JWTs are checked with: an HS256 secret, a public key (RS256, ES256 or EdDSA), or both. */
export interface JwtKeys {
  secret?: Uint8Array;
  publicKey?: { key: KeyObject; algorithm: "RS256" | "ES256" | "EdDSA" };
}

export interface JwtClaims {
  sub: string;
  role: Role;
  tenants: Tenants;
}

/** A JWT that does not verify; `reason` is safe to return to the caller and to log. */
export class JwtRefused extends Error {
  override name = "JwtRefused";
}

const claimsSchema = z.object({
  sub: z.string().min(1),
  exp: z.number(),
  role: z.enum(ROLES),
  tenants: tenantsSchema,
});

/**
 * Verifies a compact JWT: signature and algorithm (only those of the keys
 * given; `none` never), `exp` (required, 5 s of clock tolerance), `nbf` if
 * present, and the claims `sub`, `role` and `tenants`.
 */
export async function verifyJwt(token: string, keys: JwtKeys): Promise<JwtClaims> {
  const attempts: [Uint8Array | KeyObject, string][] = [];
  if (keys.secret) attempts.push([keys.secret, "HS256"]);
  if (keys.publicKey) attempts.push([keys.publicKey.key, keys.publicKey.algorithm]);
  let last: unknown;
  for (const [key, algorithm] of attempts) {
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [algorithm],
        requiredClaims: ["exp", "sub"],
        clockTolerance: 5,
      });
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) {
        const fields = [...new Set(claims.error.issues.map((i) => i.path.join(".") || "(claims)"))];
        throw new JwtRefused(`the JWT's claims are missing or invalid: ${fields.join(", ")}`);
      }
      return { sub: claims.data.sub, role: claims.data.role, tenants: claims.data.tenants };
    } catch (error) {
      if (error instanceof JwtRefused) throw error;
      last = error;
      // a key of another algorithm: try the next; anything else is final
      if (!(error instanceof joseErrors.JOSEAlgNotAllowed)) break;
    }
  }
  throw new JwtRefused(refusal(last));
}

function refusal(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "the JWT has expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `the JWT's ${error.claim} claim: ${error.reason}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed)
    return "the JWT's signature does not verify";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "the JWT's algorithm is not accepted";
  if (error instanceof joseErrors.JOSEError) return `the JWT is invalid (${error.code})`;
  return "the JWT is invalid";
}

/** Reads the HS256 secret (at least 32 bytes) and the PEM public key named by the hub's flags. */
export function loadJwtKeys(secretFile: string | undefined, publicKeyFile: string | undefined): JwtKeys {
  const keys: JwtKeys = {};
  if (secretFile) {
    const secret = Buffer.from(read(secretFile, "--auth-jwt-secret-file").trim(), "utf8");
    if (secret.length < 32) {
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `--auth-jwt-secret-file ${secretFile}: the HS256 secret is ${secret.length} bytes; give at least 32`,
      );
    }
    keys.secret = secret;
  }
  if (publicKeyFile) {
    let key: KeyObject;
    try {
      key = createPublicKey(read(publicKeyFile, "--auth-jwt-public-key"));
    } catch (error) {
      if (error instanceof TaskframeError) throw error;
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `--auth-jwt-public-key ${publicKeyFile}: not a PEM public key (${(error as Error).message})`,
      );
    }
    const algorithm = ({ rsa: "RS256", ec: "ES256", ed25519: "EdDSA" } as const)[
      key.asymmetricKeyType as "rsa" | "ec" | "ed25519"
    ];
    if (
      !algorithm ||
      (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
    ) {
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `--auth-jwt-public-key ${publicKeyFile}: expected an RSA, P-256 or Ed25519 public key, got ${key.asymmetricKeyType}`,
      );
    }
    keys.publicKey = { key, algorithm };
  }
  return keys;
}

function read(file: string, flag: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `${flag} ${file}: cannot read it: ${(error as Error).message}`,
    );
  }
}
