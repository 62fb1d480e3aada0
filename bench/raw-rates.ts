import { randomBytes, randomUUID } from "node:crypto";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, createInbox, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import postgres from "postgres";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import type { BenchContext, Scenario, ThroughputRow } from "./scenario.js";
import { throughputTable } from "./scenario.js";

/** One measured building block: `items` messages or rows in `seconds`. */
export interface RawRate {
  items: number;
  seconds: number;
  perSecond: number;
}

export interface RawRates {
  /** JetStream (file storage), 100-byte messages, one inbox subscription counting PubAcks, window of un-acked. */
  publishInbox: RawRate;
  /** The same with a Nats-Msg-Id header on every message (JetStream dedupes; the hub's work items have one). */
  publishInboxMsgId: RawRate;
  /** @nats-io/jetstream's js.publish() promises, same window. */
  publishJs: RawRate;
  /** Pull consumer, fetches of 1,000, every message acked (explicit ack policy, acks not confirmed). */
  consumeAckEach: RawRate;
  /** Pull consumer, fetches of 1,000, the last message of each fetch acked (ack policy all). */
  consumeAckAll: RawRate;
  /** Postgres: multi-row INSERT ... VALUES of 1,000 rows per statement, one transaction per statement. */
  insertValues: RawRate;
  /** Postgres: INSERT ... SELECT FROM unnest(arrays) of 1,000 rows (how the hub inserts tasks). */
  insertUnnest: RawRate;
  /** Postgres: UPDATE ... FROM unnest(arrays) of 1,000 rows per statement, one transaction per statement. */
  updateUnnest: RawRate;
  window: number;
  batch: number;
}

export interface RawRateOptions {
  /** Messages per JetStream measurement. @default 100_000 */
  messages?: number;
  /** Rows per Postgres measurement. @default 100_000 */
  rows?: number;
  /** Un-acked publishes in flight. @default 1_024 */
  window?: number;
  /** Messages per fetch, rows per statement. @default 1_000 */
  batch?: number;
}

const rate = (items: number, startedMs: number): RawRate => {
  const seconds = (performance.now() - startedMs) / 1000;
  return { items, seconds, perSecond: items / seconds };
};

/**
 * What JetStream and Postgres do on this machine with nothing of ours in
 * between: the ceiling any hub or sidecar on the same box works under. Uses a
 * scratch database and a stream of its own, both deleted at the end.
 */
export async function measureRawRates(
  context: Pick<BenchContext, "db" | "nats" | "progress">,
  options: RawRateOptions = {},
): Promise<RawRates> {
  const messages = options.messages ?? 100_000;
  const rows = options.rows ?? 100_000;
  const window = options.window ?? 1_024;
  const batch = options.batch ?? 1_000;
  const nats = await measureJetStream(context, messages, window, batch);
  const pg = await measurePostgres(context, rows, batch);
  return { ...nats, ...pg, window, batch };
}

async function measureJetStream(
  context: Pick<BenchContext, "nats" | "progress">,
  count: number,
  window: number,
  batch: number,
) {
  const id = randomBytes(4).toString("hex");
  const stream = `BENCHRAW_${id}`;
  const subject = (part: string) => `benchraw${id}.${part}`;
  const nc = await connect({ servers: context.nats });
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.add({ name: stream, subjects: [subject(">")], storage: "file" });
    const payload = randomBytes(100);
    context.progress(`  JetStream: publish ${count} x 100 B, ${window} un-acked PubAcks ...`);
    const publishInbox = await publishThroughInbox(nc, subject("inbox"), payload, count, window, false);
    const publishInboxMsgId = await publishThroughInbox(nc, subject("msgid"), payload, count, window, true);
    const publishJs = await publishThroughJs(nc, subject("js"), payload, count, window);
    context.progress(`  JetStream: pull-consume in fetches of ${batch} ...`);
    const consumeAckEach = await consume(nc, stream, subject("inbox"), count, batch, "each");
    const consumeAckAll = await consume(nc, stream, subject("msgid"), count, batch, "all");
    return { publishInbox, publishInboxMsgId, publishJs, consumeAckEach, consumeAckAll };
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  }
}

