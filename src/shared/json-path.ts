/**
 * A small JSON path syntax for masking and body mapping, compiled once per config:
 *
 *   $.user.ssn          a member
 *   $.items[*].iban     every element of an array
 *   $.items[0].iban     one element
 *   $.data.*            every member of an object
 *   $['odd key'].x      a member whose name is not an identifier
 *
 * Only these forms exist: no filters, no recursive descent, no scripts. A path that does not match the document
 * simply selects nothing.
 */

export type PathSegment = { kind: 'member'; name: string } | { kind: 'index'; index: number } | { kind: 'wildcard' };

export interface CompiledPath {
  readonly source: string;
  readonly segments: readonly PathSegment[];
  /** True when the path selects at most one location (no wildcards): usable as a target for `set` and `rename`. */
  readonly definite: boolean;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

/** Parses a path, throwing an Error that names the problem (config validation turns it into a config error). */
export function compilePath(source: string): CompiledPath {
  if (!source.startsWith('$')) throw new Error(`JSON path "${source}" must start with "$"`);
  const segments: PathSegment[] = [];
  let i = 1;
  while (i < source.length) {
    const c = source[i];
    if (c === '.') {
      i++;
      if (source[i] === '*') {
        segments.push({ kind: 'wildcard' });
        i++;
        continue;
      }
      const m = IDENTIFIER.exec(source.slice(i));
      if (!m) throw new Error(`JSON path "${source}": expected a member name at position ${i}`);
      segments.push({ kind: 'member', name: m[0] });
      i += m[0].length;
    } else if (c === '[') {
      const end = source.indexOf(']', i);
      if (end === -1) throw new Error(`JSON path "${source}": unclosed "["`);
      const inner = source.slice(i + 1, end).trim();
      if (inner === '*') segments.push({ kind: 'wildcard' });
      else if (/^\d+$/.test(inner)) segments.push({ kind: 'index', index: Number(inner) });
      else if (/^'[^']*'$/.test(inner) || /^"[^"]*"$/.test(inner))
        segments.push({ kind: 'member', name: inner.slice(1, -1) });
      else throw new Error(`JSON path "${source}": "[${inner}]" is not [*], [n] or ['name']`);
      i = end + 1;
    } else {
      throw new Error(`JSON path "${source}": unexpected "${c}" at position ${i}`);
    }
  }
  if (segments.length === 0) throw new Error(`JSON path "${source}" selects the whole document; name a member`);
  return { source, segments, definite: segments.every((s) => s.kind !== 'wildcard') };
}

/**
 * Calls `visit(container, key)` for every location the path selects whose parent exists. `key` is a member name
 * or an array index; the visitor may read, replace or delete `container[key]`.
 */
export function visitPath(
  document: unknown,
  path: CompiledPath,
  visit: (container: Record<string, unknown> | unknown[], key: string | number) => void,
): void {
  walk(document, path.segments, 0, visit);
}

function walk(
  node: unknown,
  segments: readonly PathSegment[],
  depth: number,
  visit: (container: Record<string, unknown> | unknown[], key: string | number) => void,
): void {
  if (node === null || typeof node !== 'object') return;
  const segment = segments[depth]!;
  const last = depth === segments.length - 1;
  if (segment.kind === 'wildcard') {
    if (Array.isArray(node)) {
      // Backwards, so a visitor that deletes array elements does not skip any.
      for (let i = node.length - 1; i >= 0; i--) last ? visit(node, i) : walk(node[i], segments, depth + 1, visit);
    } else {
      for (const key of Object.keys(node))
        last
          ? visit(node as Record<string, unknown>, key)
          : walk((node as Record<string, unknown>)[key], segments, depth + 1, visit);
    }
    return;
  }
  if (segment.kind === 'index') {
    if (!Array.isArray(node) || segment.index >= node.length) return;
    if (last) visit(node, segment.index);
    else walk(node[segment.index], segments, depth + 1, visit);
    return;
  }
  if (Array.isArray(node) || !Object.hasOwn(node, segment.name)) return;
  if (last) visit(node as Record<string, unknown>, segment.name);
  else walk((node as Record<string, unknown>)[segment.name], segments, depth + 1, visit);
}

/** Removes every location the path selects (array elements are spliced out). */
export function removePath(document: unknown, path: CompiledPath): void {
  visitPath(document, path, (container, key) => {
    if (Array.isArray(container)) container.splice(key as number, 1);
    else delete container[key as string];
  });
}

/** Reads the value at a definite path, or undefined. */
export function getPath(document: unknown, path: CompiledPath): unknown {
  let node = document;
  for (const s of path.segments) {
    if (node === null || typeof node !== 'object') return undefined;
    if (s.kind === 'index') node = Array.isArray(node) ? node[s.index] : undefined;
    else if (s.kind === 'member')
      node =
        Array.isArray(node) || !Object.hasOwn(node, s.name) ? undefined : (node as Record<string, unknown>)[s.name];
    else return undefined;
  }
  return node;
}

/** Sets the value at a definite path, creating missing objects on the way. Returns false if a parent is not an object. */
export function setPath(document: unknown, path: CompiledPath, value: unknown): boolean {
  let node = document;
  const segments = path.segments;
  for (let i = 0; i < segments.length; i++) {
    if (node === null || typeof node !== 'object') return false;
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s.kind === 'index') {
      if (!Array.isArray(node) || s.index > node.length) return false;
      if (last) node[s.index] = value;
      else node = node[s.index];
    } else if (s.kind === 'member') {
      if (Array.isArray(node)) return false;
      const obj = node as Record<string, unknown>;
      if (last) {
        // Never write through the prototype chain.
        if (s.name === '__proto__')
          Object.defineProperty(obj, s.name, { value, enumerable: true, writable: true, configurable: true });
        else obj[s.name] = value;
      } else {
        if (!Object.hasOwn(obj, s.name)) {
          if (s.name === '__proto__') return false;
          obj[s.name] = {};
        } else if (obj[s.name] === null || typeof obj[s.name] !== 'object') {
          return false; // never overwrite an existing value to make room
        }
        node = obj[s.name];
      }
    } else return false;
  }
  return true;
}
