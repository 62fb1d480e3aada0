// A Taskframe worker in TypeScript/JavaScript: it registers three handlers
// with the sidecar (TASKFRAME_SOCKET) and serves them until it is stopped.
import { Worker } from "taskframe/worker";

const worker = new Worker({
  name: "example-ts",
  concurrency: 8,
  handlers: {
    "count-words": (ctx) => {
      const words = ctx.json().text.split(/\s+/).filter(Boolean);
      ctx.log(`counted ${words.length} words`);
      return { words: words.length };
    },
    shout: (ctx) => ctx.json().text.toUpperCase(),
    flaky: (ctx) => {
      if (ctx.attempt <= ctx.json().failures) throw new Error(`attempt ${ctx.attempt} fails on purpose`);
      ctx.log(`succeeded on attempt ${ctx.attempt}`);
      return { attempt: ctx.attempt };
    },
  },
});

for (const signal of ["SIGTERM", "SIGINT"]) process.once(signal, () => void worker.stop());
await worker.run();