/** Raw publishes with a reply subject under one inbox subscription that counts (and parses) PubAcks. */
async function publishThroughInbox(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
  count: number,
  window: number,
  withMsgId: boolean,
): Promise<RawRate> {
  const prefix = `${createInbox()}.`;
  let sent = 0;
  let acked = 0;
  let failure: string | undefined;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const runId = randomBytes(4).toString("hex");
  const sendMore = () => {
    while (sent < count && sent - acked < window) {
      const n = sent++;
      const headers = withMsgId ? natsHeaders() : undefined;
      headers?.set("Nats-Msg-Id", `${runId}-${n}`);
      nc.publish(subject, payload, { reply: `${prefix}${n.toString(36)}`, ...(headers ? { headers } : {}) });
    }
  };
  const decoder = new TextDecoder();
  const subscription = nc.subscribe(`${prefix}*`, {
    callback: (error, msg) => {
      if (error) {
        failure ??= error.message;
      } else {
        const answer = JSON.parse(decoder.decode(msg.data)) as { error?: { description?: string } };
        if (answer.error) failure ??= answer.error.description ?? "error";
      }
      acked++;
      if (acked === count) done();
      else sendMore();
    },
  });
  await nc.flush();
  const started = performance.now();
  sendMore();
  await finished;
  const result = rate(count, started);
  subscription.unsubscribe();
  if (failure) throw new Error(`JetStream refused a publish: ${failure}`);
  return result;
}

