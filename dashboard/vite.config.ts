import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// Built into dist/dashboard at `npm run build`; the hub serves it at `/`.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist/dashboard", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  worker: { format: "es" },
});
