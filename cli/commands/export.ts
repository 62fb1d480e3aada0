import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import pc from "picocolors";
import { ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";

export interface ExportOptions extends StoreOptions {
  day: string;
  out: string;
}

/**
 * `task export --day D`: a finished UTC day of runs, tasks and audit events as
 * newline-delimited JSON, one file per table in OUT/D/ (written beside and
 * renamed into place when complete, so a reader never sees half a file).
 */
export async function exportCommand(options: ExportOptions): Promise<number> {
  const dir = resolve(options.out, options.day);
  await mkdir(dir, { recursive: true });
  const files = new Map<string, { stream: WriteStream; temp: string; rows: number }>();
  try {
    await withHubClient(options, async (client) => {
      for await (const batch of client.exportDay({ day: options.day })) {
        let file = files.get(batch.table);
        if (!file) {
          const temp = join(dir, `.${batch.table}.ndjson.partial`);
          file = { stream: createWriteStream(temp), temp, rows: 0 };
          files.set(batch.table, file);
        }
        if (!file.stream.write(batch.ndjson)) await once(file.stream, "drain");
        file.rows += batch.rows;
        if (process.stderr.isTTY) process.stderr.write(pc.dim(`\r${batch.table}: ${file.rows} rows`));
      }
    });
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
    for (const table of ["runs", "tasks", "task_events"]) {
      const target = join(dir, `${table}.ndjson`);
      const file = files.get(table);
      if (file) {
        file.stream.end();
        await once(file.stream, "close");
        await rename(file.temp, target);
      } else await writeFile(target, "");
      process.stdout.write(`${target}  ${file?.rows ?? 0} rows\n`);
    }
    return ExitCode.Ok;
  } catch (error) {
    for (const file of files.values()) {
      file.stream.destroy();
      await rm(file.temp, { force: true });
    }
    await rmdir(dir).catch(() => {}); // only if this command made it and left it empty
    throw error;
  }
}
