import { findPids, procSample } from "./proc-stats.js";

/** Processes to watch, by the part of the system they are. */
export type ProcessGroups = Record<string, () => number[]>;

/**
 * CPU time each group of processes spent between `start()` and `end()`:
 * where a benchmark's CPU went, hub, sidecar, workers, NATS and Postgres
 * alike. A process that started in between counts from zero.
 */
export function cpuShare(groups: ProcessGroups): { start(): void; end(): Record<string, number> } {
  const before = new Map<number, number>();
  const ticks = (pid: number) => procSample(pid)?.cpuTicks;
  return {
    start() {
      for (const pids of Object.values(groups)) for (const pid of pids()) before.set(pid, ticks(pid) ?? 0);
    },
    /** CPU seconds per group. */
    end() {
      return Object.fromEntries(
        Object.entries(groups).map(([name, pids]) => {
          let spent = 0;
          for (const pid of pids()) spent += (ticks(pid) ?? 0) - (before.get(pid) ?? 0);
          return [name, spent / 100];
        }),
      );
    },
  };
}

/** The nats-server processes of this machine. */
export const natsServerPids = () => findPids((_, comm) => comm === "nats-server");

/** Postgres backends serving `database`, and the server's own writers (WAL, checkpoints). */
export const postgresPids = (database: string) =>
  findPids(
    (cmdline, comm) =>
      comm === "postgres" &&
      (cmdline.includes(` ${database} `) ||
        /postgres: \S+: (walwriter|checkpointer|background writer)/.test(cmdline)),
  );
