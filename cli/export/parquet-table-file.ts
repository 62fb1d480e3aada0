import { rm } from "node:fs/promises";
import { type BasicType, fileWriter, ParquetWriter, schemaFromColumnData } from "hyparquet-writer";
import type { QueryColumn } from "../../core/gen/taskframe/v1/hub_pb.js";

/** Rows per row group: the memory bound of an export, whatever the size of the day. */
const ROW_GROUP_ROWS = 50_000;

type Convert = (value: unknown) => unknown;

/** A Postgres type (information_schema's data_type) as a Parquet type, and how a JSON value becomes it. */
function parquetColumn(postgresType: string): { type: BasicType; convert: Convert } {
  switch (postgresType) {
    case "smallint":
    case "integer":
    case "bigint":
      return { type: "INT64", convert: (v) => BigInt(v as number) };
    case "real":
    case "double precision":
    case "numeric":
      return { type: "DOUBLE", convert: Number };
    case "boolean":
      return { type: "BOOLEAN", convert: Boolean };
    case "timestamp with time zone":
    case "timestamp without time zone":
      return { type: "TIMESTAMP", convert: (v) => new Date(v as string) };
    case "json":
    case "jsonb":
    case "ARRAY":
      return { type: "JSON", convert: (v) => v };
    default:
      return { type: "STRING", convert: String };
  }
}

/**
 * One table of an export as a Parquet file, written a row group at a time
 * (hyparquet-writer) from the NDJSON batches the hub streams. Columns and
 * their types come from the hub's first message for the table.
 */
export class ParquetTableFile {
  readonly #path: string;
  readonly #columns: { name: string; type: BasicType; convert: Convert }[];
  readonly #writer: ParquetWriter;
  #buffers: unknown[][];
  #decoder = new TextDecoder();

  constructor(path: string, columns: readonly QueryColumn[]) {
    this.#path = path;
    this.#columns = columns.map((column) => ({ name: column.name, ...parquetColumn(column.type) }));
    this.#buffers = this.#columns.map(() => []);
    const schema = schemaFromColumnData({
      columnData: this.#columns.map(({ name, type }) => ({ name, type, data: [], nullable: true })),
    });
    this.#writer = new ParquetWriter({ writer: fileWriter(path), schema, createdBy: "taskframe" });
  }

  async append(ndjson: Uint8Array): Promise<void> {
    const text = this.#decoder.decode(ndjson);
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const row = JSON.parse(line) as Record<string, unknown>;
      this.#columns.forEach((column, i) => {
        const value = row[column.name];
        this.#buffers[i]!.push(value === null || value === undefined ? null : column.convert(value));
      });
    }
    if ((this.#buffers[0]?.length ?? 0) >= ROW_GROUP_ROWS) await this.#flush();
  }

  async close(): Promise<void> {
    await this.#flush();
    await this.#writer.finish();
  }

  /** Ends the file and deletes it. */
  async discard(): Promise<void> {
    await Promise.resolve(this.#writer.finish()).catch(() => {});
    await rm(this.#path, { force: true });
  }

  async #flush(): Promise<void> {
    if ((this.#buffers[0]?.length ?? 0) === 0) return;
    const columnData = this.#columns.map(({ name, type }, i) => ({
      name,
      type,
      nullable: true,
      data: this.#buffers[i]!,
    }));
    this.#buffers = this.#columns.map(() => []);
    await this.#writer.write({ columnData, rowGroupSize: ROW_GROUP_ROWS });
  }
}
