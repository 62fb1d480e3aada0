import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { TaskframeError, TaskframeErrorCode } from "./errors.js";

/*
 * A task's token (TASKFRAME_TASK_TOKEN): which attempt a call made from
 * inside a task speaks for. `<task id>:<attempt>:<lease epoch>`, and, when
 * hub and sidecars share a secret, `:<HMAC-SHA256(secret, those three)>` in
 * hex, so that a task cannot forge another's. The hub also requires the
 * attempt to be the task's current one: a token dies with its attempt.
 */

export interface TaskAttemptRef {
  taskId: string;
  attempt: number;
  leaseEpoch: number;
}

export interface ParsedTaskToken extends TaskAttemptRef {
  /** Hex HMAC; undefined for an unsigned token. */
  signature?: string;
}

const TOKEN = /^([0-9a-f-]{36}):(\d{1,9}):(\d{1,15})(?::([0-9a-f]{64}))?$/;

/** The token of an attempt; signed when `secret` is given. */
export function taskToken(ref: TaskAttemptRef, secret?: Uint8Array): string {
  const body = `${ref.taskId}:${ref.attempt}:${ref.leaseEpoch}`;
  return secret ? `${body}:${sign(body, secret)}` : body;
}

export function parseTaskToken(token: string): ParsedTaskToken | undefined {
  const match = TOKEN.exec(token);
  if (!match) return undefined;
  return {
    taskId: match[1]!,
    attempt: Number(match[2]),
    leaseEpoch: Number(match[3]),
    ...(match[4] ? { signature: match[4] } : {}),
  };
}

/** Whether `token` looks like a task token (signed or not), as opposed to a JWT or a static token. */
export const isTaskTokenShaped = (token: string): boolean => TOKEN.test(token);

/** The attempt a signed token speaks for, or undefined if it is unsigned, malformed or forged. */
export function verifyTaskToken(token: string, secret: Uint8Array): TaskAttemptRef | undefined {
  const parsed = parseTaskToken(token);
  if (!parsed?.signature) return undefined;
  const expected = Buffer.from(
    sign(`${parsed.taskId}:${parsed.attempt}:${parsed.leaseEpoch}`, secret),
    "hex",
  );
  const given = Buffer.from(parsed.signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return { taskId: parsed.taskId, attempt: parsed.attempt, leaseEpoch: parsed.leaseEpoch };
}

function sign(body: string, secret: Uint8Array): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/**
 * The secret shared by hub and sidecars: the file's contents (trimmed), else
 * TASKFRAME_TASK_TOKEN_SECRET; undefined when neither is set. At least 16
 * bytes: a short secret is a guessable one.
 */
export function loadTaskTokenSecret(file: string | undefined): Uint8Array | undefined {
  let text: string | undefined;
  let where = "TASKFRAME_TASK_TOKEN_SECRET";
  if (file) {
    where = file;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `cannot read the task token secret file ${file}: ${(error as Error).message}`,
      );
    }
  } else text = process.env.TASKFRAME_TASK_TOKEN_SECRET || undefined;
  if (text === undefined) return undefined;
  const secret = Buffer.from(text.trim(), "utf8");
  if (secret.length < 16) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `${where}: the task token secret is ${secret.length} bytes; give at least 16 (e.g. openssl rand -hex 32)`,
    );
  }
  return secret;
}
