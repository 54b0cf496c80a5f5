/** JSON body mapping (rename, remove, set by path), compiled once. */
import { compilePath, getPath, removePath, setPath, type CompiledPath } from '../../shared/json-path.js';
import type { BodyMapping } from './schema.js';

export interface CompiledBodyMapping {
  readonly empty: boolean;
  apply(document: unknown): void;
}

function definite(source: string, what: string): CompiledPath {
  const p = compilePath(source);
  if (!p.definite) throw new Error(`transform: ${what} path "${source}" may not contain wildcards`);
  return p;
}

export function compileBodyMapping(mapping: BodyMapping): CompiledBodyMapping {
  const renames = Object.entries(mapping.rename).map(
    ([from, to]) => [definite(from, 'rename'), definite(to, 'rename')] as const,
  );
  const removals = mapping.remove.map((p) => compilePath(p));
  // Values are deep-copied per request so one response can never alter what the next one gets.
  const sets = Object.entries(mapping.set).map(
    ([path, value]) => [definite(path, 'set'), JSON.stringify(value)] as const,
  );
  return {
    empty: renames.length === 0 && removals.length === 0 && sets.length === 0,
    apply(document) {
      for (const [from, to] of renames) {
        const value = getPath(document, from);
        if (value === undefined) continue;
        removePath(document, from);
        setPath(document, to, value);
      }
      for (const p of removals) removePath(document, p);
      for (const [path, json] of sets) setPath(document, path, JSON.parse(json));
    },
  };
}
