import { defineConfig } from "vitest/config";

/**
 * `npm run test:chaos`: every scenario of test/chaos/ (see its README).
 * `npm run test:chaos:fast` runs the subset CI runs (TASKFRAME_CHAOS=fast:
 * fewer tasks, the scenarios marked fast).
 */
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.chaos.test.ts"],
    globalSetup: ["test/chaos/global-setup.ts"],
    pool: "forks",
    // scenarios share the suite's own NATS and Postgres and the machine's 2 cores: one at a time
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
