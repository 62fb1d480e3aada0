import { stringify } from "csv-stringify/sync";
import pc from "picocolors";
import type { QueryResponse } from "../../core/gen/taskframe/v1/hub_pb.js";
import { ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { renderTable } from "../render/table.js";

export interface QueryCommandOptions extends StoreOptions {
  csv?: boolean;
  limit?: number;
  timeout?: number;
}

type Cell = string | number | boolean | null;

const cellsOf = (response: QueryResponse): Cell[][] =>
  response.rows.map((row) => row.values.map((value) => (value.kind.case ? value.kind.value : null)));

/**
 * `task query SQL`: one read-only SELECT over the query views (docs/query.md),
 * printed as a table, JSON (an array of objects) or CSV (with a header).
 */
export async function queryCommand(sql: string, options: QueryCommandOptions): Promise<number> {
  const response = await withHubClient(options, (client) =>
    client.query({ sql, limit: options.limit ?? 0, timeoutMs: options.timeout ?? 0 }),
  );
  const names = response.columns.map((column) => column.name);
  const rows = cellsOf(response);
  if (options.json) {
    const objects = rows.map((row) => Object.fromEntries(names.map((name, i) => [name, row[i]])));
    process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`);
  } else if (options.csv) {
    process.stdout.write(stringify(rows, { header: true, columns: names, cast: { boolean: String } }));
  } else {
    const shown = rows.map((row) => row.map((cell) => (cell === null ? pc.dim("null") : String(cell))));
    process.stdout.write(`${renderTable(names, shown)}\n`);
    const count = rows.length === 1 ? "1 row" : `${rows.length} rows`;
    process.stderr.write(pc.dim(`${count} in ${response.durationMs} ms\n`));
  }
  if (response.truncated)
    process.stderr.write(
      pc.yellow(`only the first ${rows.length} rows: raise --limit, or narrow the query (LIMIT, WHERE)\n`),
    );
  return ExitCode.Ok;
}
