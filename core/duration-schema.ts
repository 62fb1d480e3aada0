import { z } from "zod";
import { parseDurationMs } from "./definitions/duration.js";

/** A config duration (`30s`, `2m`, or milliseconds as a number), read into milliseconds; a bad one is a zod issue. */
export const durationSchema = () =>
  z.union([z.string(), z.number()]).transform((value, context) => {
    try {
      return parseDurationMs(value);
    } catch (error) {
      context.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  });
