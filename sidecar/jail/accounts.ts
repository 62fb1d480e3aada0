import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The host account a task runs as. */
export interface Account {
  user: string;
  uid: number;
  gid: number;
  /** Supplementary groups: the user's, as `initgroups` would give them. */
  groups: number[];
}

export class AccountError extends Error {}

/**
 * Resolves `User=`/`Group=` on this host through NSS (`getent`, so LDAP and
 * the like count too), caching answers for a minute. A name or a number;
 * an account that does not exist is an AccountError saying which.
 */
export class AccountResolver {
  readonly #cache = new Map<string, { at: number; value: Promise<string[] | undefined> }>();

  async resolve(user: string, group: string | undefined, host: string): Promise<Account> {
    const passwd = await this.#lookup("passwd", user);
    if (!passwd) throw new AccountError(`User=${user}: no such user on host ${host}`);
    const [name, , uid, primaryGid] = passwd;
    let gid = Number(primaryGid);
    if (group) {
      const entry = await this.#lookup("group", group);
      if (!entry) throw new AccountError(`Group=${group}: no such group on host ${host}`);
      gid = Number(entry[2]);
    }
    const memberships = await this.#lookup("initgroups", name!);
    const groups = (memberships?.[0] ?? "")
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((g) => g !== gid);
    return { user: name!, uid: Number(uid), gid, groups: [gid, ...groups] };
  }

  #lookup(database: "passwd" | "group" | "initgroups", key: string): Promise<string[] | undefined> {
    const cacheKey = `${database}:${key}`;
    const cached = this.#cache.get(cacheKey);
    if (cached && Date.now() - cached.at < 60_000) return cached.value;
    const value = getent(database, key);
    this.#cache.set(cacheKey, { at: Date.now(), value });
    return value;
  }
}

async function getent(database: string, key: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await run("getent", [database, key]);
    const line = stdout.split("\n")[0] ?? "";
    // initgroups prints `name gid gid...`: keep the ids
    if (database === "initgroups") return [line.replace(/^\S+\s*/, "")];
    return line.split(":");
  } catch (error) {
    // exit 2: no such key
    if ((error as { code?: unknown }).code === 2) return undefined;
    throw error;
  }
}
