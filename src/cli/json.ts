// JSON for terminals: JSON.stringify leaves DEL, C1 controls (U+009B starts
// a control sequence on some terminals) and bidi overrides raw, so an owner
// label or command line could still drive the terminal. Escaping them keeps
// the output valid, identical JSON.
const UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/** JSON.stringify with every character that could act on a terminal written as \uXXXX. */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
