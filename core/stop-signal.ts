/**
 * Resolves at the first SIGTERM or SIGINT (or when `alsoWhen` settles), and
 * stops listening for them: a second signal then ends the process as usual.
 */
export function untilStopSignal(alsoWhen?: Promise<unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    alsoWhen?.then(stop, stop);
  });
}
