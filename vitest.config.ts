import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{core,hub,sidecar,cli,embedded,sdks/ts,dashboard/src}/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "dist/**"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
