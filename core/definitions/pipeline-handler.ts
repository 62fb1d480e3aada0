import { describeValue, type FieldPath } from "./field-path.js";
import type { YamlSource } from "./yaml-source.js";

/** Handler input travels in the task spec; big data belongs in a store the handler reads. */
export const MAX_INPUT_BYTES = 1024 * 1024;

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";
const JSON_LIKE = /^application\/(?:[A-Za-z0-9!#$&^_.-]+\+)?json\s*(?:;.*)?$/i;

/**
 * A handler's `input:` as bytes: a string as its UTF-8 text (text/plain unless `content_type:` says
 * otherwise), anything else as JSON (application/json).
 */
export function encodeInput(
  source: YamlSource,
  input: unknown,
  hasInput: boolean,
  contentType: string | undefined,
  path: FieldPath,
): { input: Uint8Array; contentType: string } {
  const inputPath = [...path, "input"];
  if (!hasInput) return { input: new Uint8Array(), contentType: contentType ?? "" };
  let bytes: Uint8Array;
  let type: string;
  if (typeof input === "string") {
    bytes = new TextEncoder().encode(input);
    type = contentType ?? TEXT_TYPE;
  } else {
    checkFinite(source, input, inputPath);
    if (contentType !== undefined && !JSON_LIKE.test(contentType)) {
      source.fail(
        [...path, "content_type"],
        `expected a JSON media type (such as ${JSON_TYPE}) for an input that is ${describeValue(input)}; ` +
          "for another type, write the input as a string",
      );
    }
    bytes = new TextEncoder().encode(JSON.stringify(input));
    type = contentType ?? JSON_TYPE;
  }
  if (bytes.length > MAX_INPUT_BYTES) {
    source.fail(
      inputPath,
      `expected an input of at most ${MAX_INPUT_BYTES} bytes, got ${bytes.length}: put big data in a file or store and pass its name`,
    );
  }
  return { input: bytes, contentType: type };
}

/** JSON has no NaN or infinity (`.nan`, `.inf` in YAML); they would silently become null. */
function checkFinite(source: YamlSource, value: unknown, path: FieldPath): void {
  if (typeof value === "number" && !Number.isFinite(value)) {
    source.fail(path, `expected a finite number (JSON has no ${value}), got ${value}`);
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) checkFinite(source, item, [...path, index]);
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) checkFinite(source, item, [...path, key]);
  }
}
