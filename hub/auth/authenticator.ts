import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  isTaskTokenShaped,
  parseTaskToken,
  type TaskAttemptRef,
  verifyTaskToken,
} from "../../core/task-token.js";
import { type JwtKeys, JwtRefused, verifyJwt } from "./jwt.js";
import { isLoopback } from "./peer.js";
import type { Principal } from "./principal.js";
import { type StaticToken, sha256 } from "./tokens-file.js";

/** What the hub checks bearer tokens against; undefined settings: protected mode. */
export interface AuthSettings {
  tokens: readonly StaticToken[];
  jwt: JwtKeys;
  /** Required with auth: task tokens must be signed with it. */
  taskTokenSecret: Uint8Array;
}

/**
 * A refused request. A ConnectError, so that it crosses the service's error
 * mapping unchanged; `principal` and `reason` go to the audit trail.
 */
export class AuthDenied extends ConnectError {
  // name stays "ConnectError": Connect recognises its errors by name (ConnectError[Symbol.hasInstance])
  readonly authDenied = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof Error && (value as { authDenied?: unknown }).authDenied === true;
  }

  constructor(
    code: Code.Unauthenticated | Code.PermissionDenied | Code.NotFound,
    readonly reason: string,
    readonly principal = "",
    /** What the caller is told, when it must say less than `reason` (NotFound). */
    shown = reason,
  ) {
    super(shown, code);
  }
}

export const PROTECTED_MODE_MESSAGE =
  "this hub runs without authentication (protected mode) and accepts only loopback connections: " +
  "give it --auth-tokens FILE or --auth-jwt-secret-file FILE (with --task-token-secret-file) " +
  "to accept others; see docs/security-auth.md";

/** Is the attempt a task token names still the task's current one (core/task-token.ts). */
export type CurrentAttempt = (ref: TaskAttemptRef) => Promise<boolean>;

/** Turns a request's Authorization header and peer into a principal, or refuses it (Unauthenticated). */
export class Authenticator {
  readonly #settings: AuthSettings | undefined;
  readonly #currentAttempt: CurrentAttempt;

  constructor(settings: AuthSettings | undefined, currentAttempt: CurrentAttempt) {
    this.#settings = settings;
    this.#currentAttempt = currentAttempt;
  }

  /** False: protected mode (loopback callers may do everything; others are refused). */
  get configured(): boolean {
    return this.#settings !== undefined;
  }

  async authenticate(authorization: string | null | undefined, peer: string): Promise<Principal> {
    const settings = this.#settings;
    if (!settings) {
      if (isLoopback(peer)) return { kind: "local", name: "local" };
      throw new AuthDenied(Code.Unauthenticated, PROTECTED_MODE_MESSAGE);
    }
    if (!authorization)
      throw new AuthDenied(Code.Unauthenticated, "no credentials: send Authorization: Bearer TOKEN");
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match)
      throw new AuthDenied(Code.Unauthenticated, "malformed Authorization header: expected Bearer TOKEN");
    const token = match[1]!;
    if (isTaskTokenShaped(token)) return this.#taskPrincipal(token, settings.taskTokenSecret);
    if (token.split(".").length === 3 && (settings.jwt.secret || settings.jwt.publicKey)) {
      try {
        const claims = await verifyJwt(token, settings.jwt);
        return { kind: "user", name: claims.sub, role: claims.role, tenants: claims.tenants, via: "jwt" };
      } catch (error) {
        if (error instanceof JwtRefused) throw new AuthDenied(Code.Unauthenticated, error.message);
        throw error;
      }
    }
    // every entry is compared, equal length digests in constant time: the time says nothing of the match
    const digest = sha256(token);
    let found: StaticToken | undefined;
    for (const entry of settings.tokens) if (timingSafeEqual(entry.digest, digest) && !found) found = entry;
    if (!found) throw new AuthDenied(Code.Unauthenticated, "unknown token");
    return { kind: "user", name: found.name, role: found.role, tenants: found.tenants, via: "token" };
  }

  async #taskPrincipal(token: string, secret: Uint8Array): Promise<Principal> {
    const parsed = parseTaskToken(token);
    const name = parsed ? `task:${parsed.taskId}:${parsed.attempt}` : "";
    if (!parsed?.signature) {
      throw new AuthDenied(Code.Unauthenticated, "unsigned task token: this hub requires signed ones", name);
    }
    const ref = verifyTaskToken(token, secret);
    if (!ref) throw new AuthDenied(Code.Unauthenticated, "the task token's signature does not verify", name);
    if (!(await this.#currentAttempt(ref))) {
      throw new AuthDenied(Code.Unauthenticated, "the task token's attempt has ended", name);
    }
    return { kind: "task", name, ...ref };
  }
}
