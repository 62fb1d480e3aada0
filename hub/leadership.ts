import postgres from "postgres";
import { errorMessage } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/logger.js";

/**
 * Who, among the hubs sharing a store, does the work that must happen once
 * (the reconciler). Everything else a hub does is safe to run on all of them.
 */
export interface Leadership {
  readonly isLeader: boolean;
  start(): void;
  stop(): Promise<void>;
}

/** One process, one hub: it always leads (embedded mode). */
export class SoleLeader implements Leadership {
  readonly isLeader = true;
  start(): void {}
  async stop(): Promise<void> {}
}

/**
 * Leadership through a Postgres session advisory lock, held on a connection
 * of its own. If the leader dies, Postgres sees its connection close and
 * releases the lock; another hub takes it at its next check (every
 * `checkEveryMs`), so failover takes about that long.
 */
export class AdvisoryLockLeadership implements Leadership {
  #connection: postgres.Sql | undefined;
  #leading = false;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly url: string,
    private readonly lockName: string,
    private readonly logger: Logger = silentLogger,
    private readonly checkEveryMs = 1_000,
  ) {}

  get isLeader(): boolean {
    return this.#leading;
  }

  start(): void {
    const tick = () => {
      this.#checking = this.#check().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.checkEveryMs);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#checking;
    this.#leading = false;
    await this.#connection?.end({ timeout: 2 }).catch(() => {});
    this.#connection = undefined;
  }

  async #check(): Promise<void> {
    try {
      this.#connection ??= postgres(this.url, { max: 1, idle_timeout: 0, onnotice: () => {} });
      if (this.#leading) {
        await this.#connection`select 1`; // still connected means still holding the lock
        return;
      }
      const [row] = await this.#connection<{ locked: boolean }[]>`
        select pg_try_advisory_lock(hashtext(${this.lockName})) as locked`;
      if (row?.locked) {
        this.#leading = true;
        this.logger.info({ lock: this.lockName }, "this hub now leads");
      }
    } catch (error) {
      if (this.#leading) this.logger.warn(`lost leadership: ${errorMessage(error)}`);
      this.#leading = false;
      const connection = this.#connection;
      this.#connection = undefined;
      await connection?.end({ timeout: 1 }).catch(() => {});
    }
  }
}
