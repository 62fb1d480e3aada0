import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { DatabaseTarget } from "../../hub/store/database.js";

/** The Postgres server the integration tests use (CI runs one at 127.0.0.1:5432, trust auth, db `test`). */
export const TEST_POSTGRES_URL =
  process.env.TASKFRAME_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestDatabase extends AsyncDisposable {
  readonly name: "pglite" | "postgres";
  readonly target: DatabaseTarget;
}

/** A fresh, empty database of each kind the store supports: embedded PGlite and a real Postgres. */
export const DATABASE_KINDS = ["pglite", "postgres"] as const;

export async function createTestDatabase(kind: (typeof DATABASE_KINDS)[number]): Promise<TestDatabase> {
  if (kind === "pglite") {
    const dataDir = await mkdtemp(join(tmpdir(), "taskframe-pglite-"));
    return {
      name: "pglite",
      target: { kind: "pglite", dataDir },
      [Symbol.asyncDispose]: () => rm(dataDir, { recursive: true, force: true }),
    };
  }
  const name = `taskframe_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    name: "postgres",
    target: { kind: "postgres", url: url.toString() },
    async [Symbol.asyncDispose]() {
      const cleanup = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
      try {
        await cleanup.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}
