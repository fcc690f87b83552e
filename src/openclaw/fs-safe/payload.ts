// The owner payload. fs-safe writes `payload()` as the whole sidecar; with
// kernel-lock the sidecar is kernel-lock's owner record (pid, start time,
// host, pid namespace, argv, grant time) and the payload travels in its
// `owner` label as compact JSON, so `kernel-lock status`, timeout messages
// and a caller's parsePayload all see what the holder said about itself.
import { FsSafeError } from './errors.js';

/** fs-safe's bound on a serialized sidecar (1 MiB). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** The core cuts owner labels at this many characters. */
export const MAX_LABEL_LENGTH = 256;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** fs-safe's size rule, with its error: the pretty-printed sidecar must fit in 1 MiB. */
function checkSize(payload: unknown): void {
  const raw = `${JSON.stringify(payload, null, 2)}\n`;
  const bytes = Buffer.byteLength(raw, 'utf8');
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new FsSafeError(
      'too-large',
      `sidecar lock payload exceeds limit of ${MAX_PAYLOAD_BYTES} bytes (got ${bytes})`,
    );
  }
}

/**
 * The owner label for a payload: its compact JSON when that fits the core's
 * 256 characters (or `maxLength`, when part of the label is taken), else the
 * JSON of its leading keys that fit (a payload that large is unusual: the
 * runtime's is `{pid, createdAt, starttime}`).
 */
export function ownerLabel(payload: unknown, maxLength = MAX_LABEL_LENGTH): string | undefined {
  const json = JSON.stringify(payload);
  if (json === undefined) return undefined;
  if (json.length <= maxLength) return json;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(payload)) {
    const next = JSON.stringify({ ...kept, [key]: value });
    if (next.length > maxLength) continue;
    kept[key] = value;
  }
  return Object.keys(kept).length === 0 ? undefined : JSON.stringify(kept);
}

/**
 * Evaluates `payload()` once (receiver: the options, as fs-safe); its errors
 * propagate unchanged. Returns its owner label of at most `maxLength` characters.
 */
export async function evaluatePayload(
  options: { payload: () => unknown },
  maxLength = MAX_LABEL_LENGTH,
): Promise<string | undefined> {
  const payload = await Reflect.apply(options.payload, options, []);
  checkSize(payload);
  return ownerLabel(payload, maxLength);
}

/** The synchronous form: a promise or thenable is a TypeError, as in fs-safe's sync API. */
export function evaluatePayloadSync(options: { payload: () => unknown }): string | undefined {
  const payload = Reflect.apply(options.payload, options, []);
  if (isThenable(payload)) {
    throw new TypeError('acquireFileLockSync: payload() must return the payload synchronously, not a promise');
  }
  checkSize(payload);
  return ownerLabel(payload);
}

/** fs-safe's default parse: a JSON object, else null. */
export function defaultParsePayload(raw: string): unknown {
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : null;
  } catch {
    return null;
  }
}
