import { resolve } from "node:path";

/** Options every command that reads runs understands. */
export interface StoreOptions {
  /** Embedded data directory. */
  data: string;
  /** A hub's URL; when set, the command talks to it instead of the embedded store. */
  hub?: string;
  /** Bearer token for the hub's API (--token, env TASKFRAME_TOKEN). */
  token?: string;
  /** An https:// hub: the CA it is trusted by, and the client certificate it may require. */
  hubTlsCa?: string;
  hubTlsCert?: string;
  hubTlsKey?: string;
  json?: boolean;
}

export const DEFAULT_DATA_DIR = ".taskframe";

/** TASKFRAME_DATA and TASKFRAME_HUB are the defaults for --data and --hub. */
export function storeOptionDefaults(): { data: string; hub: string | undefined } {
  return {
    data: process.env.TASKFRAME_DATA ?? DEFAULT_DATA_DIR,
    hub: process.env.TASKFRAME_HUB || undefined,
  };
}

export const dataDirOf = (options: Pick<StoreOptions, "data">): string => resolve(options.data);

export function parsePositiveInt(name: string): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 1) {
      throw new Error(`${name} expects a positive integer, got '${value}'`);
    }
    return parsed;
  };
}
