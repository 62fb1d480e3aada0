/**
 * Artifacts pinned by sha256: fetched into the set, checked, then a tarball is
 * unpacked into `<set>/artifacts/<sha256 prefix>/` and any other file becomes
 * the executable `<set>/bin/<file name>`.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { type ArtifactSource, artifactFileName, artifactSource, isTarball } from "./artifact-source.js";
import { runInstallCommand } from "./install-command.js";
import { InstallError } from "./install-error.js";
import type { InstallArtifact } from "./install-set.js";
import type { Exposure, InstallerContext } from "./installer.js";

const SHA_PREFIX_CHARS = 16;

export async function installArtifacts(
  artifacts: readonly InstallArtifact[],
  context: InstallerContext,
): Promise<Exposure> {
  const binDir = join(context.setDir, "bin");
  const binNames = new Set<string>();
  const unpacked = new Set<string>();
  const unpackedBins: string[] = [];
  for (const artifact of artifacts) {
    const source = artifactSource(artifact.url);
    const fileName = artifactFileName(source);
    // an http URL's last segment is decoded, and `..%2Fx` must not leave bin/
    if (fileName === "" || fileName === "." || fileName === ".." || fileName.includes("/"))
      throw new InstallError(`artifact ${artifact.url}: the URL names no file`, { ecosystem: "artifact" });
    const shaPrefix = artifact.sha256.slice(0, SHA_PREFIX_CHARS);
    const tarball = isTarball(fileName);
    if (tarball && unpacked.has(artifact.sha256)) continue;
    if (!tarball && binNames.has(fileName))
      throw new InstallError(`artifact ${artifact.url}: another artifact is also named bin/${fileName}`, {
        ecosystem: "artifact",
      });

    const download = join(context.setDir, `.download-${shaPrefix}`);
    context.log(`fetching ${artifact.url}`);
    const fetched = await fetchTo(source, artifact.url, download, context.signal);
    if (fetched.sha256 !== artifact.sha256)
      throw new InstallError(
        `artifact ${artifact.url}: sha256 mismatch: expected ${artifact.sha256}, got ${fetched.sha256}`,
        { ecosystem: "artifact" },
      );
    context.log(`fetched ${fetched.bytes} bytes, sha256 ${fetched.sha256} as expected`);

    if (tarball) {
      const into = join(context.setDir, "artifacts", shaPrefix);
      await mkdir(into, { recursive: true });
      await runInstallCommand({
        ecosystem: "artifact",
        command: "tar",
        // as root, tar would otherwise keep the archive's owners and setuid bits
        args: ["--no-same-owner", "--no-same-permissions", "-x", "-f", download, "-C", into],
        env: context.env,
        cwd: context.setDir,
        log: context.log,
        signal: context.signal,
      });
      await rm(download);
      unpacked.add(artifact.sha256);
      const bin = await unpackedBinDir(into);
      if (bin) unpackedBins.push(bin);
    } else {
      await mkdir(binDir, { recursive: true });
      const target = join(binDir, fileName);
      await rename(download, target);
      await chmod(target, 0o755);
      binNames.add(fileName);
    }
  }
  return { env: {}, pathPrepend: [...(binNames.size ? [binDir] : []), ...unpackedBins], readOnlyPaths: [] };
}

/** `<into>/bin`, or `<into>/<top>/bin` for a tarball that holds one top directory (`tool-1.2/bin`). */
async function unpackedBinDir(into: string): Promise<string | undefined> {
  if (await isDirectory(join(into, "bin"))) return join(into, "bin");
  const entries = await readdir(into, { withFileTypes: true });
  const only = entries.length === 1 ? entries[0] : undefined;
  if (only?.isDirectory() && (await isDirectory(join(into, only.name, "bin"))))
    return join(into, only.name, "bin");
  return undefined;
}

async function fetchTo(
  source: ArtifactSource,
  url: string,
  destination: string,
  signal: AbortSignal,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    const input = source.kind === "file" ? createReadStream(source.path) : await httpBody(source.url, signal);
    await pipeline(
      input,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          bytes += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(destination, { mode: 0o644 }),
      { signal },
    );
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof InstallError) throw error;
    throw new InstallError(
      `artifact ${url}: cannot fetch: ${describeFetchError(error)}`,
      { ecosystem: "artifact" },
      {
        cause: error,
      },
    );
  }
  return { sha256: hash.digest("hex"), bytes };
}

async function httpBody(url: string, signal: AbortSignal): Promise<Readable> {
  const response = await fetch(url, { signal, redirect: "follow" });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new InstallError(`artifact ${url}: HTTP ${response.status} ${response.statusText}`.trim(), {
      ecosystem: "artifact",
    });
  }
  return Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>);
}

// fetch() says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND...) is its cause
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}
