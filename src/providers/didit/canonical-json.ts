/**
 * Didit's canonical JSON: what its server signs. Compact (`,` and `:`), object keys sorted by Unicode code point
 * at every depth (so "10" sorts before "9", and astral characters after U+FFFF-range ones), arrays in order,
 * `{}` kept, whole-valued floats written as integers (JSON.parse already turns `1.0` into 1), `/` never escaped.
 * The body Didit sends escapes every non-ASCII character as `\uXXXX` (`asciiOnly`); X-Signature-V2 is computed
 * over the same text with non-ASCII left as UTF-8.
 */

/** Orders strings by code point (Python's order), not by UTF-16 code unit (JavaScript's default). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Code units only disagree with code points when one side is a surrogate (D800-DFFF) and the other is in
    // E000-FFFF: the surrogate starts a character above U+FFFF, so it sorts last.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y >= 0xe000 : x >= 0xe000)) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Numbers as Didit's (Python) server writes them: whole values as integers with every digit (1e21 →
 * "1000000000000000000000"), other values in the shortest round-trip form, which JavaScript and Python share,
 * except that Python switches to exponent notation below 1e-4 and pads the exponent to two digits ("1e-05").
 */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError('canonical JSON has no representation for NaN or Infinity');
  if (Number.isInteger(n)) return Math.abs(n) < 1e21 ? String(n === 0 ? 0 : n) : BigInt(n).toString();
  const abs = Math.abs(n);
  if (abs >= 1e-4) return String(n);
  const [mantissa, exponent] = abs.toExponential().split('e') as [string, string];
  const e = Number(exponent);
  return `${n < 0 ? '-' : ''}${mantissa}e-${String(-e).padStart(2, '0')}`;
}

/**
 * Deepest nesting written. Didit's server (Python's json, bounded by the interpreter's recursion limit) signs
 * nothing deeper, and a bound keeps a hostile body from exhausting the stack.
 */
export const MAX_CANONICAL_DEPTH = 512;

function write(value: unknown, out: string[], depth: number): void {
  if (value === null || typeof value === 'boolean') {
    out.push(String(value));
  } else if (typeof value === 'number') {
    out.push(formatNumber(value));
  } else if (typeof value === 'string') {
    out.push(JSON.stringify(value));
  } else if (depth >= MAX_CANONICAL_DEPTH && typeof value === 'object') {
    throw new RangeError(`canonical JSON nests deeper than ${MAX_CANONICAL_DEPTH} levels`);
  } else if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      write(value[i] === undefined ? null : value[i], out, depth + 1);
    }
    out.push(']');
  } else if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort(compareCodePoints);
    out.push('{');
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(keys[i]), ':');
      write(obj[keys[i]!], out, depth + 1);
    }
    out.push('}');
  } else {
    throw new TypeError(`canonical JSON cannot encode a ${typeof value}`);
  }
}

const NON_ASCII = /[\u0080-\uffff]/g;

function escapeNonAscii(ch: string): string {
  return '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0');
}

/**
 * Serialises `value` as Didit does; `asciiOnly` escapes non-ASCII as `\uXXXX` (lower-case hex, surrogate pairs).
 * Throws a RangeError beyond MAX_CANONICAL_DEPTH levels of nesting and a TypeError for what JSON cannot encode.
 */
export function canonicalJson(value: unknown, options: { asciiOnly?: boolean } = {}): string {
  const out: string[] = [];
  write(value, out, 0);
  const text = out.join('');
  // Outside strings canonical JSON is pure ASCII, so escaping the whole text only touches string contents.
  return options.asciiOnly ? text.replace(NON_ASCII, escapeNonAscii) : text;
}
