// How a lock file's path is shown. On Linux a file name is bytes, not text:
// `sess-\xff\xfe.lock` is a valid name that no UTF-8 string can hold, and
// decoding it as UTF-8 (U+FFFD for each bad byte) names a different file,
// so a scan would inspect a path that does not exist and call a held lock
// free. Paths therefore travel as bytes (a Buffer) wherever they came from
// a directory listing, and are turned into text only for display:
// - pathText(): for the API and JSON. The path itself when it is UTF-8;
//   otherwise its escaped form plus the exact bytes in base64 (pathBytes).
// - escapePath(): for terminals. Unambiguous and reversible, like
//   `ls --quoting-style=escape`: a backslash becomes `\\`, and every byte of
//   an invalid UTF-8 sequence, of a control character (C0, DEL, C1) or of a
//   bidirectional-formatting character becomes `\xHH`.
import { isUtf8 } from 'node:buffer';

/** A path as the API and `--json` report it. */
export interface PathText {
  /** The path; when `pathBytes` is present, its escaped form (see escapePath()). */
  path: string;
  /** The exact bytes of the path in base64, present only when they are not valid UTF-8. */
  pathBytes?: string;
}

/** The text form of a path: itself when it is UTF-8, else escaped with the exact bytes alongside. */
export function pathText(input: string | Buffer): PathText {
  if (typeof input === 'string') return { path: input };
  if (isUtf8(input)) return { path: input.toString('utf8') };
  return { path: escapePath(input), pathBytes: input.toString('base64') };
}

/** The path a PathText stands for: the exact bytes when it carries them. */
export function rawPath(text: PathText): string | Buffer {
  return text.pathBytes === undefined ? text.path : Buffer.from(text.pathBytes, 'base64');
}

/** A PathText escaped for a terminal (from its exact bytes when it carries them). */
export function displayPath(text: PathText): string {
  return escapePath(rawPath(text));
}

/** Code points that could act on a terminal or reorder the text around them. */
function unsafe(cp: number): boolean {
  return (
    cp < 0x20 ||
    (cp >= 0x7f && cp <= 0x9f) ||
    cp === 0x061c ||
    cp === 0x200e ||
    cp === 0x200f ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0x2028 ||
    cp === 0x2029
  );
}

const inRange = (byte: number | undefined, low: number, high: number): boolean =>
  byte !== undefined && byte >= low && byte <= high;

/** Length of the valid UTF-8 sequence starting at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function sequenceLength(bytes: Buffer, i: number): number {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number): boolean => inRange(bytes[i + k], 0x80, 0xbf);
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const [low, high] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return inRange(bytes[i + 1], low, high) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const [low, high] = b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return inRange(bytes[i + 1], low, high) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Characters escapePath() must rewrite in otherwise valid UTF-8 text (the backslash and unsafe()). */
const NEEDS_ESCAPE = /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;

const hexByte = (byte: number): string => `\\x${byte.toString(16).padStart(2, '0')}`;

/**
 * A path for a terminal: printable, unambiguous and reversible (`\\` is a
 * backslash, `\xHH` a byte; everything else stands for itself in UTF-8).
 */
export function escapePath(input: string | Buffer): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  // Most paths need nothing: valid UTF-8 without a backslash or an unsafe character.
  if (isUtf8(bytes)) {
    const text = bytes.toString('utf8');
    if (!NEEDS_ESCAPE.test(text)) return text;
  }
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = sequenceLength(bytes, i);
    if (length === 0) {
      out += hexByte(bytes[i]!);
      i++;
      continue;
    }
    const cp = bytes.toString('utf8', i, i + length).codePointAt(0)!;
    if (unsafe(cp)) for (let k = 0; k < length; k++) out += hexByte(bytes[i + k]!);
    else out += cp === 0x5c ? '\\\\' : String.fromCodePoint(cp);
    i += length;
  }
  return out;
}
