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
 *
 * A leader cut off from Postgres (a partition: nothing closes, packets just
 * stop) must let go on both sides: here, a check that does not answer within
 * `answerWithinMs` ends its leadership and its connection; on the server, TCP
 * keepalives on the lock's session (`tcp_keepalives_*`, `tcp_user_timeout`)
 * end the session, and with it the lock, within about that long too.
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
    private readonly answerWithinMs = 5_000,
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
      const seconds = Math.max(1, Math.round(this.answerWithinMs / 3_000));
      this.#connection ??= postgres(this.url, {
        max: 1,
        idle_timeout: 0,
        connect_timeout: Math.ceil(this.answerWithinMs / 1_000),
        onnotice: () => {},
        connection: {
          tcp_keepalives_idle: seconds,
          tcp_keepalives_interval: seconds,
          tcp_keepalives_count: 2,
          tcp_user_timeout: this.answerWithinMs,
        },
      });
      const connection = this.#connection;
      if (this.#leading) {
        // still connected means still holding the lock
        await answerWithin(connection`select 1`, this.answerWithinMs);
        return;
      }
      const [row] = await answerWithin(
        connection<{ locked: boolean }[]>`select pg_try_advisory_lock(hashtext(${this.lockName})) as locked`,
        this.answerWithinMs,
      );
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

/** The query's answer, or an error once `ms` passed without one (the query itself is left to its connection's end). */
async function answerWithin<T>(query: PromiseLike<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Postgres did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([query, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
