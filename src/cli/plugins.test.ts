import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadExtensions } from './plugins.js';
import { POLICIES } from '../bundled.js';

test('plugins add policies to the bundled list; a name that exists already, or a subsystem without the shape, is refused', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-plugin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = path.join(dir, 'good.mjs');
  writeFileSync(
    good,
    `export default { policies: [{ name: 'x-teapot', description: 'test', phase: 'transform', schema: { ` +
      `type: 'object' }, create: () => ({ onRequest: () => ({ status: 418 }) }) }] };\n`,
  );
  const clash = path.join(dir, 'clash.mjs');
  writeFileSync(
    clash,
    `export default { policies: [{ name: 'rate-limit', description: 'test', phase: 'protect', schema: {}, create: () => ({}) }] };\n`,
  );
  const shapeless = path.join(dir, 'shapeless.mjs');
  writeFileSync(shapeless, `export const policies = [];\n`);

  const none = await loadExtensions([]);
  assert.equal(none.policies, POLICIES);
  const loaded = await loadExtensions([good]);
  assert.equal(loaded.policies.length, POLICIES.length + 1);
  assert.ok(loaded.policies.some((p) => p.name === 'x-teapot'));
  assert.ok(loaded.subsystems.some((m) => m.name === 'kyc'));
  await assert.rejects(loadExtensions([clash]), /a policy named "rate-limit" exists already/);
  await assert.rejects(loadExtensions([shapeless]), /default export must be/);
});
