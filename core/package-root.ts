import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const parent = dirname(here);

/** The installed package's root, whether this runs from source (tests) or from dist/. */
export const packageRoot = basename(parent) === "dist" ? dirname(parent) : parent;

export const packagePath = (...segments: string[]): string => join(packageRoot, ...segments);
