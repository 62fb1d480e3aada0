/*
 * Values of the keys that ask the sidecar's jail for something (limits, network, profile, pinned
 * files), shared by INI units and YAML pipelines so that both say the same thing about a bad value.
 * Each parser throws an Error saying what was expected and what was written.
 */

/** `LimitPids=infinity`: Linux's largest pid_max (PID_MAX_LIMIT), so as many as the pool allows. */
export const PIDS_INFINITY = 4_194_304;
/** The largest `LimitCPU=`: 1000 CPUs. */
export const MAX_CPU_PERCENT = 100_000;
/** Jail profiles a task may ask for; "none" is the operator's to choose, for a whole pool. */
export const JAIL_PROFILES = ["standard", "strict"] as const;
export type JailProfile = (typeof JAIL_PROFILES)[number];

/** A pinned file: where to fetch it, and its sha256 (lower case). */
export interface ArtifactPin {
  url: string;
  sha256: string;
}

/** A value as written: text quoted, numbers (from YAML) as they are. */
const show = (value: string | number): string =>
  typeof value === "number" ? String(value) : JSON.stringify(value);

const PIDS_EXPECTED = `a number of processes from 1 to ${PIDS_INFINITY}, or "infinity"`;

/**
 * A limit on processes and threads: `1`..4194304, or `infinity` (4194304, so as many as the pool
 * allows). Leaving the key out is 0 in the TaskSpec: the pool's default.
 */
export function parsePids(value: string | number): number {
  const text = String(value).trim();
  if (text === "infinity") return PIDS_INFINITY;
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (count === 0) {
      throw new Error(
        `expected ${PIDS_EXPECTED}, got ${show(value)}; leave it out for the pool's default, or write "infinity" for as many as the pool allows`,
      );
    }
    if (count <= PIDS_INFINITY) return count;
    throw new Error(
      `expected at most ${PIDS_INFINITY} processes (Linux's largest pid_max), got ${show(value)}; "infinity" is as many as the pool allows`,
    );
  }
  let hint = "";
  if (text.endsWith("%")) hint = " (percentages of the host's pid limit are not supported)";
  else if (text.startsWith("-")) hint = " (a number of processes cannot be negative)";
  throw new Error(`expected ${PIDS_EXPECTED}, got ${show(value)}${hint}`);
}

const CPU_EXPECTED = `a percentage of one CPU such as "50%", "150%" or "200%" (1% to ${MAX_CPU_PERCENT}%), or "infinity"`;

/**
 * A CPU quota as a percentage of one CPU (`150%` is one and a half CPUs), in thousandths of a CPU:
 * `150%` is 1500. `infinity` is 0, no quota. `bareNumberNote` is added when the `%` is missing.
 */
export function parseCpuMillis(value: string | number, bareNumberNote = ""): number {
  const text = String(value).trim();
  if (text === "infinity") return 0;
  const percent = /^(\d+)%$/.exec(text);
  if (percent) {
    const whole = Number(percent[1]);
    if (whole === 0)
      throw new Error(`expected ${CPU_EXPECTED}, got ${show(value)}; for no quota write "infinity"`);
    if (whole > MAX_CPU_PERCENT) {
      throw new Error(`expected at most ${MAX_CPU_PERCENT}% (1000 CPUs), got ${show(value)}`);
    }
    return whole * 10;
  }
  let hint = "";
  if (/^\d+\.\d*%$/.test(text)) hint = " (a whole percentage)";
  else if (/^\d+(?:\.\d+)?$/.test(text)) {
    const cpus = Number(text);
    const written = Number.isInteger(cpus * 100) ? `"${cpus * 100}%"` : "a percentage";
    hint = ` (add "%": ${written} is ${cpus} CPU${cpus === 1 ? "" : "s"}${bareNumberNote})`;
  } else if (text.startsWith("-")) hint = " (a CPU quota cannot be negative)";
  throw new Error(`expected ${CPU_EXPECTED}, got ${show(value)}${hint}`);
}

/** A jail profile stricter than or as strict as the pool's; never `none`. */
export function parseJail(value: string): JailProfile {
  if ((JAIL_PROFILES as readonly string[]).includes(value)) return value as JailProfile;
  const lower = (JAIL_PROFILES as readonly string[]).find((profile) => profile === value.toLowerCase());
  const hint = lower ? ` (names are case-sensitive: "${lower}")` : "";
  throw new Error(
    `expected "standard" or "strict", got ${show(value)}${hint}: a task can ask for a stricter jail than its pool's, never a looser one; only the operator chooses "none", for a whole pool`,
  );
}

const URL_EXPECTED = "an absolute path, a file:// URL or an http(s):// URL";
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/** Where an artifact is fetched from: an absolute path, `file:///...`, `http://...` or `https://...`. */
export function parseArtifactUrl(text: string): string {
  if (text.trim() === "") throw new Error(`expected ${URL_EXPECTED}, got nothing`);
  if (/\s/.test(text)) throw new Error(`expected ${URL_EXPECTED}, got ${show(text)} (it has whitespace)`);
  if (text.startsWith("/")) return text;
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new Error(`expected ${URL_EXPECTED}, got ${show(text)} (a path must be absolute)`);
  }
  if (scheme !== "file" && scheme !== "http" && scheme !== "https") {
    throw new Error(`expected ${URL_EXPECTED}, got ${show(text)} (${scheme}: is not supported)`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`expected ${URL_EXPECTED}, got ${show(text)}, which is not a valid URL`);
  }
  if (scheme === "file") {
    if (!text.toLowerCase().startsWith("file:///") || url.host !== "") {
      throw new Error(
        `expected a file:// URL of an absolute path on the sidecar's host, such as "file:///opt/tools/x.tar.gz", got ${show(text)}`,
      );
    }
    return text;
  }
  if (url.hostname === "" || !/^https?:\/\//i.test(text)) {
    throw new Error(
      `expected an http(s):// URL with a host, such as "https://example.com/x.tar.gz", got ${show(text)}`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new Error(
      `expected a URL without credentials, got one with a user name or password: the URL is stored with the task; serve the file without them, or fetch it first and name its path`,
    );
  }
  return text;
}

/** A sha256 as 64 hex digits (as `sha256sum` prints it), returned in lower case. */
export function parseSha256(value: string): string {
  if (/^[0-9A-Fa-f]{64}$/.test(value)) return value.toLowerCase();
  const expected = "64 hex digits (the file's sha256, as sha256sum prints it)";
  if (value === "") throw new Error(`expected ${expected}, got nothing`);
  const bad = /[^0-9A-Fa-f]/.exec(value)?.[0];
  const why = bad === undefined ? `${value.length} digits` : `${JSON.stringify(bad)} is not a hex digit`;
  throw new Error(`expected ${expected}, got ${show(value)} (${why})`);
}
