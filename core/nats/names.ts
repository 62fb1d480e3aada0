/*
 * Every NATS subject, stream and consumer name Taskframe uses, derived from one
 * namespace so that several installations (or test files) can share a server.
 * Subjects use the namespace as given; stream and consumer names upper-case it.
 */

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

  /** `<NS>_WORK_<POOL>`. Pools whose names differ only in case map to one stream (detected on creation). */
  workStream(pool: string): string {
    return `${this.#prefix}_WORK_${validatePool(pool).toUpperCase()}`;
  }

  isWorkStream(stream: string): boolean {
    return stream.startsWith(`${this.#prefix}_WORK_`);
  }

  /** `<ns>.work.<pool>.*`: the work stream's subjects. */
  workSubjects(pool: string): string {
    return `${this.namespace}.work.${validatePool(pool)}.*`;
  }

  /** `<ns>.work.<pool>.<taskId>`: one subject per task, so that "is it queued?" is a by-subject lookup. */
  workSubject(pool: string, taskId: string): string {
    return `${this.namespace}.work.${validatePool(pool)}.${validateTaskId(taskId)}`;
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
}
