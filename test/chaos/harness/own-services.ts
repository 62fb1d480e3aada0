import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFile, chown, mkdtemp, rm, statfs } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { until } from "../../helpers/until.js";

const run = promisify(execFile);

/** A TCP port nothing listens on right now. */
export async function sparePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

/**
 * A nats-server with JetStream of the chaos suite's own, on a spare port and
 * a store directory of its own, so that a scenario can kill and restart it
 * without touching the machine's NATS.
 */
export class OwnNats implements AsyncDisposable {
  #child: ChildProcess | undefined;
  #log = "";

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    readonly bind: string,
    readonly configFile: string | undefined,
    readonly mounted: boolean,
  ) {}

  /**
   * `bind`: 0.0.0.0 when hosts in network namespaces must reach it;
   * `configFile`: a nats-server config (users and permissions); `diskBytes`:
   * the store lives on a tmpfs of that size, which a scenario can fill.
   */
  static async start(
    options: { bind?: string; configFile?: string; diskBytes?: number } = {},
  ): Promise<OwnNats> {
    const storeDir = await mkdtemp(join(tmpdir(), "taskframe-chaos-nats-"));
    if (options.diskBytes) await mountTmpfs(storeDir, options.diskBytes);
    const nats = new OwnNats(
      await sparePort(),
      storeDir,
      options.bind ?? "127.0.0.1",
      options.configFile,
      options.diskBytes !== undefined,
    );
    await nats.restart();
    return nats;
  }

  /** The end of what the server logged. */
  get log(): string {
    return this.#log;
  }

  /** Takes every free byte of the store's filesystem (a tmpfs: see `start`); `unfill` gives them back. */
  async fill(): Promise<void> {
    await fillFilesystem(join(this.storeDir, "filler"));
  }

  async unfill(): Promise<void> {
    await rm(join(this.storeDir, "filler"), { force: true });
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async restart(): Promise<void> {
    if (this.running) throw new Error("nats-server is already running");
    const config = this.configFile ? ["-c", this.configFile] : [];
    const child = spawn(
      "nats-server",
      [...config, "-a", this.bind, "-p", String(this.port), "-js", "-sd", this.storeDir],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    child.stderr?.on("data", (data: Buffer) => {
      this.#log = (this.#log + data.toString()).slice(-20_000);
    });
    this.#child = child;
    await until(
      async () => this.#log.includes("Server is ready") || child.exitCode !== null,
      (ready) => ready,
      15_000,
    );
    if (child.exitCode !== null) throw new Error(`nats-server exited:\n${this.#log}`);
  }

  /** Stops it with `signal` (SIGTERM: graceful, SIGKILL: a crash) and waits for the exit. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once("close", resolve));
    child.kill(signal);
    await exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill("SIGKILL");
    if (this.mounted) await run("umount", [this.storeDir]).catch(() => {});
    await rm(this.storeDir, { recursive: true, force: true });
  }
}

/**
 * A Postgres cluster of the chaos suite's own (initdb into a temporary
 * directory, run as the `postgres` user on a spare port), so that a scenario
 * can `pg_ctl stop -m immediate` it: the machine's Postgres stays untouched.
 */
export class OwnPostgres implements AsyncDisposable {
  private constructor(
    readonly port: number,
    readonly dataDir: string,
    readonly mounted: boolean,
    readonly listenAddresses: string,
  ) {}

  /**
   * `diskBytes`: the cluster lives on a tmpfs of that size, which a scenario
   * can fill. `otherHosts`: it also listens for the network-namespace hosts
   * (10.77.0.0/16), trusting them as it trusts loopback. `settings`: lines
   * for postgresql.conf.
   */
  static async start(
    options: { diskBytes?: number; otherHosts?: boolean; settings?: Record<string, string> } = {},
  ): Promise<OwnPostgres> {
    const dir = await mkdtemp(join(tmpdir(), "taskframe-chaos-pg-"));
    if (options.diskBytes) await mountTmpfs(dir, options.diskBytes);
    const { uid, gid } = await postgresUser();
    await chown(dir, uid, gid);
    const pg = new OwnPostgres(
      await sparePort(),
      join(dir, "data"),
      options.diskBytes !== undefined,
      options.otherHosts ? "*" : "127.0.0.1",
    );
    await asPostgres("initdb", ["-D", pg.dataDir, "-A", "trust", "-U", "postgres", "--no-sync"]);
    if (options.otherHosts)
      await appendFile(join(pg.dataDir, "pg_hba.conf"), "host all all 10.77.0.0/16 trust\n");
    const settings = Object.entries(options.settings ?? {});
    if (settings.length > 0)
      await appendFile(
        join(pg.dataDir, "postgresql.conf"),
        settings.map(([key, value]) => `${key} = '${value}'\n`).join(""),
      );
    await pg.restart();
    return pg;
  }

  /** Outside the cluster's directory: it is written even when that filesystem is full. */
  get logFile(): string {
    return `${join(this.dataDir, "..")}.log`;
  }

  /** The URL of database `name` on this server. */
  url(name = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  async restart(): Promise<void> {
    await asPostgres("pg_ctl", [
      "-D",
      this.dataDir,
      "-l",
      this.logFile,
      "-o",
      `-p ${this.port} -c listen_addresses='${this.listenAddresses}' -c unix_socket_directories='' -c fsync=off -c max_connections=200`,
      "-w",
      "start",
    ]);
  }

  /** `pg_ctl stop -m immediate`: every backend dies at once, as in a crash; recovery replays the WAL. */
  async stopImmediately(): Promise<void> {
    await asPostgres("pg_ctl", ["-D", this.dataDir, "-m", "immediate", "-w", "stop"]);
  }

  /** Whether the server runs (`pg_ctl status`). */
  async running(): Promise<boolean> {
    return asPostgres("pg_ctl", ["-D", this.dataDir, "status"]).then(
      () => true,
      () => false,
    );
  }

  /** Takes every free byte of the cluster's filesystem (a tmpfs: see `start`); `unfill` gives them back. */
  async fill(): Promise<void> {
    await fillFilesystem(this.#filler);
  }

  async unfill(): Promise<void> {
    await rm(this.#filler, { force: true });
  }

  get #filler(): string {
    return join(this.dataDir, "..", "filler");
  }

  async createDatabase(name: string): Promise<string> {
    const admin = postgres(this.url(), { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`create database ${name}`);
    } finally {
      await admin.end();
    }
    return this.url(name);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await asPostgres("pg_ctl", ["-D", this.dataDir, "-m", "immediate", "-w", "stop"]).catch(() => {});
    if (this.mounted) await run("umount", [join(this.dataDir, "..")]).catch(() => {});
    await rm(join(this.dataDir, ".."), { recursive: true, force: true });
    await rm(this.logFile, { force: true });
  }
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    run("id", ["-u", "postgres"]),
    run("id", ["-g", "postgres"]),
  ]);
  return { uid: Number(uid), gid: Number(gid) };
}

const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";

async function asPostgres(program: string, args: string[]): Promise<void> {
  const command = process.getuid?.() === 0 ? "runuser" : `${POSTGRES_BIN}/${program}`;
  const argv =
    process.getuid?.() === 0 ? ["-u", "postgres", "--", `${POSTGRES_BIN}/${program}`, ...args] : args;
  await run(command, argv, { cwd: "/tmp" });
}

async function mountTmpfs(dir: string, bytes: number): Promise<void> {
  await run("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir]);
}

/**
 * Writes `file` until its filesystem is full (ENOSPC): a server may take
 * space between a size reading and a write. The server may also free some
 * (JetStream removes acked messages): the file grows again until none is left.
 */
async function fillFilesystem(file: string): Promise<void> {
  let bavail = 0;
  for (let attempt = 0; attempt < 10; attempt++) {
    await run("sh", ["-c", 'cat /dev/zero >> "$1" 2>/dev/null; true', "fill", file]);
    ({ bavail } = await statfs(dirname(file)));
    if (bavail === 0) return;
  }
  throw new Error(`the filesystem of ${file} still has ${bavail} free blocks`);
}
