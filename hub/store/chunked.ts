/** Splits rows so that one multi-row statement stays under Postgres's 65,535 bind-parameter limit. */
export function* chunked<T>(rows: readonly T[], columns: number, maxParams = 60_000): Generator<T[]> {
  const size = Math.max(1, Math.floor(maxParams / columns));
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

export const toIso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
