import { spawnSync } from "node:child_process";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  BinaryReader,
  BinaryWriter,
  sizeDelimitedEncode,
  sizeDelimitedPeek,
  WireType,
} from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SpawnerRequest, SpawnerRequestSchema } from "../../core/gen/taskframe/v1/spawner_pb.js";
import { buildNativeSpawner, nativeSpawnerSupported } from "../../test/helpers/native-spawner.js";

/*
 * The native helper's protobuf reader (native/wire.h, taskframe-spawner.c)
 * against protobuf-es: its --echo mode decodes SpawnerRequest frames and
 * writes each back re-encoded, so what it understood can be compared.
 */

let native: ReturnType<typeof buildNativeSpawner> | undefined;
beforeAll(() => {
  if (nativeSpawnerSupported) native = buildNativeSpawner();
});
afterAll(() => native?.remove());

/** Runs the echo mode on `input`: the exit status and the messages it wrote back. */
function echo(input: Uint8Array): { status: number | null; messages: SpawnerRequest[] } {
  const result = spawnSync(native!.path, ["--echo"], { input, maxBuffer: 1 << 30 });
  const messages: SpawnerRequest[] = [];
  let rest = new Uint8Array(result.stdout);
  while (rest.length > 0) {
    const { size, offset } = sizeDelimitedPeek(rest);
    if (size === null || offset === null) throw new Error("the helper wrote a truncated frame");
    messages.push(fromBinary(SpawnerRequestSchema, rest.subarray(offset, offset + size)));
    rest = rest.subarray(offset + size);
  }
  return { status: result.status, messages };
}

const frame = (message: Uint8Array) => new BinaryWriter().bytes(message).finish();
const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const bytes = (write: (w: BinaryWriter) => BinaryWriter) => write(new BinaryWriter()).finish();
const field = (no: number, body: Uint8Array) => (w: BinaryWriter) =>
  w.tag(no, WireType.LengthDelimited).bytes(body);

const text = fc.string({ unit: "grapheme", maxLength: 12 });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const spawnRequest = fc
  .record({
    id: u32,
    command: text,
    args: fc.array(text, { maxLength: 5 }),
    env: fc.dictionary(
      text.filter((key) => key !== "__proto__"),
      text,
      { maxKeys: 6 },
    ),
    cwd: text,
    timeoutMs: u64,
    killGraceMs: u64,
    outputLimitBytes: u64,
    cgroupProcsFiles: fc.array(text, { maxLength: 3 }),
    seccompFilterPath: text,
    noCoreDumps: fc.boolean(),
    // optional: absent, or present with any value, 0 included
    uid: fc.option(u32, { nil: undefined }),
    gid: fc.option(u32, { nil: undefined }),
    groups: fc.array(u32, { maxLength: 5 }),
  })
  .map(({ uid, gid, ...value }) =>
    create(SpawnerRequestSchema, {
      request: {
        case: "spawn",
        value: { ...value, ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }) },
      },
    }),
  );
const stopRequest = u32.map((id) =>
  create(SpawnerRequestSchema, { request: { case: "stop", value: { id } } }),
);
const anyRequest = fc.oneof(
  { weight: 4, arbitrary: spawnRequest },
  { weight: 1, arbitrary: stopRequest },
  { weight: 1, arbitrary: fc.constant(create(SpawnerRequestSchema, {})) },
);

/*
 * protobuf-es reads some malformed input without complaint: a varint at the
 * end of a nested message is read on past that end, a known field with
 * another wire type is read as its own type, and a map entry's unknown fields
 * are read as tags. The helper refuses the first and skips the others, as the
 * protobuf spec has it. Comparisons with protobuf-es stick to what it reads
 * strictly: every message within its bounds, known fields with their own
 * wire type, map entries holding nothing but key and value.
 */
type Shape = { [field: number]: WireType | Shape | typeof UINT32S; closed?: boolean };
/** A repeated uint32: varints one by one, or packed. */
const UINT32S = "uint32s";
const ENTRY: Shape = { 1: WireType.LengthDelimited, 2: WireType.LengthDelimited, closed: true };
const SPAWN: Shape = {
  1: WireType.Varint,
  2: WireType.LengthDelimited,
  3: WireType.LengthDelimited,
  4: ENTRY,
  5: WireType.LengthDelimited,
  6: WireType.Varint,
  7: WireType.Varint,
  8: WireType.Varint,
  9: WireType.LengthDelimited,
  10: WireType.LengthDelimited,
  11: WireType.Varint,
  12: WireType.Varint,
  13: WireType.Varint,
  14: UINT32S,
};
const REQUEST: Shape = { 1: SPAWN, 2: { 1: WireType.Varint } };

