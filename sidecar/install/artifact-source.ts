import { basename, isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage } from "../../core/errors.js";

/** Where an artifact comes from: a local file (absolute path or file:// URL) or an http(s) URL. */
export type ArtifactSource = { kind: "file"; path: string } | { kind: "http"; url: string };

const TARBALL_SUFFIXES = [".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar.zst"];

/** Why `url` cannot name an artifact, or undefined if it can. */
export function artifactUrlProblem(url: string): string | undefined {
  try {
    artifactSource(url);
    return undefined;
  } catch (error) {
    return errorMessage(error);
  }
}

/** Throws an Error saying what is accepted when `url` is none of them. */
export function artifactSource(url: string): ArtifactSource {
  if (isAbsolute(url)) return { kind: "file", path: url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(
      `expected an absolute path, a file:// URL or an http(s):// URL, got ${JSON.stringify(url)}`,
    );
  }
  if (parsed.protocol === "file:") return { kind: "file", path: fileURLToPath(parsed) };
  if (parsed.protocol === "http:" || parsed.protocol === "https:") return { kind: "http", url: parsed.href };
  throw new Error(
    `unsupported scheme ${JSON.stringify(parsed.protocol)} in ${JSON.stringify(url)} (expected an absolute path, file://, http:// or https://)`,
  );
}

/** The file name the artifact is known by: the last segment of its path (without query or fragment). */
export function artifactFileName(source: ArtifactSource): string {
  if (source.kind === "file") return basename(source.path);
  const last = new URL(source.url).pathname.split("/").at(-1) ?? "";
  try {
    return decodeURIComponent(last);
  } catch {
    return last; // a malformed %-escape: the name as written
  }
}

export function isTarball(fileName: string): boolean {
  const lower = fileName.toLowerCase();
  return TARBALL_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}
