import {
  type ConsumerConfig,
  JetStreamApiError,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { errorMessage } from "../errors.js";

/*
 * Idempotent creation of streams and durable consumers: create, and if one
 * with that name exists with another configuration, update it (the last
 * process to start with new settings wins; settings JetStream cannot change,
 * such as retention, fail with the server's explanation).
 */

const STREAM_NAME_IN_USE = 10058;
const CONSUMER_NAME_IN_USE = 10013;
const CONSUMER_ALREADY_EXISTS = 10148; // 2.10+: a "create" of a durable with another configuration

export type StreamSettings = Partial<StreamConfig> & { name: string; subjects: string[] };
export type ConsumerSettings = Partial<ConsumerConfig> & { durable_name: string };

export async function ensureStream(jsm: JetStreamManager, settings: StreamSettings): Promise<void> {
  try {
    await jsm.streams.add(settings);
    return;
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) {
      throw new Error(`cannot create JetStream stream ${settings.name}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }
  try {
    const existing = await jsm.streams.info(settings.name);
    const theirs = [...(existing.config.subjects ?? [])].sort().join(" ");
    const ours = [...settings.subjects].sort().join(" ");
    if (theirs !== ours) {
      // e.g. pools "gpu" and "GPU": stream names are upper-cased, subjects are not
      throw new Error(`it exists for subjects ${theirs}, not ${ours}: two names map to one stream`);
    }
    const { name, ...changes } = settings;
    await jsm.streams.update(name, changes);
  } catch (error) {
    throw new Error(`cannot update JetStream stream ${settings.name}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  settings: ConsumerSettings,
): Promise<void> {
  const what = `JetStream consumer ${stream}/${settings.durable_name}`;
  try {
    // a server before 2.10 updates an existing durable in place here
    await jsm.consumers.add(stream, settings);
    return;
  } catch (error) {
    const inUse =
      error instanceof JetStreamApiError &&
      (error.code === CONSUMER_ALREADY_EXISTS || error.code === CONSUMER_NAME_IN_USE);
    if (!inUse) throw new Error(`cannot create ${what}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    const { durable_name, ...changes } = settings;
    await jsm.consumers.update(stream, durable_name, changes);
  } catch (error) {
    throw new Error(`cannot update ${what}: ${errorMessage(error)}`, { cause: error });
  }
}
