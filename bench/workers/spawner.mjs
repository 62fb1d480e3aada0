// A TypeScript worker for the spawn benchmark: `spawner` spawns `children` no-op children in
// batches of `batch` (ctx.spawn) and returns how long that took; `noop` serves the children.
import { Worker } from "taskframe/worker";

const worker = new Worker({
  handlers: {
    noop: () => undefined,
    spawner: async (ctx) => {
      const { children, batch } = ctx.json();
      const started = Date.now();
      for (let first = 0; first < children; first += batch) {
        const count = Math.min(batch, children - first);
        await ctx.spawn(Array.from({ length: count }, (_, i) => ({ key: `c${first + i}`, handler: "noop" })));
      }
      return { spawnMs: Date.now() - started, startedAtMs: started };
    },
  },
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 64),
  name: "bench-spawner",
});
process.once("SIGTERM", () => void worker.stop());
await worker.run();
