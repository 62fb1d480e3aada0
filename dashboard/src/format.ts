const time = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export const formatTime = (unixMs: number): string => (unixMs > 0 ? time.format(new Date(unixMs)) : "");

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

/** From `startMs` to `endMs`, or to now while it is not over. */
export const span = (startMs: number, endMs: number): string =>
  startMs > 0 ? formatDuration((endMs > 0 ? endMs : Date.now()) - startMs) : "";

export const shortId = (id: string): string => id.slice(0, 8);
