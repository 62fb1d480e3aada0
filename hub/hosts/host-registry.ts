import type { HostHeartbeat } from "../../core/gen/taskframe/v1/messages_pb.js";
import type { HostChannel } from "../../core/host-channel.js";
import { keepRunning } from "../../core/keep-running.js";
import type { Logger } from "../../core/logger.js";
import type { Database } from "../store/database.js";
import { pruneGoneHosts, recordHeartbeats } from "../store/queries/hosts.js";

/** Heartbeats that arrive within this window are written in one statement. */
const BATCH_MS = 250;
/** Hosts not heard from for a day are forgotten (their history stays in host_events), checked hourly. */
const FORGET_AFTER_MS = 24 * 3_600_000;
const FORGET_EVERY_MS = 3_600_000;

/**
 * Writes sidecars' heartbeats into the `hosts` table (each hub records the
 * heartbeats that reach it; a queue group spreads them over the hubs).
 */
export class HostRegistry {
  readonly #halt = new AbortController();
  #loop: Promise<void> | undefined;
  #forgetting: NodeJS.Timeout | undefined;

  constructor(private readonly deps: { channel: HostChannel; database: Database; logger: Logger }) {}

  start(): void {
    this.#forgetting = setInterval(() => {
      pruneGoneHosts(this.deps.database, FORGET_AFTER_MS).catch((error: unknown) =>
        this.deps.logger.warn({ err: error }, "could not forget hosts gone for a day"),
      );
    }, FORGET_EVERY_MS);
    this.#forgetting.unref();
    this.#loop = keepRunning(
      "the host registry",
      this.#halt.signal,
      (signal) => this.#record(signal),
      this.deps.logger,
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.#forgetting);
    this.#halt.abort();
    await this.#loop;
  }

  async #record(signal: AbortSignal): Promise<void> {
    let pending: HostHeartbeat[] = [];
    let flushing: Promise<void> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const flush = async () => {
      timer = undefined;
      const beats = pending;
      pending = [];
      await recordHeartbeats(this.deps.database, beats).catch((error: unknown) =>
        this.deps.logger.warn({ err: error, hosts: beats.length }, "could not record heartbeats"),
      );
    };
    try {
      for await (const beat of this.deps.channel.heartbeats(signal)) {
        pending.push(beat);
        timer ??= setTimeout(() => {
          flushing = flush();
        }, BATCH_MS);
      }
    } finally {
      clearTimeout(timer);
      await flushing;
      if (pending.length > 0) await flush();
    }
  }
}
