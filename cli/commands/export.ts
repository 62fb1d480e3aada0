import { mkdir, rename, rmdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import pc from "picocolors";
import type { QueryColumn } from "../../core/gen/taskframe/v1/hub_pb.js";
import { CliError, ExitCode } from "../cli-error.js";
import { NdjsonTableFile } from "../export/ndjson-table-file.js";
import { ParquetTableFile } from "../export/parquet-table-file.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";

export const EXPORT_FORMATS = ["ndjson", "parquet"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions extends StoreOptions {
  day: string;
  out: string;
  format: ExportFormat;
}

const TABLES = ["runs", "tasks", "task_events"] as const;

interface TableFile {
  append(ndjson: Uint8Array): Promise<void>;
  close(): Promise<void>;
  discard(): Promise<void>;
}

const openTableFile = (format: ExportFormat, path: string, columns: readonly QueryColumn[]): TableFile =>
  format === "parquet" ? new ParquetTableFile(path, columns) : new NdjsonTableFile(path);

/**
 * `task export --day D`: a finished UTC day of runs, tasks and audit events,
 * one file per table in OUT/D/, as newline-delimited JSON or Parquet (written
 * beside and renamed into place when complete, so a reader never sees half a
 * file).
 */
export async function exportCommand(options: ExportOptions): Promise<number> {
  const { format } = options;
  const dir = resolve(options.out, options.day);
  await mkdir(dir, { recursive: true });
  const files = new Map<string, { file: TableFile; temp: string; target: string; rows: number }>();
  try {
    await withHubClient(options, async (client) => {
      for await (const batch of client.exportDay({ day: options.day })) {
        let entry = files.get(batch.table);
        if (!entry) {
          const temp = join(dir, `.${batch.table}.${format}.partial`);
          const target = join(dir, `${batch.table}.${format}`);
          entry = { file: openTableFile(format, temp, batch.columns), temp, target, rows: 0 };
          files.set(batch.table, entry);
        }
        await entry.file.append(batch.ndjson);
        entry.rows += batch.rows;
        if (process.stderr.isTTY) process.stderr.write(pc.dim(`\r${batch.table}: ${entry.rows} rows`));
      }
    });
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
    for (const table of TABLES) {
      const entry = files.get(table);
      if (!entry)
        throw new CliError(`the hub sent no ${table} table: is it an older version?`, ExitCode.Unavailable);
      await entry.file.close();
      await rename(entry.temp, entry.target);
      process.stdout.write(`${entry.target}  ${entry.rows} rows\n`);
    }
    return ExitCode.Ok;
  } catch (error) {
    for (const entry of files.values()) await entry.file.discard();
    await rmdir(dir).catch(() => {}); // only if this command made it and left it empty
    throw error;
  }
}
