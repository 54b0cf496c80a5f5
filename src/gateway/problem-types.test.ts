/**
 * Every problem type the bundled gateway may answer with is declared by the core or by the feature that answers
 * it, once, and documented in a table row of docs/ (`| \`kind\` | status | ...`), with the status it is sent with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SUBSYSTEMS, POLICIES } from '../bundled.js';
import { problemTypesOf } from './gateway.js';

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs');

test('every problem type is declared once and documented with its status', () => {
  const types = problemTypesOf(POLICIES, SUBSYSTEMS);
  const kinds = types.map((t) => t.kind);
  assert.equal(
    new Set(kinds).size,
    kinds.length,
    `declared twice: ${kinds.filter((k, i) => kinds.indexOf(k) !== i).join(', ')}`,
  );
  assert.ok(kinds.includes('kyc-required') && kinds.includes('decision-needs-body') && kinds.includes('not-found'));
  const docs = readdirSync(DOCS)
    .filter((f) => f.endsWith('.md'))
    .map((f) => readFileSync(path.join(DOCS, f), 'utf8'))
    .join('\n');
  for (const t of types) {
    const row = new RegExp('^\\|\\s*`' + t.kind + '`\\s*\\|\\s*' + t.status + '\\s*\\|', 'm');
    assert.match(docs, row, `${t.kind} (${t.status}) has a row in a docs table`);
  }
});
