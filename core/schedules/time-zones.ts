const formats = new Map<string, Intl.DateTimeFormat>();

/**
 * The wall-clock formatter of an IANA zone (24-hour, to the second), or
 * undefined when Intl does not know the zone. Kept per zone: making one
 * costs a quarter of a millisecond, and schedules and catalogues repeat
 * their zones.
 */
export function zoneFormat(zone: string): Intl.DateTimeFormat | undefined {
  const known = formats.get(zone);
  if (known) return known;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    return undefined;
  }
  if (formats.size >= 1024) formats.clear();
  formats.set(zone, format);
  return format;
}
