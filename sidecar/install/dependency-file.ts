/**
 * The dependency file a task's `[Install] From=` (YAML `install.from`) names,
 * produced by another team's extraction tool. It is JSON:
 *
 *   { "dependencies": [
 *       { "ecosystem": "pypi", "name": "requests", "version": "2.31.0" },
 *       { "ecosystem": "npm", "name": "is-number", "version": "7.0.0" },
 *       { "ecosystem": "apt", "name": "jq", "version": "" },
 *       { "ecosystem": "artifact", "name": "tool", "version": "1.2",
 *         "url": "https://example.org/tool.tar.gz", "sha256": "<64 hex digits>" } ] }
 *
 * `version` is required for pypi and npm (dependencies are pinned), optional
 * for apt (empty: the candidate version) and artifacts; artifacts need `url`
 * and `sha256`. Unknown keys are rejected so that a typo (`sha265`) is not
 * silently ignored. An entry becomes `name==version` (pypi), `name@version`
 * (npm), `name=version` or `name` (apt), or an {url, sha256} artifact.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { artifactUrlProblem } from "./artifact-source.js";
import { InstallError } from "./install-error.js";

/** What a dependency file (or an InstallSpec) asks for, as installer inputs. */
export interface DependencyLists {
  pip: string[];
  npm: string[];
  apt: string[];
  artifacts: { url: string; sha256: string }[];
}

/** A dependency file that cannot be read or does not follow the format above. */
export class DependencyFileError extends InstallError {
  override name = "DependencyFileError";
}

const PYPI_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._, -]*\])?$/;
const NPM_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9._~-]+$/i;
const APT_NAME = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$/;
const APT_VERSION = /^[A-Za-z0-9.+~:-]+$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
// no spaces, and nothing an installer would take for an option
const PLAIN_TOKEN = /^[^\s-]\S*$/;

const entrySchema = z
  .strictObject({
    ecosystem: z.enum(["pypi", "npm", "apt", "artifact"], {
      error: 'expected one of "pypi", "npm", "apt", "artifact"',
    }),
    name: z.string({ error: "expected a string (the package name)" }).min(1, "expected a non-empty name"),
    version: z.string({ error: "expected a string" }).optional(),
    url: z.string({ error: "expected a string (an absolute path, file:// or http(s):// URL)" }).optional(),
    sha256: z.string({ error: "expected a string of 64 hex digits" }).optional(),
  })
  .superRefine((entry, context) => {
    const problem = (path: string, message: string) =>
      context.addIssue({ code: "custom", path: [path], message });
    const version = entry.version ?? "";
    switch (entry.ecosystem) {
      case "pypi":
        if (!PYPI_NAME.test(entry.name))
          problem("name", `not a valid Python package name: ${JSON.stringify(entry.name)}`);
        if (!PLAIN_TOKEN.test(version)) problem("version", 'expected a pinned version, e.g. "2.31.0"');
        break;
      case "npm":
        if (!NPM_NAME.test(entry.name))
          problem("name", `not a valid npm package name: ${JSON.stringify(entry.name)}`);
        if (!PLAIN_TOKEN.test(version)) problem("version", 'expected a pinned version, e.g. "7.0.0"');
        break;
      case "apt":
        if (!APT_NAME.test(entry.name))
          problem("name", `not a valid Debian package name: ${JSON.stringify(entry.name)}`);
        if (version !== "" && !APT_VERSION.test(version))
          problem("version", `not a valid Debian version: ${JSON.stringify(version)}`);
        break;
      case "artifact": {
        if (entry.url === undefined) problem("url", "missing; an artifact needs a url and a sha256");
        else {
          const urlProblem = artifactUrlProblem(entry.url);
          if (urlProblem) problem("url", urlProblem);
        }
        if (entry.sha256 === undefined) problem("sha256", "missing; an artifact needs a url and a sha256");
        else if (!SHA256.test(entry.sha256))
          problem("sha256", `expected 64 hex digits, got ${JSON.stringify(entry.sha256)}`);
        break;
      }
    }
  });

const dependencyFileSchema = z.object(
  {
    dependencies: z.array(entrySchema, { error: "expected an array of dependencies" }),
  },
  { error: 'expected an object: { "dependencies": [...] }' },
);

export type DependencyFile = z.output<typeof dependencyFileSchema>;
export type DependencyEntry = DependencyFile["dependencies"][number];

/** Reads and validates the file `from` names; a relative path is relative to the task's working directory. */
export async function readDependencyFile(from: string, cwd: string): Promise<DependencyFile> {
  const path = resolve(cwd, from);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new DependencyFileError(
      `${path}: cannot read the dependency file (install from): ${code}`,
      {},
      { cause: error },
    );
  }
  return parseDependencyFile(text, path);
}

/** `file` only names the source in messages. */
export function parseDependencyFile(text: string, file: string): DependencyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // V8 quotes the text around the error: keep it out of task logs, the file may not be the task's to read
    const reason = String(error instanceof Error ? error.message : error).replace(
      /, ".*" is not valid JSON$/s,
      "",
    );
    throw new DependencyFileError(`${file}: not valid JSON: ${reason}`);
  }
  const result = dependencyFileSchema.safeParse(json);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `${file}: ${jsonPath(issue.path)}: ${issue.message}`);
  throw new DependencyFileError(lines.join("\n"));
}

export function dependencyLists(file: DependencyFile): DependencyLists {
  const lists: DependencyLists = { pip: [], npm: [], apt: [], artifacts: [] };
  for (const entry of file.dependencies) {
    const version = entry.version ?? "";
    switch (entry.ecosystem) {
      case "pypi":
        lists.pip.push(`${entry.name}==${version}`);
        break;
      case "npm":
        lists.npm.push(`${entry.name}@${version}`);
        break;
      case "apt":
        lists.apt.push(version ? `${entry.name}=${version}` : entry.name);
        break;
      case "artifact":
        lists.artifacts.push({ url: entry.url!, sha256: entry.sha256!.toLowerCase() });
        break;
    }
  }
  return lists;
}

/** `dependencies[2].sha256`, in the notation of the JSON it points into. */
function jsonPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(top level)";
  return path
    .map((key, index) =>
      typeof key === "number" ? `[${key}]` : index === 0 ? String(key) : `.${String(key)}`,
    )
    .join("");
}
