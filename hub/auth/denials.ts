import { Code } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import type { Logger } from "../../core/logger.js";
import type { Database } from "../store/database.js";
import type { AuthDenied } from "./authenticator.js";

/** `permission_denied` for Code.PermissionDenied: the audit trail's spelling of a code. */
const codeName = (code: Code): string => Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();

export interface Denial {
  /** The principal's name; '' when the caller is not authenticated. */
  principal: string;
  /** `HubService/Method`, or an HTTP path. */
  rpc: string;
  /** unauthenticated, permission_denied or not_found. */
  code: string;
  reason: string;
  peer: string;
}

/**
 * The audit trail of refused requests: a row in `auth_denials` and a warning
 * in the log for each. Writing is best effort and never delays the refusal.
 */
export class DenialLog {
  readonly #database: Database;
  readonly #logger: Logger;

  constructor(database: Database, logger: Logger) {
    this.#database = database;
    this.#logger = logger;
  }

  /** Records the refusal of `rpc` (`HubService/Method` or an HTTP path) to the caller at `peer`. */
  refused(denial: AuthDenied, rpc: string, peer: string): void {
    this.record({
      principal: denial.principal,
      rpc,
      code: codeName(denial.code),
      reason: denial.reason,
      peer,
    });
  }

  record(denial: Denial): void {
    this.#logger.warn({ denial }, `auth: refused ${denial.rpc} (${denial.code}): ${denial.reason}`);
    this.#database
      .rows(
        sql`insert into auth_denials (principal, rpc, code, reason, peer)
            values (${denial.principal}, ${denial.rpc}, ${denial.code}, ${denial.reason}, ${denial.peer})`,
      )
      .catch((error: unknown) => this.#logger.warn({ err: error }, "auth: could not record a denial"));
  }
}
