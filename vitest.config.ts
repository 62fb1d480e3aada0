import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{core,hub,sidecar,cli,embedded,sdks/ts,dashboard/src}/**/*.test.ts", "test/**/*.test.ts"],
    // the chaos suite has its own config and command (npm run test:chaos)
    exclude: ["**/node_modules/**", "dist/**", "test/chaos/**"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
