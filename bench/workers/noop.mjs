// A no-op TypeScript worker for the handlers benchmark.
import { Worker } from "taskframe/worker";

const worker = new Worker({
  handlers: { noop: () => undefined },
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 64),
  name: "bench-typescript",
});
process.once("SIGTERM", () => void worker.stop());
await worker.run();
