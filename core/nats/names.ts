/*
 * Every NATS subject, stream and consumer name Taskframe uses, derived from one
 * namespace so that several installations (or test files) can share a server.
 * Subjects use the namespace as given; stream and consumer names upper-case it.
 */

import type { Lane } from "../work-queue.js";

export const DEFAULT_NAMESPACE = "taskframe";

// Stream names upper-case the namespace: "Prod" and "prod" share streams (but not subjects), so do not mix them.
const NAMESPACE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const POOL_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
// One subject token: no separators, wildcards or whitespace.
const TOKEN_PATTERN = /^[^.*>\s]+$/;

export const MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";

export function validatePool(pool: string): string {
  if (!POOL_PATTERN.test(pool)) {
    throw new Error(`invalid pool name ${JSON.stringify(pool)}: expected 1 to 64 of A-Z a-z 0-9 _ -`);
  }
  return pool;
}

function validateTaskId(taskId: string): string {
  if (!TOKEN_PATTERN.test(taskId)) {
    throw new Error(
      `invalid task id ${JSON.stringify(taskId)} for a NATS subject: it must not be empty or contain . * > or whitespace`,
    );
  }
  return taskId;
}

/**
 * A handler name as one subject token and stream-name part, injectively:
 * anything but letters, digits and '-' is written `_XX` (hex), e.g.
 * `pkg.resize` -> `pkg_2Eresize`.
 */
export function handlerToken(handler: string): string {
  if (!handler) throw new Error("a handler name must not be empty");
  return handler.replace(/[^A-Za-z0-9-]/g, (c) =>
    [...Buffer.from(c, "utf8")].map((b) => `_${b.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
}

/** A host name as one subject token: dots (FQDNs) and other reserved characters become `_`. */
const hostToken = (host: string): string => host.replace(/[.*>\s]/g, "_") || "_";

export class NatsNames {
  readonly namespace: string;
  readonly #prefix: string;

  constructor(namespace: string = DEFAULT_NAMESPACE) {
    if (!NAMESPACE_PATTERN.test(namespace)) {
      throw new Error(
        `invalid NATS namespace ${JSON.stringify(namespace)}: expected 1 to 64 of A-Z a-z 0-9 _ -`,
      );
    }
    this.namespace = namespace;
    this.#prefix = namespace.toUpperCase();
  }

  /**
   * The stream of a lane: `<NS>_WORK_<POOL>` for a pool's executables,
   * `<NS>_HANDLER_<POOL>_<HANDLER>` for one handler of a pool (a stream each,
   * so that every lane's consumer has the same name). Pools whose names
   * differ only in case map to one stream (detected on creation).
   */
  workStream(lane: Lane): string {
    const pool = validatePool(lane.pool).toUpperCase();
    return lane.handler
      ? `${this.#prefix}_HANDLER_${pool}_${handlerToken(lane.handler).toUpperCase()}`
      : `${this.#prefix}_WORK_${pool}`;
  }

  isWorkStream(stream: string): boolean {
    return stream.startsWith(`${this.#prefix}_WORK_`) || stream.startsWith(`${this.#prefix}_HANDLER_`);
  }

  /** `<ns>.work.<pool>.*` or `<ns>.handler.<pool>.<handler>.*`: a lane stream's subjects. */
  workSubjects(lane: Lane): string {
    return `${this.#laneSubjectPrefix(lane)}.*`;
  }

  /** One subject per task, so that "is it queued?" is a by-subject lookup. */
  workSubject(lane: Lane, taskId: string): string {
    return `${this.#laneSubjectPrefix(lane)}.${validateTaskId(taskId)}`;
  }

  #laneSubjectPrefix(lane: Lane): string {
    const pool = validatePool(lane.pool);
    return lane.handler
      ? `${this.namespace}.handler.${pool}.${handlerToken(lane.handler)}`
      : `${this.namespace}.work.${pool}`;
  }

  /** The durable pull consumer of every work stream (one per pool, as each pool has its stream). */
  get workConsumer(): string {
    return `${this.#prefix}_WORKERS`;
  }

  /** Keeps the MaxDeliver advisories of this namespace's work consumers until the hub has read them. */
  get deadLetterStream(): string {
    return `${this.#prefix}_DEAD_LETTERS`;
  }

  /** The advisories of every work stream: the stream token is a wildcard, the consumer name is ours. */
  get deadLetterAdvisories(): string {
    return `${MAX_DELIVERIES_ADVISORY}.*.${this.workConsumer}`;
  }

  get deadLetterConsumer(): string {
    return `${this.#prefix}_DEAD_LETTERS`;
  }

  get eventStream(): string {
    return `${this.#prefix}_EVENTS`;
  }

  /** `<ns>.events.>` */
  get eventSubjects(): string {
    return `${this.namespace}.events.>`;
  }

  /** `<ns>.events.<host>`: what one sidecar publishes to. */
  eventSubject(host: string): string {
    return `${this.namespace}.events.${hostToken(host)}`;
  }

  /** The hub's durable consumer of the event stream, shared by every hub. */
  get recorderConsumer(): string {
    return `${this.#prefix}_RECORDER`;
  }

  /** `<ns>.control.cancel`: core NATS, hub -> every sidecar. */
  get cancelSubject(): string {
    return `${this.namespace}.control.cancel`;
  }

  get heartbeatSubject(): string {
    return `${this.namespace}.hosts.heartbeat`;
  }

  get drainSubject(): string {
    return `${this.namespace}.hosts.drain`;
  }
}
