import { z } from "zod";
import { parseSizeBytes } from "./definitions/units/size.js";
import { durationSchema } from "./duration-schema.js";

const duration = durationSchema();

const count = z.coerce.number().int().min(0);

const size = z.union([z.string(), z.number()]).transform((value, context) => {
  try {
    return Number(parseSizeBytes(String(value)));
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const poolScalingSchema = z
  .strictObject({
    min: count.default(0),
    max: count,
    /** Tasks one host runs at once (its sidecar's --slots): how much backlog a host takes. */
    "slots-per-host": z.coerce.number().int().positive().default(8),
    /** A host's memory and cores: hosts are also packed by the memory and CPU queued tasks declare. */
    "memory-per-host": size.optional(),
    "cpus-per-host": z.coerce.number().positive().optional(),
    "scale-up-cooldown": duration.default(10_000),
    "scale-down-cooldown": duration.default(120_000),
    /** The pool's budget: host-hours in any 24 hours; no scale-up once they are spent. */
    "host-hours-per-day": z.coerce.number().positive().optional(),
    /** The provider's size class for this pool's hosts ("" for its default). */
    size: z.string().default(""),
    labels: z.record(z.string(), z.string()).default({}),
  })
  .refine((pool) => pool.min <= pool.max, { message: "min must not be above max" });

const providerSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("local"),
    /** More flags for every `task sidecar` it starts (the hub's NATS settings are passed already). */
    "sidecar-args": z.array(z.string()).default([]),
  }),
  z.strictObject({
    kind: z.literal("http"),
    url: z.url(),
    token: z.string().optional(),
    timeout: duration.default(10_000),
  }),
  z.strictObject({
    kind: z.literal("kubernetes"),
    api: z.url(),
    namespace: z.string().min(1),
    "stateful-set": z.string().min(1),
    token: z.string().optional(),
    timeout: duration.default(10_000),
  }),
]);

/** The hub config's `autoscale:` block (YAML), validated at start. */
export const autoscaleConfigSchema = z.strictObject({
  provider: providerSchema,
  /** How often the leading hub looks at the pools. */
  interval: duration.default(2_000),
  /** A host whose sidecar has not been heard from this long after the provider started it is deleted. */
  "register-deadline": duration.default(120_000),
  /** A host not heard from for this long is lost: deleted, its work redelivered when its leases expire. */
  "heartbeat-timeout": duration.default(10_000),
  /** A draining host still running after this is deleted anyway (above the sidecars' --drain-timeout). */
  "drain-timeout": duration.default(600_000),
  pools: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a pool name"), poolScalingSchema),
});

export type AutoscaleConfig = z.output<typeof autoscaleConfigSchema>;
export type PoolScaling = AutoscaleConfig["pools"][string];
export type ProviderConfig = AutoscaleConfig["provider"];