/** @nats-io/jetstream's publish(): a request (and promise) per message, `window` in flight. */
async function publishThroughJs(
  nc: NatsConnection,
  subject: string,
  payload: Uint8Array,
  count: number,
  window: number,
): Promise<RawRate> {
  const js = jetstream(nc);
  let sent = 0;
  const started = performance.now();
  const lane = async () => {
    while (sent < count) {
      sent++;
      await js.publish(subject, payload);
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return rate(count, started);
}

async function consume(
  nc: NatsConnection,
  stream: string,
  subject: string,
  count: number,
  batch: number,
  ack: "each" | "all",
): Promise<RawRate> {
  const jsm = await jetstreamManager(nc);
  const name = `bench-${ack}`;
  await jsm.consumers.add(stream, {
    durable_name: name,
    filter_subject: subject,
    ack_policy: ack === "each" ? AckPolicy.Explicit : AckPolicy.All,
    max_ack_pending: ack === "each" ? Math.max(batch * 4, 10_000) : -1,
  });
  const consumer = await jetstream(nc).consumers.get(stream, name);
  let received = 0;
  const started = performance.now();
  while (received < count) {
    const fetched = await consumer.fetch({ max_messages: Math.min(batch, count - received), expires: 5_000 });
    let last: { ack(): void } | undefined;
    let got = 0;
    for await (const msg of fetched) {
      got++;
      if (ack === "each") msg.ack();
      else last = msg;
    }
    last?.ack();
    if (got === 0) throw new Error(`consumer ${name} got nothing after ${received} of ${count} messages`);
    received += got;
  }
  await nc.flush();
  const result = rate(received, started);
  await jsm.consumers.delete(stream, name).catch(() => {});
  return result;
}

async function measurePostgres(context: Pick<BenchContext, "db" | "progress">, count: number, batch: number) {
  await using database = await createScratchDatabase(context.db, "taskframe_bench_raw");
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    // about a task row: the hub's tasks table less what these statements do not touch
    const table = (name: string) => `
      create table ${name} (
        id uuid primary key, run_id uuid not null, name text not null, state smallint not null,
        attempt integer not null default 0, pending_deps integer not null, pool text not null, spec bytea not null,
        created_at timestamptz not null default now(), updated_at timestamptz not null default now(),
        started_at timestamptz, unique (run_id, name))`;
    await sql.unsafe(table("raw_values"));
    await sql.unsafe(table("raw_unnest"));
    const runId = randomUUID();
    const spec = randomBytes(100);
    const ids = Array.from({ length: count }, () => randomUUID());
    const slices = (from: readonly string[]) =>
      Array.from({ length: Math.ceil(from.length / batch) }, (_, i) =>
        from.slice(i * batch, (i + 1) * batch).map((id, j) => ({ id, n: i * batch + j })),
      );

    context.progress(`  Postgres: INSERT ${count} rows, ${batch} a statement ...`);
    let started = performance.now();
    for (const slice of slices(ids)) {
      const values = slice.map(({ id, n }) => ({
        id,
        run_id: runId,
        name: `t${n}`,
        state: 2,
        pending_deps: 0,
        pool: "default",
        spec,
      }));
      await sql.begin((tx) => tx`insert into raw_values ${tx(values)}`);
    }
    const insertValues = rate(count, started);

    started = performance.now();
    for (const slice of slices(ids)) {
      await sql.begin(
        (tx) => tx`
          insert into raw_unnest (id, run_id, name, state, pending_deps, pool, spec)
          select id, ${runId}::uuid, name, 2, 0, 'default', ${spec}
          from unnest(${tx.array(slice.map((r) => r.id))}::uuid[], ${tx.array(slice.map((r) => `t${r.n}`))}::text[]) as x(id, name)`,
      );
    }
    const insertUnnest = rate(count, started);

    context.progress(`  Postgres: UPDATE ... FROM unnest, ${batch} rows a statement ...`);
    started = performance.now();
    for (const slice of slices(ids)) {
      await sql.begin(
        (tx) => tx`
          update raw_values t set state = u.state, attempt = u.attempt, started_at = now(), updated_at = now()
          from unnest(${tx.array(slice.map((r) => r.id))}::uuid[], ${tx.array(slice.map(() => 3))}::int2[],
            ${tx.array(slice.map(() => 1))}::int4[])
            as u(id, state, attempt)
          where t.id = u.id`,
      );
    }
    const updateUnnest = rate(count, started);
    return { insertValues, insertUnnest, updateUnnest };
  } finally {
    await sql.end();
  }
}

/** The throughput rows of `rates`, for any scenario's table. */
export function rawRateRows(rates: RawRates): ThroughputRow[] {
  const row = (runner: string, r: RawRate, note: string): ThroughputRow => ({
    runner,
    tasks: r.items,
    seconds: r.seconds,
    note,
  });
  return [
    row(
      "JetStream publish, inbox + PubAck count",
      rates.publishInbox,
      `file stream, 100 B, ${rates.window} un-acked`,
    ),
    row("JetStream publish, inbox + Nats-Msg-Id", rates.publishInboxMsgId, "as above, deduplicated"),
    row("JetStream publish, js.publish()", rates.publishJs, `@nats-io/jetstream, ${rates.window} in flight`),
    row("JetStream pull, ack each", rates.consumeAckEach, `fetch ${rates.batch}, explicit acks`),
    row("JetStream pull, ack last", rates.consumeAckAll, `fetch ${rates.batch}, ack policy all`),
    row("Postgres INSERT ... VALUES", rates.insertValues, `${rates.batch} rows/statement, 1 tx each`),
    row("Postgres INSERT ... FROM unnest", rates.insertUnnest, `${rates.batch} rows/statement, 1 tx each`),
    row("Postgres UPDATE ... FROM unnest", rates.updateUnnest, `${rates.batch} rows/statement, 1 tx each`),
  ];
}

export const rawRatesScenario: Scenario = {
  name: "raw",
  summary:
    "what JetStream (publish with a window of PubAcks, pull-consume) and Postgres (1,000-row INSERT\nand UPDATE FROM unnest) do on this machine, with nothing of ours in between (default 100000)",
  async run(context) {
    const count = context.tasks ?? 100_000;
    const rates = await measureRawRates(context, { messages: count, rows: count });
    return {
      data: rates,
      tables: [
        throughputTable(`raw: building blocks on this machine, ${count} items each`, rawRateRows(rates)),
      ],
    };
  },
};
