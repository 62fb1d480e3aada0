import { type DescMessage, toBinary } from "@bufbuild/protobuf";
import {
  ExecTargetSchema,
  HandlerTargetSchema,
  RetryPolicySchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../../../core/gen/taskframe/v1/spec_pb.js";

/*
 * TaskSpec bytes for the tasks table, many at a time. `toBinary` walks the
 * schema by reflection for every message and encodes every string through
 * TextEncoder: about 5 µs a task, most of the hub's own work in writing a
 * million-task run. The usual fields are written here directly into one
 * buffer, byte for byte as `toBinary` writes them (task-spec-bytes.test.ts
 * checks that on random specs); anything else (checks, limits, a condition,
 * install, unknown fields) goes through `toBinary`. The fields are checked
 * against the generated schema once: if they changed, every task takes
 * `toBinary` until this file learns the new ones.
 */

const signature = (schema: DescMessage) =>
  schema.fields.map((f) => `${f.number}:${f.localName}:${f.fieldKind}`).join(" ");

const KNOWN_SIGNATURES = [
  [
    TaskSpecSchema,
    "1:name:scalar 2:exec:message 3:handler:message 4:retry:message 5:timeoutMs:scalar 6:limits:message " +
      "7:labels:map 8:pool:scalar 9:needs:list 10:after:list 11:checks:list 12:condition:message 13:user:scalar " +
      "14:group:scalar 15:install:message 16:definedAt:scalar 17:privateNetwork:scalar 18:jail:scalar",
  ],
  [ExecTargetSchema, "1:command:scalar 2:args:list 3:env:map 4:cwd:scalar 5:builtin:scalar"],
  [HandlerTargetSchema, "1:handler:scalar 2:input:scalar 3:contentType:scalar"],
  [
    RetryPolicySchema,
    "1:retries:scalar 2:intervalMs:scalar 3:backoff:enum 4:maxIntervalMs:scalar 5:jitter:scalar " +
      "6:nonRetryableExitCodes:list",
  ],
] as const;

/** Whether the direct encoding knows the generated schema (false: every task takes `toBinary`). */
export const DIRECT_ENCODING = KNOWN_SIGNATURES.every(([schema, known]) => signature(schema) === known);

const LEN = 2;
const VARINT = 0;
const I64 = 1;

/** TaskSpec encodings appended one after another into one growing buffer. */
export class TaskSpecBytes {
  #buffer = Buffer.allocUnsafe(64 * 1024);
  #pos = 0;

  /** Bytes appended since the last `take`. */
  get length(): number {
    return this.#pos;
  }

  /** Appends the task's encoding (what `toBinary(TaskSpecSchema, task)` returns); returns its length. */
  append(task: TaskSpec): number {
    const start = this.#pos;
    if (!DIRECT_ENCODING || !this.#direct(task)) {
      this.#pos = start;
      const bytes = toBinary(TaskSpecSchema, task);
      this.#ensure(bytes.length);
      this.#buffer.set(bytes, this.#pos);
      this.#pos += bytes.length;
    }
    return this.#pos - start;
  }

  /** A copy of the bytes appended since the last `take`; starts over. */
  take(): Buffer {
    const bytes = Buffer.from(this.#buffer.subarray(0, this.#pos));
    this.#pos = 0;
    return bytes;
  }

  /** Writes the task, or returns false (leaving partial bytes) when it has a field written only by toBinary. */
  #direct(task: TaskSpec): boolean {
    if (
      task.$unknown?.length ||
      task.limits !== undefined ||
      task.condition !== undefined ||
      task.install !== undefined ||
      task.checks.length > 0 ||
      task.timeoutMs > BigInt(Number.MAX_SAFE_INTEGER)
    ) {
      return false;
    }
    this.#string(1, task.name);
    const target = task.target;
    if (target.case === "exec") {
      const exec = target.value;
      if (exec.$unknown?.length) return false;
      const at = this.#begin(2);
      this.#string(1, exec.command);
      for (const arg of exec.args) this.#stringAlways(2, arg);
      this.#map(3, exec.env);
      this.#string(4, exec.cwd);
      if (exec.builtin) this.#uint(5, 1);
      this.#end(at);
    } else if (target.case === "handler") {
      const handler = target.value;
      if (handler.$unknown?.length) return false;
      const at = this.#begin(3);
      this.#string(1, handler.handler);
      if (handler.input.length > 0) {
        this.#tag(2, LEN);
        this.#varint(handler.input.length);
        this.#ensure(handler.input.length);
        this.#buffer.set(handler.input, this.#pos);
        this.#pos += handler.input.length;
      }
      this.#string(3, handler.contentType);
      this.#end(at);
    } else if (target.case !== undefined) {
      return false;
    }
    const retry = task.retry;
    if (retry !== undefined) {
      if (
        retry.$unknown?.length ||
        retry.backoff < 0 ||
        retry.intervalMs > BigInt(Number.MAX_SAFE_INTEGER) ||
        retry.maxIntervalMs > BigInt(Number.MAX_SAFE_INTEGER)
      ) {
        return false;
      }
      const at = this.#begin(4);
      this.#uint(1, retry.retries);
      this.#uint(2, Number(retry.intervalMs));
      this.#uint(3, retry.backoff);
      this.#uint(4, Number(retry.maxIntervalMs));
      // -0 too: toBinary writes it (it is not the default 0 bit for bit)
      if (retry.jitter !== 0 || Object.is(retry.jitter, -0)) {
        this.#tag(5, I64);
        this.#ensure(8);
        this.#buffer.writeDoubleLE(retry.jitter, this.#pos);
        this.#pos += 8;
      }
      if (retry.nonRetryableExitCodes.length > 0) {
        // packed, as toBinary writes a repeated scalar
        const codes = this.#begin(6);
        for (const code of retry.nonRetryableExitCodes) this.#varint(code);
        this.#end(codes);
      }
      this.#end(at);
    }
    this.#uint(5, Number(task.timeoutMs));
    this.#map(7, task.labels);
    this.#string(8, task.pool);
    for (const need of task.needs) this.#stringAlways(9, need);
    for (const name of task.after) this.#stringAlways(10, name);
    this.#string(13, task.user);
    this.#string(14, task.group);
    this.#string(16, task.definedAt);
    if (task.privateNetwork) this.#uint(17, 1);
    this.#string(18, task.jail);
    return true;
  }

  #ensure(bytes: number): void {
    if (this.#pos + bytes <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#pos + bytes));
    this.#buffer.copy(grown, 0, 0, this.#pos);
    this.#buffer = grown;
  }

  #tag(field: number, wireType: number): void {
    this.#varint((field << 3) | wireType);
  }

  /** A non-negative integer below 2^53, as a varint. */
  #varint(value: number): void {
    this.#ensure(10);
    const buffer = this.#buffer;
    let pos = this.#pos;
    while (value >= 0x80) {
      buffer[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buffer[pos++] = value;
    this.#pos = pos;
  }

  /** An integer field with implicit presence: nothing when 0. */
  #uint(field: number, value: number): void {
    if (value === 0) return;
    this.#tag(field, VARINT);
    this.#varint(value);
  }

  /** A string field with implicit presence: nothing when empty. */
  #string(field: number, value: string): void {
    if (value !== "") this.#stringAlways(field, value);
  }

  #stringAlways(field: number, value: string): void {
    this.#tag(field, LEN);
    const length = value.length;
    this.#ensure(length * 3 + 10);
    const buffer = this.#buffer;
    let ascii = true;
    for (let i = 0; i < length; i++) {
      if (value.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      // Buffer writes lone surrogates as U+FFFD, as TextEncoder does
      this.#varint(Buffer.byteLength(value, "utf8"));
      this.#pos += buffer.write(value, this.#pos, "utf8");
      return;
    }
    this.#varint(length);
    let pos = this.#pos;
    for (let i = 0; i < length; i++) buffer[pos++] = value.charCodeAt(i);
    this.#pos = pos;
  }

  /** map<string, string>: an entry per key, key and value written even when empty. */
  #map(field: number, entries: { [key: string]: string }): void {
    for (const key of Object.keys(entries)) {
      const at = this.#begin(field);
      this.#stringAlways(1, key);
      this.#stringAlways(2, entries[key]!);
      this.#end(at);
    }
  }

  /** Starts a length-delimited field, reserving a byte for its length; returns where that byte is. */
  #begin(field: number): number {
    this.#tag(field, LEN);
    this.#ensure(1);
    return this.#pos++;
  }

  #end(at: number): void {
    const length = this.#pos - at - 1;
    if (length < 0x80) {
      this.#buffer[at] = length;
      return;
    }
    let extra = 0;
    for (let rest = length; rest >= 0x80; rest = Math.floor(rest / 0x80)) extra++;
    this.#ensure(extra);
    const buffer = this.#buffer;
    buffer.copyWithin(at + 1 + extra, at + 1, this.#pos);
    this.#pos += extra;
    let pos = at;
    let rest = length;
    while (rest >= 0x80) {
      buffer[pos++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    buffer[pos] = rest;
  }
}
