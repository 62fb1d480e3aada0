import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import { ROLES, type Role, type Tenants } from "./principal.js";

/** Tenant names: like pool names, so that they are safe in logs, URLs and SQL parameters alike. */
export const TENANT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const tenantsSchema = z.union([
  z.literal("*"),
  z
    .array(z.string().regex(TENANT_NAME, "tenant names are 1-64 letters, digits, '_' or '-'"))
    .min(1, 'give at least one tenant, or "*" for all'),
]);

const entrySchema = z
  .strictObject({
    name: z.string().min(1, "a name is required").max(128),
    /** Hex SHA-256 of the token: the file need not hold the token itself. */
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "64 hex digits (sha256sum of the token)")
      .optional(),
    token: z.string().min(16, "at least 16 characters").optional(),
    tenants: tenantsSchema,
    role: z.enum(ROLES),
  })
  .refine((entry) => (entry.sha256 === undefined) !== (entry.token === undefined), {
    message: "give exactly one of sha256 or token",
  });

const fileSchema = z.strictObject({ tokens: z.array(entrySchema) });

/** One token of the file, as the hub holds it: only its digest. */
export interface StaticToken {
  name: string;
  digest: Buffer;
  tenants: Tenants;
  role: Role;
}

export const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

/** Parses a tokens file's text; errors name the file, the field and what was expected. */
export function parseTokensFile(text: string, file: string): StaticToken[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw invalid(file, `not YAML: ${(error as Error).message}`);
  }
  const parsed = fileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path
        .map((part, i) => (typeof part === "number" ? `[${part}]` : `${i > 0 ? "." : ""}${String(part)}`))
        .join("");
      if (issue.code === "unrecognized_keys")
        return `${path || "(top level)"}: unknown field ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
      return `${path || "(top level)"}: ${issue.message}`;
    });
    throw invalid(file, problems.join("; "));
  }
  const names = new Set<string>();
  return parsed.data.tokens.map((entry, index) => {
    if (names.has(entry.name)) throw invalid(file, `tokens[${index}].name: '${entry.name}' is given twice`);
    names.add(entry.name);
    return {
      name: entry.name,
      digest: entry.sha256 ? Buffer.from(entry.sha256, "hex") : sha256(entry.token!),
      tenants: entry.tenants,
      role: entry.role,
    };
  });
}

export function loadTokensFile(file: string): StaticToken[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw invalid(file, `cannot read it: ${(error as Error).message}`);
  }
  return parseTokensFile(text, file);
}

function invalid(file: string, problem: string): TaskframeError {
  return new TaskframeError(TaskframeErrorCode.InvalidArgument, `auth tokens file ${file}: ${problem}`);
}