/*
 * Where the varint at `pos` ends, if it ends before `end` as the helper reads
 * it: at most ten bytes, the tenth holding bit 63 alone (protobuf-es reads on
 * past `end`, and takes any tenth byte).
 */
function varintEnd(data: Uint8Array, pos: number, end: number): number | undefined {
  for (let i = 0; i < 10 && pos + i < end; i++) {
    const byte = data[pos + i]!;
    if (i === 9 && byte > 1) return undefined;
    if (!(byte & 0x80)) return pos + i + 1;
  }
  return undefined;
}

function readStrictly(data: Uint8Array, shape: Shape): boolean {
  const reader = new BinaryReader(data);
  try {
    while (reader.pos < reader.len) {
      const [no, type] = reader.tag();
      const expected = shape[no];
      if (type === WireType.Varint && varintEnd(data, reader.pos, reader.len) === undefined) return false;
      if (expected === undefined) {
        if (shape.closed) return false;
        reader.skip(type, no);
      } else if (expected === UINT32S) {
        if (type === WireType.LengthDelimited) {
          const packed = reader.bytes();
          for (let at: number | undefined = 0; at < packed.length; ) {
            at = varintEnd(packed, at, packed.length);
            if (at === undefined) return false;
          }
        } else if (type === WireType.Varint) {
          reader.skip(type, no);
        } else {
          return false;
        }
      } else if (typeof expected === "object") {
        if (type !== WireType.LengthDelimited || !readStrictly(reader.bytes(), expected)) return false;
      } else {
        if (type !== expected) return false;
        reader.skip(type, no);
      }
    }
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!nativeSpawnerSupported)("the native spawner's protobuf reader", () => {
  it("reads back every request protobuf-es writes", () => {
    fc.assert(
      fc.property(fc.array(anyRequest, { minLength: 1, maxLength: 20 }), (requests) => {
        const { status, messages } = echo(
          concat(requests.map((r) => sizeDelimitedEncode(SpawnerRequestSchema, r))),
        );
        expect(status).toBe(0);
        expect(messages).toHaveLength(requests.length);
        for (const [i, request] of requests.entries()) {
          expect(equals(SpawnerRequestSchema, messages[i]!, request)).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("reads large frames and a frame split across reads", () => {
    const big = create(SpawnerRequestSchema, {
      request: {
        case: "spawn",
        value: {
          id: 7,
          command: "x".repeat(300_000),
          args: Array.from({ length: 5000 }, (_, i) => `arg${i}`),
        },
      },
    });
    const { status, messages } = echo(sizeDelimitedEncode(SpawnerRequestSchema, big));
    expect(status).toBe(0);
    expect(equals(SpawnerRequestSchema, messages[0]!, big)).toBe(true);
  });

  // Encodings protobuf-es never writes but must be read the same way: compared with fromBinary.
  const spawnBody = (write: (w: BinaryWriter) => BinaryWriter) => bytes(field(1, bytes(write)));
  const entry = (write: (w: BinaryWriter) => BinaryWriter) => (w: BinaryWriter) => field(4, bytes(write))(w);
  const unknownOfEveryType = (w: BinaryWriter) =>
    w
      .tag(90, WireType.Varint)
      .uint64(2n ** 63n)
      .tag(91, WireType.Bit64)
      .fixed64(1n)
      .tag(92, WireType.LengthDelimited)
      .string("unknown")
      .tag(93, WireType.Bit32)
      .fixed32(5)
      .tag(94, WireType.StartGroup)
      .tag(1, WireType.Varint)
      .uint32(1)
      .tag(95, WireType.StartGroup)
      .tag(2, WireType.LengthDelimited)
      .string("nested")
      .tag(95, WireType.EndGroup)
      .tag(94, WireType.EndGroup);
  const unusual: [string, Uint8Array][] = [
    [
      "unknown fields of every wire type, groups included, at every level",
      bytes((w) =>
        field(
          1,
          bytes((s) =>
            entry((e) =>
              e.tag(1, WireType.LengthDelimited).string("K").tag(2, WireType.LengthDelimited).string("v"),
            )(unknownOfEveryType(s.tag(1, WireType.Varint).uint32(9)))
              .tag(2, WireType.LengthDelimited)
              .string("cmd"),
          ),
        )(unknownOfEveryType(w)),
      ),
    ],
    [
      "fields in reverse order",
      spawnBody((s) =>
        s
          .tag(8, WireType.Varint)
          .uint64(3n)
          .tag(5, WireType.LengthDelimited)
          .string("/tmp")
          .tag(3, WireType.LengthDelimited)
          .string("b")
          .tag(3, WireType.LengthDelimited)
          .string("a")
          .tag(2, WireType.LengthDelimited)
          .string("c")
          .tag(1, WireType.Varint)
          .uint32(4),
      ),
    ],
    [
      "a spawn in two parts, merged",
      bytes((w) =>
        field(
          1,
          bytes((s) =>
            s
              .tag(2, WireType.LengthDelimited)
              .string("second")
              .tag(3, WireType.LengthDelimited)
              .string("b")
              .tag(6, WireType.Varint)
              .uint64(0n),
          ),
        )(
          field(
            1,
            bytes((s) =>
              s
                .tag(1, WireType.Varint)
                .uint32(5)
                .tag(2, WireType.LengthDelimited)
                .string("first")
                .tag(3, WireType.LengthDelimited)
                .string("a")
                .tag(6, WireType.Varint)
                .uint64(10n),
            ),
          )(w),
        ),
      ),
    ],
    [
      "spawn, then stop: the stop",
      bytes((w) =>
        field(
          2,
          bytes((s) => s.tag(1, WireType.Varint).uint32(3)),
        )(
          field(
            1,
            bytes((s) => s.tag(1, WireType.Varint).uint32(1)),
          )(w),
        ),
      ),
    ],
    [
      "spawn, stop, spawn: only the last spawn",
      bytes((w) =>
        field(
          1,
          bytes((s) => s.tag(2, WireType.LengthDelimited).string("last")),
        )(
          field(
            2,
            bytes((s) => s.tag(1, WireType.Varint).uint32(3)),
          )(
            field(
              1,
              bytes((s) =>
                s.tag(1, WireType.Varint).uint32(1).tag(3, WireType.LengthDelimited).string("gone"),
              ),
            )(w),
          ),
        ),
      ),
    ],
    [
      "a repeated env key: the last value; entries with a part missing or out of order",
      spawnBody((s) =>
        entry((e) => e.tag(2, WireType.LengthDelimited).string("only a value"))(
          entry((e) => e.tag(1, WireType.LengthDelimited).string("ONLY_A_KEY"))(
            entry((e) =>
              e.tag(2, WireType.LengthDelimited).string("2").tag(1, WireType.LengthDelimited).string("K"),
            )(
              entry((e) =>
                e.tag(1, WireType.LengthDelimited).string("K").tag(2, WireType.LengthDelimited).string("1"),
              )(s),
            ),
          ),
        ),
      ),
    ],
    [
      "varints longer than they need be, and a uint32 past 32 bits",
      bytes((w) =>
        field(
          2,
          new Uint8Array([0x08, 0x85, 0x80, 0x80, 0x80, 0x90, 0x80, 0x80, 0x80, 0x80, 0x00]), // id: 2^32 * 16 + 5
        )(w),
      ),
    ],
    [
      "confinement: repeated fields appended across parts, groups packed and not, uid and gid of 0",
      bytes((w) =>
        field(
          1,
          bytes(
            (s) =>
              s
                .tag(9, WireType.LengthDelimited)
                .string("/sys/fs/cgroup/memory/t/cgroup.procs")
                .tag(14, WireType.Varint)
                .uint32(7)
                .tag(13, WireType.Varint)
                .uint32(0)
                .tag(11, WireType.Varint)
                .uint64(2n ** 40n), // a bool is any non-zero varint
          ),
        )(
          field(
            1,
            bytes((s) =>
              s
                .tag(9, WireType.LengthDelimited)
                .string("/sys/fs/cgroup/pids/t/cgroup.procs")
                .tag(10, WireType.LengthDelimited)
                .string("/etc/filter.bpf")
                .tag(12, WireType.Varint)
                .uint32(0)
                .tag(14, WireType.LengthDelimited)
                .bytes(bytes((p) => p.uint32(65534).uint32(0).uint32(0xffff_ffff)))
                .tag(14, WireType.LengthDelimited)
                .bytes(new Uint8Array()),
            ),
          )(w),
        ),
      ),
    ],
    [
      "a uid and gid past 32 bits, replaced by later values; no_core_dumps set then cleared",
      spawnBody((s) =>
        s
          .tag(12, WireType.Varint)
          .uint64(2n ** 33n + 5n)
          .tag(13, WireType.Varint)
          .uint32(1)
          .tag(11, WireType.Varint)
          .bool(true)
          .tag(13, WireType.Varint)
          .uint64(2n ** 63n + 9n)
          .tag(11, WireType.Varint)
          .bool(false),
      ),
    ],
    ["an empty frame", new Uint8Array()],
    ["a field number at the top of the range", bytes((w) => w.tag(2 ** 29 - 1, WireType.Varint).uint32(1))],
  ];

  it.each(unusual)("reads %s as protobuf-es does", (_name, message) => {
    const expected = fromBinary(SpawnerRequestSchema, message);
    const { status, messages } = echo(frame(message));
    expect(status).toBe(0);
    expect(messages).toHaveLength(1);
    expect(equals(SpawnerRequestSchema, messages[0]!, expected)).toBe(true);
  });

  it("skips unknown fields inside a map entry, and known fields with another wire type", () => {
    const message = spawnBody((s) =>
      entry((e) =>
        unknownOfEveryType(e.tag(1, WireType.LengthDelimited).string("K"))
          .tag(2, WireType.LengthDelimited)
          .string("v"),
      )(s)
        .tag(1, WireType.LengthDelimited)
        .string("an id that is not a varint")
        .tag(2, WireType.Varint)
        .uint32(7)
        .tag(5, WireType.Bit32)
        .fixed32(1)
        .tag(6, WireType.Bit64)
        .fixed64(9n),
    );
    const { status, messages } = echo(frame(message));
    expect(status).toBe(0);
    const expected = create(SpawnerRequestSchema, { request: { case: "spawn", value: { env: { K: "v" } } } });
    expect(equals(SpawnerRequestSchema, messages[0]!, expected)).toBe(true);
  });

  const malformed: [string, Uint8Array][] = [
    ["a truncated varint", new Uint8Array([0x0a, 0x02, 0x08, 0x80])],
    ["a length past the end", new Uint8Array([0x12, 0x05, 0x08])],
    ["a varint of eleven bytes", frame(new Uint8Array([0x08, ...Array(10).fill(0xff), 0x01]))],
    ["a tenth varint byte above 1", frame(new Uint8Array([0x08, ...Array(9).fill(0xff), 0x02]))],
    ["field number 0", frame(new Uint8Array([0x00, 0x01]))],
    ["wire type 6", frame(new Uint8Array([0x0e, 0x01]))],
    ["wire type 7", frame(new Uint8Array([0x0f, 0x01]))],
    ["an end-group without its start", frame(new Uint8Array([0x0c]))],
    ["an unterminated group", frame(new Uint8Array([0x0b, 0x08, 0x01]))],
    ["a group closed by another field's end", frame(new Uint8Array([0x0b, 0x14]))],
    ["a frame whose size is cut short", new Uint8Array([0x80])],
    ["a frame size past 64 MiB", new Uint8Array([0x80, 0x80, 0x80, 0x40])],
    ["a nested message past its end", frame(bytes(field(1, new Uint8Array([0x2a, 0x09, 0x41]))))],
    [
      "packed groups cut short",
      frame(spawnBody((s) => s.tag(14, WireType.LengthDelimited).bytes(new Uint8Array([0x05, 0x80])))),
    ],
    [
      "a packed group id of eleven bytes",
      frame(
        spawnBody((s) =>
          s.tag(14, WireType.LengthDelimited).bytes(new Uint8Array([...Array(10).fill(0xff), 0x01])),
        ),
      ),
    ],
    [
      "a map entry past its end",
      frame(spawnBody((s) => s.tag(4, WireType.LengthDelimited).bytes(new Uint8Array([0x0a, 0x05])))),
    ],
  ];

  it.each(malformed)("refuses %s", (_name, input) => {
    expect(echo(input).status).toBe(3);
  });

  it("agrees with protobuf-es on damaged encodings", () => {
    // random bytes flipped, inserted and removed in valid requests: whatever protobuf-es reads, the helper reads the same
    const damaged = fc
      .tuple(
        anyRequest,
        fc.array(
          fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("set", "insert", "remove")),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
      )
      .map(([request, edits]) => {
        const data = [...toBinary(SpawnerRequestSchema, request)];
        for (const [at, value, kind] of edits) {
          const i = data.length === 0 ? 0 : at % data.length;
          if (kind === "set" && data.length > 0) data[i] = value;
          else if (kind === "insert") data.splice(i, 0, value);
          else data.splice(i, 1);
        }
        return new Uint8Array(data);
      });
    const samples = fc.sample(damaged, { numRuns: 3000, seed: 42 });
    const accepted = samples.flatMap((message) => {
      if (!readStrictly(message, REQUEST)) return [];
      try {
        return [{ message, expected: fromBinary(SpawnerRequestSchema, message) }];
      } catch {
        return [];
      }
    });
    expect(accepted.length).toBeGreaterThan(200);
    const { status, messages } = echo(concat(accepted.map(({ message }) => frame(message))));
    expect(status).toBe(0);
    expect(messages).toHaveLength(accepted.length);
    for (const [i, { message, expected }] of accepted.entries()) {
      // the hex names the input when they differ
      if (!equals(SpawnerRequestSchema, messages[i]!, expected))
        expect({ input: Buffer.from(message).toString("hex"), read: messages[i] }).toEqual({
          read: expected,
        });
    }
  });
});
