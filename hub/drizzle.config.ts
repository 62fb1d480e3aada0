import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./hub/store/schema.ts",
  out: "./hub/drizzle",
});
