/**
 * The sidecar's cache of installed dependency sets. A task's declared
 * dependencies (InstallSpec, plus its `from` file) form a canonical set whose
 * key names its directory `<dir>/<key>`; ensure() installs the set once and
 * then reuses it for every task that declares the same dependencies.
 *
 * Sets are built in place, at their final path, not in a staging directory
 * renamed afterwards: a Python venv records its own absolute path (in
 * bin/activate and every script's #! line) and does not survive a move. So,
 * for every ecosystem alike, a set is installed into `<dir>/<key>` while
 * holding the set's lock (`<dir>/<key>.lock`, across processes), and the
 * `.complete` marker is written last. A directory without the marker is an
 * install that crashed or is under way: under the lock it is deleted and
 * redone, and eviction deletes those whose lock nobody holds.
 *
 * A failed install deletes the set's directory and rejects with InstallError.
 * Within this process, callers that ask for the same set while it is being
 * installed share that install and all see its output; it is cancelled only
 * when every one of them has aborted.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { errorMessage } from "../../core/errors.js";
import type { InstallSpec } from "../../core/gen/taskframe/v1/spec_pb.js";
import { type Logger, silentLogger } from "../../core/logger.js";
import { aptNotAllowed, installApt } from "./apt-installer.js";
import { installArtifacts } from "./artifact-installer.js";
import { evictLeastRecentlyUsed } from "./cache-eviction.js";
import { dependencyLists, readDependencyFile } from "./dependency-file.js";
import { InstallError } from "./install-error.js";
import {
  describeInstallSet,
  type InstallSet,
  installSetKey,
  installSetOf,
  isEmptyInstallSet,
} from "./install-set.js";
import { type Exposure, type InstallerContext, mergeExposures } from "./installer.js";
import { installNpm } from "./npm-installer.js";
import { installPip } from "./pip-installer.js";
import { lockSet } from "./set-lock.js";
import { readManifest, type SetManifest, touchLastUsed, writeManifest } from "./set-manifest.js";
import { makeWorldReadable } from "./tree-permissions.js";

export { InstallError } from "./install-error.js";

export interface InstallCacheOptions {
  /** The cache's root; created (0755) if missing. See defaultInstallCacheDir(). */
  dir: string;
  /** Above this total size, least recently used sets are evicted after an install. */
  maxBytes: number;
  /** Whether apt packages may be installed (host-wide); if not, a set with any fails. */
  allowApt: boolean;
  /** The interpreter venvs are made with: /usr/bin/python3 if it exists, else python3 on PATH. */
  python?: string;
  /** The sidecar's own diagnostics. */
  logger?: Logger;
  /** The environment installers inherit (pip and npm read their index settings from it); process.env by default. */
  env?: NodeJS.ProcessEnv;
}

export interface InstallContext {
  /** The task's working directory: a relative `from` path is relative to it. */
  cwd: string;
  /** One line of install output, for the task's log. */
  log: (line: string) => void;
  /** Aborting rejects ensure() with the signal's reason. */
  signal: AbortSignal;
}

export interface InstalledSet {
  /** Empty, as is `dir`, when the task declares no dependencies. */
  key: string;
  dir: string;
  /** Variables to set for the task (VIRTUAL_ENV, NODE_PATH). */
  env: Record<string, string>;
  /** Directories to put before the task's PATH, first one first. */
  pathPrepend: string[];
  /** Directories a jail must bind read-only for the task to use the set (the set's own first). */
  readOnlyPaths: string[];
}

interface Listener {
  log: (line: string) => void;
}

interface Flight {
  promise: Promise<InstalledSet>;
  controller: AbortController;
  listeners: Set<Listener>;
}

const NOTHING_INSTALLED: InstalledSet = { key: "", dir: "", env: {}, pathPrepend: [], readOnlyPaths: [] };

