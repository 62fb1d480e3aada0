export type { SpawnChild, TaskContext } from "./context.js";
export { ChildFailedError, NonRetryableError, RetryAfterError } from "./errors.js";
export { type Handler, Output, SDK_VERSION, Worker, type WorkerOptions } from "./worker.js";
