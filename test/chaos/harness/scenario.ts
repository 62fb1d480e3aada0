import { afterAll, beforeAll, it } from "vitest";
import { OwnNats, OwnPostgres } from "./own-services.js";

/** `TASKFRAME_CHAOS=fast` (npm run test:chaos:fast, run by CI): fewer tasks, and only the scenarios marked fast. */
export const FAST = process.env.TASKFRAME_CHAOS === "fast";

/** `full` tasks in the full suite, `fast` in the fast subset. */
export const scale = (full: number, fast: number): number => (FAST ? fast : full);

/** A scenario: in the fast subset only if marked `fast`. */
export function scenario(
  name: string,
  options: { fast: boolean; timeoutMs: number },
  body: () => Promise<void>,
) {
  it.skipIf(FAST && !options.fast)(name, body, options.timeoutMs);
}

export interface Services {
  nats: OwnNats;
  postgres: OwnPostgres;
}

/** The file's own nats-server and Postgres (started once, shared by its scenarios, removed at the end). */
export function ownServices(
  options: {
    natsBind?: string;
    natsDiskBytes?: number;
    postgresDiskBytes?: number;
    postgresForOtherHosts?: boolean;
    postgresSettings?: Record<string, string>;
  } = {},
): Services {
  const services = {} as Services;
  beforeAll(async () => {
    [services.nats, services.postgres] = await Promise.all([
      OwnNats.start({
        ...(options.natsBind ? { bind: options.natsBind } : {}),
        ...(options.natsDiskBytes ? { diskBytes: options.natsDiskBytes } : {}),
      }),
      OwnPostgres.start({
        ...(options.postgresDiskBytes ? { diskBytes: options.postgresDiskBytes } : {}),
        ...(options.postgresForOtherHosts ? { otherHosts: true } : {}),
        ...(options.postgresSettings ? { settings: options.postgresSettings } : {}),
      }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await services.nats?.[Symbol.asyncDispose]();
    await services.postgres?.[Symbol.asyncDispose]();
  });
  return services;
}
