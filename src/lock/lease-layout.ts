// The layout of a lock file that carries a fenced lease (src/lease/), kept
// here, beside the owner record, because inspection and sweeping (below the
// lease layer) must recognise such a file and read its token.
//
//   bytes [0, 4096)        the owner record area, as for every lock file: one
//                          JSON line padded with spaces (owner-record.ts)
//   bytes [4096, 4224)     the token slot: one fixed-size text line with the
//                          lease's fencing token, when it was granted and
//                          after how long it may be superseded, plus a check
//   lock byte 2^48         the fence: a short exclusive OFD lock that every
//                          token change and every fenced write takes
//   lock byte 2^48 + t     held (OFD write lock) exactly while the lease with
//                          token t is alive; nothing is ever stored there,
//                          the offsets only name kernel locks
//
// The slot sits past the record area so that a plain lock() of the same file
// (which rewrites the record area only) never touches it. Offsets stay below
// 2^53 so they travel through JavaScript numbers exactly.

/** Size of the owner record area at the head of every lock file. */
export const RECORD_AREA_BYTES = 4096;
/** Offset of the token slot. */
export const SLOT_OFFSET = RECORD_AREA_BYTES;
/** Size of the token slot (one line, padded with spaces). */
export const SLOT_BYTES = 128;
/** Size of a lease file once its first token was written. */
export const LEASE_FILE_BYTES = SLOT_OFFSET + SLOT_BYTES;

/** First byte of the lease lock area: the fence. */
export const FENCE_BYTE = 2 ** 48;
/** Largest token a lease file can hand out (about 8.7e15: 275 years at a million leases a second). */
export const MAX_TOKEN = Number.MAX_SAFE_INTEGER - FENCE_BYTE;

/** The lock byte that is held while the lease with `token` (>= 1) is alive. */
export function holderByte(token: number): number {
  return FENCE_BYTE + token;
}

/** The token whose liveness byte is `offset`, or null when the offset is not one. */
export function tokenOfByte(offset: number): number | null {
  const token = offset - FENCE_BYTE;
  return Number.isSafeInteger(token) && token >= 1 && token <= MAX_TOKEN ? token : null;
}

/** What the token slot says. */
export interface TokenSlot {
  /** The last token handed out (0: none yet). */
  token: number;
  /** When that lease was granted, in milliseconds since the epoch (0: none yet). */
  grantedAtMs: number;
  /** After how many milliseconds of holding that lease may be superseded (Infinity: never). */
  takeoverAfterMs: number;
}

/** The slot of a file that never had a lease. */
export const EMPTY_SLOT: TokenSlot = { token: 0, grantedAtMs: 0, takeoverAfterMs: Number.POSITIVE_INFINITY };

const SLOT_MAGIC = 'kernel-lock-lease/1';

// FNV-1a, 32 bits: not for security, only so that a read racing a write (a
// reader that does not hold the fence can see half of each) is never taken
// for a valid slot.
function check(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** The slot's bytes: exactly SLOT_BYTES, one line, padded with spaces. */
export function formatSlot(slot: TokenSlot): Buffer {
  const after = Number.isFinite(slot.takeoverAfterMs) ? String(slot.takeoverAfterMs) : 'inf';
  const body = `${SLOT_MAGIC} token=${slot.token} granted=${slot.grantedAtMs} takeover-after=${after}`;
  const line = `${body} check=${check(body)}`;
  const bytes = Buffer.alloc(SLOT_BYTES, 0x20);
  bytes.write(line, 0, 'latin1');
  bytes[SLOT_BYTES - 1] = 0x0a;
  return bytes;
}

/** True when `bytes` (read at SLOT_OFFSET) begin like a token slot, valid or not. */
export function looksLikeSlot(bytes: Buffer): boolean {
  return bytes.subarray(0, SLOT_MAGIC.length + 1).toString('latin1') === `${SLOT_MAGIC} `;
}

const SLOT_PATTERN =
  /^(kernel-lock-lease\/1 token=(0|[1-9]\d{0,15}) granted=(0|[1-9]\d{0,15}) takeover-after=(0|[1-9]\d{0,15}|inf)) check=([0-9a-f]{8}) *\n$/;

/**
 * Parses the slot's bytes. `null` means "no slot here" (the file is shorter,
 * or the area was never written: all NUL or all spaces); 'invalid' means the
 * bytes are something else (a torn read, or damage).
 */
export function parseSlot(bytes: Buffer): TokenSlot | null | 'invalid' {
  // The common case first: a slot starts with the magic's "k".
  if (bytes[0] !== 0x6b && (bytes.length === 0 || bytes.every((b) => b === 0 || b === 0x20))) return null;
  if (bytes.length !== SLOT_BYTES) return 'invalid';
  const match = SLOT_PATTERN.exec(bytes.toString('latin1'));
  if (match === null || check(match[1]!) !== match[5]) return 'invalid';
  const token = Number(match[2]);
  if (token > MAX_TOKEN) return 'invalid';
  return {
    token,
    grantedAtMs: Number(match[3]),
    takeoverAfterMs: match[4] === 'inf' ? Number.POSITIVE_INFINITY : Number(match[4]),
  };
}
