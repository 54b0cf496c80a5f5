/** The field actions of response-protection, compiled once per rule and applied to a parsed JSON document. */
import { createHmac } from 'node:crypto';
import { compilePath, visitPath, type CompiledPath } from '../../shared/json-path.js';
import type { FieldRule } from './schema.js';

export type FieldProtector = (document: unknown) => void;

function text(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

export function compileFieldRule(rule: FieldRule, hashKey: Buffer | undefined): FieldProtector {
  const path: CompiledPath = compilePath(rule.path);
  switch (rule.action) {
    case 'drop':
      return (doc) =>
        visitPath(doc, path, (container, key) => {
          if (Array.isArray(container)) container.splice(key as number, 1);
          else delete container[key as string];
        });
    case 'mask': {
      const keep = rule.keep_last;
      const char = rule.mask_char;
      return (doc) =>
        visitPath(doc, path, (container, key) => {
          const value = (container as Record<string | number, unknown>)[key];
          if (value === null || value === undefined) return;
          const s = text(value);
          const visible = s.length > keep ? keep : 0;
          (container as Record<string | number, unknown>)[key] =
            char.repeat(s.length - visible) + s.slice(s.length - visible);
        });
    }
    case 'truncate': {
      const length = rule.length;
      return (doc) =>
        visitPath(doc, path, (container, key) => {
          const value = (container as Record<string | number, unknown>)[key];
          if (value === null || value === undefined) return;
          (container as Record<string | number, unknown>)[key] = text(value).slice(0, length);
        });
    }
    case 'hash': {
      if (hashKey === undefined)
        throw new Error(`response-protection: field "${rule.path}" uses hash but no hash_key is configured`);
      return (doc) =>
        visitPath(doc, path, (container, key) => {
          const value = (container as Record<string | number, unknown>)[key];
          if (value === null || value === undefined) return;
          (container as Record<string | number, unknown>)[key] = createHmac('sha256', hashKey)
            .update(text(value))
            .digest('base64url')
            .slice(0, 22);
        });
    }
  }
}
