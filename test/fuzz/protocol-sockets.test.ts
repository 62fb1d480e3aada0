import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "../../bench/seeded-random.js";
import { HubService } from "../../core/gen/taskframe/v1/hub_pb.js";
import {
  CompleteRequestSchema,
  HeartbeatRequestSchema,
  RegisterRequestSchema,
  RunnerService,
} from "../../core/gen/taskframe/v1/runner_pb.js";
import { TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { RunState } from "../../core/states.js";
import { type HubServer, startHubServer } from "../../hub/server.js";
import { Worker } from "../../sdks/ts/index.js";
import { runSpec, runToEnd, startEngine, type TestEngine } from "../helpers/engine.js";

/*
 * RELIABILITY.md test 39: random bytes, malformed HTTP/1.1 and HTTP/2, and Connect frames with
 * unknown fields, wrong types, huge length prefixes and truncation, written many thousands of
 * times to the sidecar's Runner socket and to the hub's HTTP port. Afterwards both are up,
 * nothing was recorded, and a real handler task still runs correctly.
 */

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

class Frames {
  readonly #random: () => number;
  constructor(
    seed: number,
    readonly paths: readonly string[],
  ) {
    this.#random = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.#random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(max: number): Buffer {
    const n = this.int(max + 1);
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  path(): string {
    return this.int(10) === 0
      ? `/${this.bytes(12)
          .toString("latin1")
          .replace(/[^\x21-\x7e]/g, "x")}`
      : this.pick(this.paths);
  }
  contentType(): string | undefined {
    return this.pick([
      "application/json",
      "application/proto",
      "application/connect+proto",
      "application/connect+json",
      "application/grpc",
      "application/grpc-web+proto",
      "text/plain",
      "application/json; charset=latin1",
      undefined,
    ]);
  }
  /** A protobuf message of the service (encoded right), with unknown fields added, bytes flipped or cut. */
  protobuf(): Buffer {
    const pick = this.int(3);
    const valid =
      pick === 0
        ? toBinary(
            RegisterRequestSchema,
            create(RegisterRequestSchema, { language: "fuzz", handlers: [], name: "x" }),
          )
        : pick === 1
          ? toBinary(
              CompleteRequestSchema,
              create(CompleteRequestSchema, {
                workerId: this.bytes(8).toString("hex"),
                completions: [
                  {
                    taskId: "01a21b2d-0000-7000-8000-000000000000",
                    attempt: this.int(5),
                    result: { case: "output", value: this.bytes(64) },
                  },
                ],
              }),
            )
          : toBinary(HeartbeatRequestSchema, create(HeartbeatRequestSchema, { workerId: "nobody" }));
    let out = Buffer.from(valid);
    switch (this.int(4)) {
      case 0: // an unknown field: a random tag (any wire type) and random bytes after it
        out = Buffer.concat([out, Buffer.from([this.int(256) | 0x80, this.int(128)]), this.bytes(16)]);
        break;
      case 1: // a few bytes flipped
        for (let i = 0; i < 3 && out.length > 0; i++) out[this.int(out.length)] = this.int(256);
        break;
      case 2: // truncated
        out = out.subarray(0, this.int(out.length + 1));
        break;
      default: // a length-delimited field claiming far more than there is
        out = Buffer.concat([out, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]), this.bytes(8)]);
    }
    return out;
  }
  json(): Buffer {
    const texts = [
      () => "{}",
      () => `{"workerId": ${this.int(1000)}, "completions": "x"}`,
      () => `{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}`,
      () => `{"handlers": [${"[".repeat(5000)}${"]".repeat(5000)}]}`,
      () => `{"maxConcurrency": -1, "language": null}`,
      () => `{"run": {"tasks": [{"name": 1}]}}`,
      () => `{"unknownField": "x", "name": "${"\\u0000".repeat(10)}"}`,
      () => `{"leaseEpoch": "18446744073709551616", "attempt": 1e400}`,
      () => this.bytes(64).toString("utf8"),
      () => "{".repeat(this.int(20)),
    ];
    return Buffer.from(this.pick(texts)());
  }
  /** A Connect/gRPC envelope: flags, a big-endian length that may lie, and a payload. */
  envelope(): Buffer {
    const payload = this.int(2) ? this.protobuf() : this.json();
    const header = Buffer.alloc(5);
    header[0] = this.pick([0, 0, 1, 2, 0x80, this.int(256)]);
    const lengths = [
      payload.length,
      payload.length + 1 + this.int(100),
      0xffffffff,
      0x7fffffff,
      this.int(2 ** 32),
      0,
    ];
    header.writeUInt32BE(this.pick(lengths) >>> 0, 1);
    const frame = Buffer.concat([header, payload]);
    return this.int(4) === 0 ? frame.subarray(0, this.int(frame.length + 1)) : frame;
  }
  body(): Buffer {
    switch (this.int(4)) {
      case 0:
        return this.bytes(512);
      case 1:
        return this.protobuf();
      case 2:
        return this.json();
      default:
        return this.envelope();
    }
  }
  headers(): Record<string, string> {
    const headers: Record<string, string> = {};
    const type = this.contentType();
    if (type) headers["content-type"] = type;
    if (this.int(2)) headers["connect-protocol-version"] = "1";
    if (this.int(8) === 0) headers["content-encoding"] = this.pick(["gzip", "br", "x-unknown"]);
    if (this.int(8) === 0) headers["connect-timeout-ms"] = this.pick(["-1", "0", "99999999999999", "abc"]);
    if (this.int(8) === 0) headers["connect-content-encoding"] = "gzip";
    return headers;
  }
}

