import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Backoff, type TaskSpec, TaskSpecSchema } from "../../../core/gen/taskframe/v1/spec_pb.js";
import { DIRECT_ENCODING, TaskSpecBytes } from "./task-spec-bytes.js";

/** Strings of every kind: ASCII, other scripts, astral characters, lone surrogates, long ones. */
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.constantFrom("\ud800", "a\udfffb", "é", ""),
  fc.string({ minLength: 100, maxLength: 300 }),
);
const uint64 = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: 0n, max: 300n }),
);
const strings = fc.array(text, { maxLength: 4 });
const map = fc.dictionary(fc.oneof(text, fc.constantFrom("1", "10", "2")), text, { maxKeys: 3 });

const target = fc.oneof(
  fc.constant(undefined),
  fc.record({
    case: fc.constant("exec" as const),
    value: fc.record({ command: text, args: strings, env: map, cwd: text, builtin: fc.boolean() }),
  }),
  fc.record({
    case: fc.constant("handler" as const),
    value: fc.record({
      handler: text,
      input: fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ minLength: 130, maxLength: 400 })),
      contentType: text,
    }),
  }),
);

const spec = fc.record(
  {
    name: text,
    target,
    retry: fc.record({
      retries: fc.nat(),
      intervalMs: uint64,
      backoff: fc.constantFrom(Backoff.UNSPECIFIED, Backoff.FIXED, Backoff.EXPONENTIAL, 7),
      maxIntervalMs: uint64,
      jitter: fc.oneof(fc.constantFrom(0, -0), fc.double()),
      nonRetryableExitCodes: fc.array(fc.nat({ max: 2 ** 32 - 1 }), { maxLength: 4 }),
    }),
    timeoutMs: uint64,
    labels: map,
    pool: text,
    needs: strings,
    after: strings,
    user: text,
    group: text,
    definedAt: text,
    privateNetwork: fc.boolean(),
    jail: fc.constantFrom("", "standard", "strict"),
    checks: fc.array(fc.record({ name: text, command: text, args: strings }), { maxLength: 1 }),
    limits: fc.record({ memoryBytes: uint64, diskBytes: uint64, pids: fc.nat(), cpuMillis: fc.nat() }),
  },
  { requiredKeys: ["name"] },
);

const encode = (tasks: TaskSpec[]) => {
  const writer = new TaskSpecBytes();
  const lengths = tasks.map((task) => writer.append(task));
  return { bytes: writer.take(), lengths };
};

describe("TaskSpecBytes", () => {
  it("knows the generated schema (else every task takes toBinary)", () => {
    expect(DIRECT_ENCODING).toBe(true);
  });

  it("writes each task as toBinary does, one after another", () => {
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 5 }), (inits) => {
        const tasks = inits.map((init) =>
          create(TaskSpecSchema, init as MessageInitShape<typeof TaskSpecSchema>),
        );
        const { bytes, lengths } = encode(tasks);
        const expected = tasks.map((task) => toBinary(TaskSpecSchema, task));
        expect(lengths).toEqual(expected.map((b) => b.length));
        expect(Buffer.compare(bytes, Buffer.concat(expected))).toBe(0);
      }),
      { numRuns: 2_000 },
    );
  });

  it("keeps unknown fields and long nested messages", () => {
    const withUnknown = fromBinary(
      TaskSpecSchema,
      Buffer.concat([
        toBinary(TaskSpecSchema, create(TaskSpecSchema, { name: "a" })),
        Buffer.from([0xf8, 0x07, 0x01]),
      ]),
    );
    const long = create(TaskSpecSchema, {
      name: "b",
      target: { case: "handler", value: { handler: "h", input: new Uint8Array(70_000).fill(7) } },
    });
    const tasks = [withUnknown, long, create(TaskSpecSchema, { name: "c" })];
    const { bytes } = encode(tasks);
    expect(Buffer.compare(bytes, Buffer.concat(tasks.map((t) => toBinary(TaskSpecSchema, t))))).toBe(0);
  });
});
