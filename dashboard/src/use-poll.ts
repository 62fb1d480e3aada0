import { useEffect, useState } from "react";

export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
}

/**
 * Calls `load` now and every `intervalMs` after the previous call ended,
 * until the component goes or `load` changes (keep it stable: a module
 * function or useCallback); the call in flight is aborted.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ data: undefined, error: undefined });
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const data = await load(controller.signal);
        if (!controller.signal.aborted) setState({ data, error: undefined });
      } catch (error) {
        if (!controller.signal.aborted) setState((previous) => ({ ...previous, error: messageOf(error) }));
      }
      if (!controller.signal.aborted) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [load, intervalMs]);
  return state;
}

export const messageOf = (error: unknown): string =>
  error instanceof Error ? ((error as { rawMessage?: string }).rawMessage ?? error.message) : String(error);
