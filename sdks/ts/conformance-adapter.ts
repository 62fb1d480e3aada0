// The TypeScript SDK's conformance adapter (docs/conformance-adapter.md):
// a worker with the two scripted handlers, built on the public API only.
import { type Handler, NonRetryableError, Output, RetryAfterError, type TaskContext, Worker } from "./index.js";

interface Fail {
  kind?: "retryable" | "non_retryable" | "retry_after";
  type?: string;
  message?: string;
  retry_after_ms?: number;
}
type Step = Record<string, unknown>;

class ScriptedError extends Error {
  constructor(type: string, message: string) {
    super(message);
    this.name = type;
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(cancelled(signal));
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(cancelled(signal));
      },
      { once: true },
    );
  });

const cancelled = (signal: AbortSignal) =>
  new ScriptedError("Cancelled", signal.reason instanceof Error ? signal.reason.message : String(signal.reason));

function fail(spec: Fail): never {
  const message = spec.message ?? "scripted failure";
  if (spec.kind === "non_retryable") throw new NonRetryableError(message);
  if (spec.kind === "retry_after") throw new RetryAfterError(spec.retry_after_ms ?? 0, message);
  throw new ScriptedError(spec.type ?? "Error", message);
}

const script: Handler = async (ctx: TaskContext) => {
  const { attempts } = ctx.json<{ attempts: { steps?: Step[] }[] }>();
  const behaviour = attempts[Math.min(ctx.attempt, attempts.length) - 1] ?? {};
  let awaited: { key: string; output: Uint8Array }[] = [];
  for (const step of behaviour.steps ?? []) {
    if ("log" in step) ctx.log(String(step.log), step.stream === "stderr" ? "stderr" : "stdout");
    else if ("heartbeat" in step) ctx.heartbeat(Number(step.heartbeat), String(step.message ?? ""));
    else if ("sleep_ms" in step) await sleep(Number(step.sleep_ms), ctx.signal);
    else if ("wait_cancel" in step) await sleep(2 ** 31 - 1, ctx.signal);
    else if ("spawn" in step) {
      const children = step.spawn as { key: string; handler: string; input?: unknown; needs?: string[]; retries?: number }[];
      await ctx.spawn(children.map((c) => ({ ...c, input: c.input ?? {} })));
    } else if ("await_children" in step) {
      const failOnError = (step.await_children as { fail_on_error?: boolean }).fail_on_error !== false;
      awaited = await ctx.awaitChildren([], { failOnError });
    } else if ("return_children" in step) {
      const children = awaited.map((c) => ({ key: c.key, output: Buffer.from(c.output).toString("utf8") }));
      return new Output(Buffer.from(JSON.stringify(children), "utf8"), "application/json");
    } else if ("crash" in step) process.exit(1);
    else if ("return" in step) return new Output(Buffer.from(JSON.stringify(step.return), "utf8"), "application/json");
    else if ("return_text" in step) return String(step.return_text);
    else if ("fail" in step) fail(step.fail as Fail);
    else throw new NonRetryableError(`unknown step: ${Object.keys(step).join(", ")}`);
  }
  return undefined;
};

const worker = new Worker({
  name: process.env.TASKFRAME_WORKER_NAME ?? "conformance-typescript",
  concurrency: Number(process.env.TASKFRAME_CONFORMANCE_CONCURRENCY ?? 4),
  handlers: {
    "conformance.script": script,
    "conformance.echo": (ctx) => new Output(ctx.input, ctx.contentType),
  },
});
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void worker.stop());
await worker.run();
