import { randomBytes } from "node:crypto";
import postgres from "postgres";

export interface ScratchDatabase extends AsyncDisposable {
  /** The new database's URL. */
  readonly url: string;
}

/**
 * A fresh database on the Postgres at `serverUrl`, dropped (connections and
 * all) on dispose: for benchmarks and the conformance runner, which must not
 * touch the user's data.
 */
export async function createScratchDatabase(serverUrl: string, prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } catch (error) {
    await admin.end();
    throw error;
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async [Symbol.asyncDispose]() {
      await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await admin.end();
    },
  };
}
