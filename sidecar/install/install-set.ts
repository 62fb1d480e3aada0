/**
 * A task's declared dependencies as one canonical value: every list trimmed,
 * deduplicated and sorted, the `from` file's entries merged in, so that the
 * same dependencies give the same key whatever their order or origin. The key
 * names the set's directory in the install cache.
 */
import { createHash } from "node:crypto";
import type { InstallSpec } from "../../core/gen/taskframe/v1/spec_pb.js";
import { artifactUrlProblem } from "./artifact-source.js";
import type { DependencyLists } from "./dependency-file.js";
import { type Ecosystem, InstallError } from "./install-error.js";

export interface InstallArtifact {
  url: string;
  /** Lower-case hex. */
  sha256: string;
}

export interface InstallSet {
  pip: string[];
  npm: string[];
  apt: string[];
  artifacts: InstallArtifact[];
}

// Bump when the layout of an installed set changes, so that old sets are not reused.
const LAYOUT_VERSION = 1;

const SHA256 = /^[0-9a-f]{64}$/;

/** Throws InstallError for an entry that no installer can take (e.g. one starting with '-'). */
export function installSetOf(spec: InstallSpec, fromFile?: DependencyLists): InstallSet {
  const pip = [...spec.pip, ...(fromFile?.pip ?? [])];
  const npm = [...spec.npm, ...(fromFile?.npm ?? [])];
  const apt = [...spec.apt, ...(fromFile?.apt ?? [])];
  const artifacts = [...spec.artifacts, ...(fromFile?.artifacts ?? [])].map((artifact) => ({
    url: artifact.url.trim(),
    sha256: artifact.sha256.trim().toLowerCase(),
  }));
  for (const artifact of artifacts) {
    const urlProblem = artifactUrlProblem(artifact.url);
    if (urlProblem) throw new InstallError(`artifact: ${urlProblem}`, { ecosystem: "artifact" });
    if (!SHA256.test(artifact.sha256))
      throw new InstallError(
        `artifact ${artifact.url}: sha256 must be 64 hex digits, got ${JSON.stringify(artifact.sha256)}`,
        { ecosystem: "artifact" },
      );
  }
  const byIdentity = new Map(artifacts.map((artifact) => [`${artifact.sha256} ${artifact.url}`, artifact]));
  return {
    // pip requirements may hold spaces (`requests >= 2, < 3`); the others are single words
    pip: canonicalList("pip", pip, /^[^-\s]/),
    npm: canonicalList("npm", npm, /^[^-\s]\S*$/),
    apt: canonicalList("apt", apt, /^[^-\s]\S*$/),
    artifacts: [...byIdentity.keys()].sort(compare).map((identity) => byIdentity.get(identity)!),
  };
}

export function isEmptyInstallSet(set: InstallSet): boolean {
  return set.pip.length + set.npm.length + set.apt.length + set.artifacts.length === 0;
}

/** sha256 (hex) of the canonical JSON of the set. */
export function installSetKey(set: InstallSet): string {
  const canonical = JSON.stringify({
    layout: LAYOUT_VERSION,
    pip: set.pip,
    npm: set.npm,
    apt: set.apt,
    artifacts: set.artifacts.map((artifact) => ({ url: artifact.url, sha256: artifact.sha256 })),
  });
  return createHash("sha256").update(canonical).digest("hex");
}

/** `pip requests==2.31.0; npm is-number@7.0.0; 1 artifact`: for log lines. */
export function describeInstallSet(set: InstallSet): string {
  const parts: string[] = [];
  if (set.apt.length) parts.push(`apt ${set.apt.join(", ")}`);
  if (set.pip.length) parts.push(`pip ${set.pip.join(", ")}`);
  if (set.npm.length) parts.push(`npm ${set.npm.join(", ")}`);
  if (set.artifacts.length)
    parts.push(`${set.artifacts.length} artifact${set.artifacts.length > 1 ? "s" : ""}`);
  return parts.join("; ");
}

function canonicalList(ecosystem: Ecosystem, entries: readonly string[], valid: RegExp): string[] {
  const unique = new Set<string>();
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === "") continue;
    if (!valid.test(entry))
      throw new InstallError(
        `${ecosystem}: ${JSON.stringify(entry)} is not a package specification (it must not start with '-'${ecosystem === "pip" ? "" : " or contain spaces"})`,
        { ecosystem },
      );
    unique.add(entry);
  }
  return [...unique].sort(compare);
}

// code-unit order, independent of the locale
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
