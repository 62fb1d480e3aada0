import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** One execution of a task's program, as the program itself recorded it (fixtures/ledger-task.sh). */
export interface Execution {
  taskId: string;
  attempt: number;
  leaseEpoch: number;
  host: string;
  pid: number;
  startNs: bigint;
  /** Absent when the execution never reached its end (killed, or still running). */
  endNs?: bigint;
  exitCode?: number;
}

export const LEDGER_TASK = new URL("../fixtures/ledger-task.sh", import.meta.url).pathname;

/** The argv of a ledger task: `ledger-task.sh DIR SECONDS EXIT LINES [MODE [URL]]`. */
export function ledgerTaskArgs(
  ledgerDir: string,
  options: { seconds?: number; exitCode?: number; logLines?: number; mode?: string; url?: string } = {},
): string[] {
  const args = [
    ledgerDir,
    String(options.seconds ?? 0),
    String(options.exitCode ?? 0),
    String(options.logLines ?? 3),
  ];
  if (options.mode) args.push(options.mode);
  if (options.url) args.push(options.url);
  return args;
}

/** What the ledger task writes to stdout for one attempt with `lines` lines. */
export function expectedLog(taskId: string, attempt: number, lines: number): string {
  let text = "";
  for (let i = 0; i < lines; i++) text += `log ${taskId} ${attempt} line ${i}\n`;
  return text;
}

/** Every execution in every host's ledger file, start and end records joined by (task, attempt, epoch, host, pid). */
export async function readLedger(dir: string): Promise<Execution[]> {
  const executions = new Map<string, Execution>();
  const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith(".log"));
  for (const file of files) {
    const text = await readFile(join(dir, file), "utf8");
    for (const line of text.split("\n")) {
      const [kind, taskId, attempt, epoch, host, pid, at, exit] = line.split(" ");
      if ((kind !== "start" && kind !== "end") || !taskId || !at) continue;
      const key = [taskId, attempt, epoch, host, pid].join(" ");
      let execution = executions.get(key);
      if (!execution) {
        execution = {
          taskId,
          attempt: Number(attempt),
          leaseEpoch: Number(epoch),
          host: host ?? "",
          pid: Number(pid),
          startNs: BigInt(at),
        };
        executions.set(key, execution);
      }
      if (kind === "start") execution.startNs = BigInt(at);
      else if (execution.endNs === undefined) {
        execution.endNs = BigInt(at);
        execution.exitCode = Number(exit);
      }
    }
  }
  return [...executions.values()];
}
