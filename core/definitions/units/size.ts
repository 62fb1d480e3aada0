const EXAMPLES = `a size such as "512M", "8G", "1.5G", "100K", a number of bytes, or "infinity"`;
const SIZE = /^(\d+)(?:\.(\d+))?([KMGTPE]?)$/;
const UNITS = new Map(
  ["", "K", "M", "G", "T", "P", "E"].map((suffix, power) => [suffix, 1024n ** BigInt(power)]),
);
const MAX_BYTES = 2n ** 64n - 1n;

/**
 * Parses a systemd-style size into bytes: suffixes K, M, G, T, P, E are powers of 1024 as in
 * systemd (`8G` is 8 GiB), fractions are allowed with a suffix, and `infinity` is 0 ("no limit").
 * Throws an Error saying what was expected otherwise.
 */
export function parseSizeBytes(text: string): bigint {
  const value = text.trim();
  if (value === "infinity") return 0n;
  const match = SIZE.exec(value);
  if (!match) throw new Error(`expected ${EXAMPLES}, got ${JSON.stringify(text)}${hintFor(value)}`);
  const [, whole = "", fraction = "", suffix = ""] = match;
  if (fraction !== "" && suffix === "") {
    throw new Error(
      `expected a whole number of bytes, got ${JSON.stringify(text)} (or add a suffix: "1.5G")`,
    );
  }
  const unit = UNITS.get(suffix)!;
  const bytes =
    BigInt(whole) * unit +
    (fraction === "" ? 0n : (BigInt(fraction) * unit) / 10n ** BigInt(fraction.length));
  if (bytes === 0n)
    throw new Error(`expected a size above 0, got ${JSON.stringify(text)}; for no limit write "infinity"`);
  if (bytes > MAX_BYTES) throw new Error(`expected a size below 16E, got ${JSON.stringify(text)}`);
  return bytes;
}

function hintFor(value: string): string {
  if (/^\d+(?:\.\d+)?\s*[KMGTPE]i?B$/i.test(value)) {
    const fixed = value.replace(/\s*([KMGTPEkmgtpe])i?B$/i, (_, letter: string) => letter.toUpperCase());
    return ` (sizes are powers of 1024 written without "B": "${fixed}")`;
  }
  if (/^\d+(?:\.\d+)?\s*[kmgtpe]$/.test(value)) return ` (suffixes are upper case: "${value.toUpperCase()}")`;
  if (value.endsWith("%")) return " (percentages of physical memory are not supported)";
  if (value.startsWith("-")) return " (a size cannot be negative)";
  return "";
}