export class InstallCache {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly allowApt: boolean;
  private readonly python: string;
  private readonly logger: Logger;
  private readonly env: Record<string, string>;
  private readonly inFlight = new Map<string, Flight>();
  private eviction: Promise<void> = Promise.resolve();

  constructor(options: InstallCacheOptions) {
    if (!(options.maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${options.maxBytes}`);
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.allowApt = options.allowApt;
    this.python = options.python ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
    this.logger = options.logger ?? silentLogger;
    this.env = definedValues(options.env ?? process.env);
  }

  /** Installs the spec's dependencies unless they already are, and says how to use them. */
  async ensure(spec: InstallSpec, context: InstallContext): Promise<InstalledSet> {
    context.signal.throwIfAborted();
    const fromFile = spec.from
      ? dependencyLists(await readDependencyFile(spec.from, context.cwd))
      : undefined;
    const set = installSetOf(spec, fromFile);
    if (isEmptyInstallSet(set)) return NOTHING_INSTALLED;
    if (set.apt.length > 0 && !this.allowApt) throw aptNotAllowed(set.apt);
    context.signal.throwIfAborted();

    const key = installSetKey(set);
    const listener: Listener = { log: context.log };
    let flight = this.inFlight.get(key);
    if (flight) {
      context.log(`waiting: the same dependencies are being installed for another task (set ${short(key)})`);
      flight.listeners.add(listener);
    } else {
      flight = this.startFlight(key, set, listener);
    }
    return this.follow(flight, listener, context.signal);
  }

  private startFlight(key: string, set: InstallSet, first: Listener): Flight {
    const controller = new AbortController();
    const listeners = new Set([first]);
    const log = (line: string) => {
      for (const listener of listeners) {
        try {
          listener.log(line);
        } catch (error) {
          this.logger.warn({ err: error }, "an install log listener failed");
        }
      }
    };
    const flight: Flight = {
      controller,
      listeners,
      promise: this.install(key, set, log, controller).catch((error: unknown) => {
        throw controller.signal.aborted || error instanceof InstallError
          ? error
          : new InstallError(
              `install of set ${short(key)} failed: ${errorMessage(error)}`,
              {},
              { cause: error },
            );
      }),
    };
    // followers get the rejection; this only keeps an abandoned install from being "unhandled"
    flight.promise.catch(() => {});
    const forget = () => {
      if (this.inFlight.get(key) === flight) this.inFlight.delete(key);
    };
    // an aborted install still cleans up, under its lock; a new caller starts afresh and waits for it
    controller.signal.addEventListener("abort", forget, { once: true });
    void flight.promise.finally(forget).catch(() => {});
    this.inFlight.set(key, flight);
    return flight;
  }

  private async follow(flight: Flight, listener: Listener, signal: AbortSignal): Promise<InstalledSet> {
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        flight.listeners.delete(listener);
        if (flight.listeners.size === 0) flight.controller.abort(signal.reason);
        reject(signal.reason);
      };
    });
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([flight.promise, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
      flight.listeners.delete(listener);
    }
  }

  private async install(
    key: string,
    set: InstallSet,
    log: (line: string) => void,
    controller: AbortController,
  ): Promise<InstalledSet> {
    const { signal } = controller;
    await this.makeCacheDir();
    const setDir = join(this.dir, key);
    const release = await lockSet(setDir, {
      signal,
      onWait: () => log(`waiting for another process installing the same dependencies (set ${short(key)})`),
      onCompromised: (error) => {
        this.logger.warn({ key, err: error }, "lost the lock of an install set");
        controller.abort(new InstallError(`lost the lock on install set ${short(key)}: ${error.message}`));
      },
    });
    let installed: SetManifest;
    try {
      const existing = await readManifest(setDir);
      if (existing) {
        await touchLastUsed(setDir);
        log(`using installed dependencies (set ${short(key)}): ${describeInstallSet(set)}`);
        return installedSet(existing, setDir);
      }
      installed = await this.installInto(setDir, key, set, log, signal);
    } finally {
      await release();
    }
    await this.evictAfterInstalling(key, log);
    return installedSet(installed, setDir);
  }

  private async installInto(
    setDir: string,
    key: string,
    set: InstallSet,
    log: (line: string) => void,
    signal: AbortSignal,
  ): Promise<SetManifest> {
    const started = performance.now();
    const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
    log(`installing ${describeInstallSet(set)} (set ${short(key)})`);
    if (existsSync(setDir)) {
      log("removing what an interrupted install of this set left");
      await rm(setDir, { recursive: true, force: true });
    }
    await mkdir(setDir, { mode: 0o755 });
    try {
      const context: InstallerContext = { setDir, env: this.env, log, signal };
      const exposures: Exposure[] = [];
      if (set.apt.length) exposures.push(await installApt(set.apt, context));
      if (set.artifacts.length) exposures.push(await installArtifacts(set.artifacts, context));
      if (set.pip.length) exposures.push(await installPip(set.pip, this.python, context));
      if (set.npm.length) exposures.push(await installNpm(set.npm, context));
      signal.throwIfAborted();
      const exposure = mergeExposures(exposures);
      const manifest: SetManifest = {
        key,
        bytes: await makeWorldReadable(setDir),
        installedAt: new Date().toISOString(),
        description: describeInstallSet(set),
        env: exposure.env,
        pathPrepend: exposure.pathPrepend,
        readOnlyPaths: [setDir, ...exposure.readOnlyPaths],
      };
      await touchLastUsed(setDir);
      await writeManifest(setDir, manifest);
      log(`installed set ${short(key)} (${manifest.bytes} bytes) in ${elapsed()}`);
      this.logger.info(
        { key, bytes: manifest.bytes, ms: Math.round(performance.now() - started) },
        "installed dependency set",
      );
      return manifest;
    } catch (error) {
      await rm(setDir, { recursive: true, force: true });
      log(
        signal.aborted
          ? `install cancelled after ${elapsed()}`
          : `install failed after ${elapsed()}: ${errorMessage(error)}`,
      );
      throw signal.aborted ? signal.reason : error;
    }
  }

  private evictAfterInstalling(justInstalled: string, log: (line: string) => void): Promise<void> {
    const run = this.eviction
      .then(async () => {
        await evictLeastRecentlyUsed({
          dir: this.dir,
          maxBytes: this.maxBytes,
          keep: new Set([justInstalled, ...this.inFlight.keys()]),
          log: (line) => {
            log(line);
            this.logger.info(line);
          },
        });
      })
      .catch((error: unknown) => this.logger.warn({ err: error }, "install cache eviction failed"));
    this.eviction = run;
    return run;
  }

  private async makeCacheDir(): Promise<void> {
    const firstCreated = await mkdir(this.dir, { recursive: true, mode: 0o755 });
    if (firstCreated === undefined) return;
    // mkdir's mode goes through the umask; tasks must be able to traverse every level it created
    for (let path = this.dir; ; path = dirname(path)) {
      await chmod(path, 0o755);
      if (path === firstCreated || path === dirname(path)) break;
    }
  }
}

/**
 * `/var/cache/taskframe/installs` for root; otherwise under the user's cache
 * directory ($XDG_CACHE_HOME, else ~/.cache).
 */
export function defaultInstallCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  uid: number | undefined = process.getuid?.(),
  home: string = homedir(),
): string {
  if (uid === 0) return "/var/cache/taskframe/installs";
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg?.startsWith("/") ? xdg : join(home, ".cache");
  return join(base, "taskframe", "installs");
}

function installedSet(manifest: SetManifest, setDir: string): InstalledSet {
  return {
    key: manifest.key,
    dir: setDir,
    env: { ...manifest.env },
    pathPrepend: [...manifest.pathPrepend],
    readOnlyPaths: [...manifest.readOnlyPaths],
  };
}

function definedValues(env: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) result[name] = value;
  return result;
}

const short = (key: string) => key.slice(0, 12);