/** One HTTP/1.1 request (or raw bytes) on a new connection; resolves when the server closes it or after a while. */
function rawExchange(connect: () => net.Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect();
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 250);
    socket.on("error", done);
    socket.on("close", done);
    socket.on("data", () => {});
    socket.on("end", done);
    socket.write(payload, () => socket.end());
  });
}

function http1Request(frames: Frames): Buffer {
  const body = frames.body();
  const headers = frames.headers();
  const lines = [`POST ${frames.path()} HTTP/1.1`, "Host: fuzz", "Connection: close"];
  for (const [key, value] of Object.entries(headers)) lines.push(`${key}: ${value}`);
  switch (frames.int(4)) {
    case 0: // a content-length that lies
      lines.push(`Content-Length: ${body.length + frames.int(100) - 50}`);
      break;
    case 1:
      lines.push("Transfer-Encoding: chunked");
      return Buffer.concat([
        Buffer.from(`${lines.join("\r\n")}\r\n\r\n${body.length.toString(16)}\r\n`),
        body,
        Buffer.from("\r\n0\r\n\r\n"),
      ]);
    default:
      lines.push(`Content-Length: ${body.length}`);
  }
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`), body]);
}

/** Raw garbage, sometimes with a valid start (an HTTP/2 preface, a request line). */
function garbage(frames: Frames): Buffer {
  const start = frames.pick([
    "",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "POST / HTTP/1.1\r\n",
    "GET /healthz HTTP/1.1\r\n",
  ]);
  return Buffer.concat([Buffer.from(start), frames.bytes(300)]);
}

interface Counts {
  frames: number;
}

/** Many HTTP/2 streams on shared h2c sessions (a new session when the server ends one). */
async function http2Storm(
  connect: () => net.Socket,
  frames: Frames,
  count: number,
  counts: Counts,
  until: number,
): Promise<void> {
  let session: http2.ClientHttp2Session | undefined;
  const open = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect("http://fuzz", { createConnection: connect });
      session.on("error", () => {});
    }
    return session;
  };
  const one = () =>
    new Promise<void>((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = open().request({ ":method": "POST", ":path": frames.path(), ...frames.headers() });
      } catch {
        session?.destroy();
        session = undefined;
        resolve();
        return;
      }
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 250);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      stream.on("error", done);
      stream.on("close", done);
      stream.on("data", () => {});
      const body = frames.body();
      if (frames.int(6) === 0) stream.write(body, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      else stream.end(body);
      counts.frames++;
    });
  const inFlight = 32;
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < count && performance.now() < until) await one();
    }),
  );
  session?.close();
}

async function storm(connect: () => net.Socket, frames: Frames, budgetMs: number): Promise<Counts> {
  const counts = { frames: 0 };
  const until = performance.now() + budgetMs;
  const worker = async () => {
    while (performance.now() < until) {
      const kind = frames.int(3);
      if (kind === 0) await rawExchange(connect, garbage(frames));
      else await rawExchange(connect, http1Request(frames));
      counts.frames++;
    }
  };
  await Promise.all([
    ...Array.from({ length: 48 }, worker),
    (async () => {
      while (performance.now() < until) await http2Storm(connect, frames, 2_000, counts, until);
    })(),
  ]);
  return counts;
}

let harness: TestEngine;
beforeAll(async () => {
  harness = await startEngine("pglite");
});
afterAll(async () => {
  await harness?.[Symbol.asyncDispose]();
});

async function realHandlerTaskRuns(socket: string, label: string): Promise<void> {
  const worker = new Worker({
    handlers: { echo: (ctx) => ({ echoed: ctx.json<{ v: string }>().v }) },
    socket,
    name: "after-fuzz",
  });
  const done = worker.run();
  try {
    const task = create(TaskSpecSchema, {
      name: "echo",
      target: {
        case: "handler",
        value: {
          handler: "echo",
          input: Buffer.from(JSON.stringify({ v: label })),
          contentType: "application/json",
        },
      },
    });
    const { run, tasks } = await runToEnd(harness.client, runSpec(`after-${label}`, [task]));
    expect(run.state).toBe(RunState.SUCCEEDED);
    const { task: stored } = await harness.client.getTask({ task: { taskId: tasks.get("echo")!.id } });
    expect(JSON.parse(Buffer.from(stored!.output).toString())).toEqual({ echoed: label });
  } finally {
    await worker.stop();
    await done.catch(() => {});
  }
}

describe(`protocol fuzzing (FUZZ_SEED=${SEED})`, () => {
  it("the sidecar's Runner socket: thousands of hostile frames, then it still serves a real handler task", async () => {
    const socket = harness.engine.runnerSocket!;
    const runsBefore = (await harness.client.listRuns({})).runs.length;
    const paths = RunnerService.methods.map((m) => `/${RunnerService.typeName}/${m.name}`);
    const counts = await storm(() => net.connect(socket), new Frames(SEED, paths), 15_000);
    process.stderr.write(`runner socket: ${counts.frames} hostile frames (seed ${SEED})\n`);
    expect(counts.frames).toBeGreaterThan(10_000);
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect((await harness.client.listRuns({})).runs.length).toBe(runsBefore);
    await realHandlerTaskRuns(socket, "runner");
  }, 90_000);

  describe("the hub's HTTP port", () => {
    let server: HubServer;
    beforeAll(async () => {
      server = await startHubServer(harness.engine.hub, "127.0.0.1:0", async () => []);
    });
    afterAll(async () => {
      await server?.close(1_000);
    });

    it("random bodies to every RPC path leave it up and its state unchanged", async () => {
      const runsBefore = (await harness.client.listRuns({})).runs.length;
      const schedulesBefore = (await harness.client.listSchedules({})).schedules.length;
      const [host, port] = [
        server.address.slice(0, server.address.lastIndexOf(":")),
        Number(server.address.slice(server.address.lastIndexOf(":") + 1)),
      ];
      const paths = [
        ...HubService.methods.map((m) => `/${HubService.typeName}/${m.name}`),
        "/healthz",
        "/metrics",
        "/",
      ];
      const counts = await storm(() => net.connect(port, host), new Frames(SEED + 1, paths), 12_000);
      process.stderr.write(`hub port: ${counts.frames} hostile frames (seed ${SEED + 1})\n`);
      expect(counts.frames).toBeGreaterThan(3_000);
      expect(Object.keys(Object.prototype)).toEqual([]);
      expect((await harness.client.listRuns({})).runs.length).toBe(runsBefore);
      expect((await harness.client.listSchedules({})).schedules.length).toBe(schedulesBefore);
      const health = await fetch(`http://${server.address}/healthz`);
      expect(health.status).toBe(200);
      await realHandlerTaskRuns(harness.engine.runnerSocket!, "hub");
    }, 90_000);
  });
});
