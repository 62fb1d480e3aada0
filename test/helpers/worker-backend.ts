import { afterAll, afterEach, beforeAll } from "vitest";
import { type Handler, Worker } from "../../sdks/ts/index.js";
import { type BackendKind, startBackend, type TestBackend } from "./backends.js";
import type { HubClient } from "./engine.js";

export interface WorkerBackend {
  readonly client: HubClient;
  readonly runnerSocket: string;
  /** A TypeScript SDK worker on the backend's sidecar, stopped after the test. */
  startWorker(handlers: Record<string, Handler>, concurrency?: number): Worker;
}

/**
 * A backend for one describe block (started before its tests, disposed after
 * them) whose tests start SDK workers; each test's workers are drained after it.
 */
export function useWorkerBackend(
  kind: BackendKind,
  options: { workerName: string; concurrency: number },
): WorkerBackend {
  let harness: TestBackend | undefined;
  const workers: { worker: Worker; done: Promise<void> }[] = [];
  const started = () => {
    if (!harness) throw new Error("the backend is not started yet (use it inside a test)");
    return harness;
  };

  beforeAll(async () => {
    harness = await startBackend(kind, { ackWaitMs: 2_000 });
  });
  afterEach(async () => {
    for (const { worker, done } of workers.splice(0)) {
      await worker.stop().catch(() => {});
      await done.catch(() => {});
    }
  });
  afterAll(async () => {
    await harness?.[Symbol.asyncDispose]();
  });

  return {
    get client() {
      return started().client;
    },
    get runnerSocket() {
      return started().runnerSocket;
    },
    startWorker(handlers, concurrency = options.concurrency) {
      const worker = new Worker({
        handlers,
        concurrency,
        socket: started().runnerSocket,
        name: options.workerName,
      });
      workers.push({ worker, done: worker.run() });
      return worker;
    },
  };
}
