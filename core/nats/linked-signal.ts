/**
 * A signal that aborts when any of `signals` does, and `dispose()` to detach
 * it from them. Unlike AbortSignal.any, nothing stays registered on a
 * long-lived signal (e.g. a queue's close signal) once the operation is over.
 */
export function linkedSignal(...signals: readonly (AbortSignal | undefined)[]): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  const abort = () => controller.abort();
  const dispose = () => {
    for (const s of present) s.removeEventListener("abort", abort);
  };
  for (const s of present) {
    if (s.aborted) {
      controller.abort();
      break;
    }
    s.addEventListener("abort", abort, { once: true });
  }
  if (controller.signal.aborted) dispose();
  return { signal: controller.signal, dispose };
}
