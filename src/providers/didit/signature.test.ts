/**
 * Didit webhook signatures against Didit's published known-answer vectors (../shared/conformance, with a copy in
 * test-fixtures/), each signature path on its own, plus tampering, freshness and missing-signature refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingHttpHeaders } from 'node:http';
import { hmacHex, signDiditWebhook, verifyDiditWebhook } from './signature.js';
import { MAX_CANONICAL_DEPTH, canonicalJson, compareCodePoints, formatNumber } from './canonical-json.js';

// Compiled to dist/src/providers/didit/: four levels up is the repository root.
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const sharedFile = path.resolve(repoRoot, '../shared/conformance/didit-webhook-signatures.json');
const fixtureFile = path.resolve(repoRoot, 'test-fixtures/didit-webhook-signatures.json');

interface Vectors {
  secret: string;
  timestamp: number;
  session_id: string;
  cases: Record<string, { body: string; signatures: { raw: string; v2: string; simple: string } }>;
}

const vectorText = readFileSync(existsSync(sharedFile) ? sharedFile : fixtureFile, 'utf8');
const vectors = JSON.parse(vectorText) as Vectors;
const NOW = vectors.timestamp;
const HEADER = { v2: 'x-signature-v2', raw: 'x-signature', simple: 'x-signature-simple' } as const;

function verify(body: Buffer | string, headers: IncomingHttpHeaders, now = NOW) {
  return verifyDiditWebhook(Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'), headers, {
    secret: vectors.secret,
    nowSeconds: now,
  });
}

test('the fixture copy is byte-identical to ../shared/conformance when both exist', (t) => {
  assert.ok(existsSync(fixtureFile), 'test-fixtures/didit-webhook-signatures.json must exist');
  if (!existsSync(sharedFile)) {
    t.diagnostic('../shared is absent: ran on the fixture copy');
    return;
  }
  assert.ok(
    readFileSync(sharedFile).equals(readFileSync(fixtureFile)),
    'test-fixtures copy differs from ../shared/conformance',
  );
});

test('conformance: there are 8 cases', () => {
  assert.equal(Object.keys(vectors.cases).length, 8);
});

for (const [name, c] of Object.entries(vectors.cases)) {
  for (const kind of ['v2', 'raw', 'simple'] as const) {
    test(`conformance ${name}: accepted on the ${kind} signature alone`, () => {
      const result = verify(c.body, { [HEADER[kind]]: c.signatures[kind] });
      assert.equal(result.ok, true, JSON.stringify(result));
      if (!result.ok) return;
      const parsed = JSON.parse(c.body) as Record<string, unknown>;
      assert.equal(result.event.signature, kind);
      assert.equal(result.event.sessionId, vectors.session_id);
      assert.equal(result.event.status, parsed.status);
      assert.equal(result.event.timestamp, vectors.timestamp);
      assert.equal(result.event.webhookType, 'status.updated');
      if (kind === 'simple') {
        assert.equal(result.event.decision, undefined, 'the simple path never carries a decision');
        assert.equal(result.event.vendorData, undefined, 'the simple path trusts only its four fields');
        assert.equal(result.event.workflowId, undefined);
        assert.match(result.event.eventId, /^simple:[0-9a-f]{64}$/);
      } else {
        assert.equal(result.event.eventId, parsed.event_id);
        assert.equal(result.event.vendorData, 'wp-42');
        assert.equal(result.event.workflowId, parsed.workflow_id);
        assert.equal(result.event.decision !== undefined, parsed.decision !== undefined);
      }
    });
  }

  test(`conformance ${name}: the sandbox signer reproduces Didit's body and all three signatures`, () => {
    const signed = signDiditWebhook(vectors.secret, JSON.parse(c.body) as Record<string, unknown>);
    assert.equal(signed.body, c.body);
    assert.equal(signed.headers['x-signature'], c.signatures.raw);
    assert.equal(signed.headers['x-signature-v2'], c.signatures.v2);
    assert.equal(signed.headers['x-signature-simple'], c.signatures.simple);
  });
}

/** Positions to tamper with: all of them for short inputs, an even sample (plus both ends) for long ones. */
function positions(length: number, max = 400): number[] {
  if (length <= max) return Array.from({ length }, (_, i) => i);
  const step = length / max;
  const out = new Set<number>([0, length - 1]);
  for (let i = 0; i < max; i++) out.add(Math.floor(i * step));
  return [...out];
}

function flip(buf: Buffer, at: number): Buffer {
  const copy = Buffer.from(buf);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

for (const name of ['basic_approved', 'unicode_names', 'float_scores'] as const) {
  const c = vectors.cases[name]!;
  for (const kind of ['v2', 'raw'] as const) {
    test(`${name}: flipping any byte of the body is refused on the ${kind} path`, () => {
      const body = Buffer.from(c.body, 'utf8');
      for (const at of positions(body.length)) {
        const result = verify(flip(body, at), { [HEADER[kind]]: c.signatures[kind] });
        assert.equal(result.ok, false, `byte ${at} flipped was accepted`);
      }
    });
  }
  for (const kind of ['v2', 'raw', 'simple'] as const) {
    test(`${name}: flipping any byte of the ${kind} signature is refused`, () => {
      const sig = Buffer.from(c.signatures[kind], 'latin1');
      for (const at of positions(sig.length)) {
        const result = verify(c.body, { [HEADER[kind]]: flip(sig, at).toString('latin1') });
        assert.deepEqual(result, { ok: false, reason: 'invalid_signature' }, `signature byte ${at} flipped`);
      }
    });
  }
}

test('simple path: tampering with any of its four fields is refused, other fields are not trusted', () => {
  const c = vectors.cases.basic_approved!;
  const body = JSON.parse(c.body) as Record<string, unknown>;
  for (const [field, value] of [
    ['session_id', 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeef'],
    ['status', 'Declined'],
    ['webhook_type', 'data.updated'],
    ['timestamp', NOW - 1],
  ] as const) {
    const result = verify(JSON.stringify({ ...body, [field]: value }), { 'x-signature-simple': c.signatures.simple });
    assert.deepEqual(result, { ok: false, reason: 'invalid_signature' }, field);
  }
  const forged = verify(JSON.stringify({ ...body, vendor_data: 'someone-else', event_id: 'forged' }), {
    'x-signature-simple': c.signatures.simple,
  });
  assert.equal(forged.ok, true);
  if (forged.ok) {
    assert.equal(forged.event.vendorData, undefined);
    assert.equal(forged.event.decision, undefined);
    assert.notEqual(forged.event.eventId, 'forged');
  }
});

test('a bad v2 signature falls through to a good raw one, and a bad raw one to a good simple one', () => {
  const c = vectors.cases.unicode_names!;
  const bad = '0'.repeat(64);
  const r1 = verify(c.body, { 'x-signature-v2': bad, 'x-signature': c.signatures.raw });
  assert.equal(r1.ok && r1.event.signature, 'raw');
  const r2 = verify(c.body, { 'x-signature-v2': bad, 'x-signature': bad, 'x-signature-simple': c.signatures.simple });
  assert.equal(r2.ok && r2.event.signature, 'simple');
  const r3 = verify(c.body, {
    'x-signature-v2': c.signatures.v2,
    'x-signature': c.signatures.raw,
    'x-signature-simple': c.signatures.simple,
  });
  assert.equal(r3.ok && r3.event.signature, 'v2', 'v2 is preferred');
});

test('stale and future timestamps are refused; the tolerance is configurable', () => {
  const c = vectors.cases.basic_approved!;
  const h = { 'x-signature': c.signatures.raw };
  assert.equal(verify(c.body, h, NOW + 300).ok, true, 'exactly at the tolerance');
  assert.deepEqual(verify(c.body, h, NOW + 301), { ok: false, reason: 'stale' });
  assert.deepEqual(verify(c.body, h, NOW - 61), { ok: false, reason: 'stale' }, 'more than 60 s in the future');
  assert.equal(verify(c.body, h, NOW - 60).ok, true);
  const wide = verifyDiditWebhook(Buffer.from(c.body), h, {
    secret: vectors.secret,
    nowSeconds: NOW + 3600,
    toleranceSeconds: 7200,
  });
  assert.equal(wide.ok, true);
  // the unsigned X-Timestamp header has no say
  assert.deepEqual(verify(c.body, { ...h, 'x-timestamp': String(NOW + 1000) }, NOW + 1000), {
    ok: false,
    reason: 'stale',
  });
});

test('missing, malformed and wrong-secret signatures are refused', () => {
  const c = vectors.cases.basic_approved!;
  assert.deepEqual(verify(c.body, {}), { ok: false, reason: 'missing_signature' });
  assert.deepEqual(verify(c.body, { 'x-signature': '' }), { ok: false, reason: 'missing_signature' });
  assert.deepEqual(verify(c.body, { 'x-signature': c.signatures.raw.toUpperCase() }), {
    ok: false,
    reason: 'invalid_signature',
  });
  assert.deepEqual(verify(c.body, { 'x-signature': c.signatures.raw.slice(0, 62) }), {
    ok: false,
    reason: 'invalid_signature',
  });
  assert.deepEqual(verify(c.body, { 'x-signature': c.signatures.raw + '00' }), {
    ok: false,
    reason: 'invalid_signature',
  });
  assert.deepEqual(verify(c.body, { 'x-signature': 'zz' + c.signatures.raw.slice(2) }), {
    ok: false,
    reason: 'invalid_signature',
  });
  assert.deepEqual(verify('not json', { 'x-signature': hmacHex(vectors.secret, 'not json') }), {
    ok: false,
    reason: 'malformed',
  });
  assert.deepEqual(verify('[1]', { 'x-signature': hmacHex(vectors.secret, '[1]') }), {
    ok: false,
    reason: 'malformed',
  });
  const other = verifyDiditWebhook(
    Buffer.from(c.body),
    { 'x-signature': c.signatures.raw },
    { secret: vectors.secret + 'x', nowSeconds: NOW },
  );
  assert.deepEqual(other, { ok: false, reason: 'invalid_signature' });
  const onlyV2 = verifyDiditWebhook(
    Buffer.from(c.body),
    { 'x-signature-simple': c.signatures.simple },
    { secret: vectors.secret, nowSeconds: NOW, accept: ['v2', 'raw'] },
  );
  assert.deepEqual(onlyV2, { ok: false, reason: 'missing_signature' }, 'a path that is not accepted is not tried');
});

test('a v2-verified event maps its decision and keeps no image URL', () => {
  const c = vectors.cases.slashes_in_urls!;
  const result = verify(c.body, { 'x-signature-v2': c.signatures.v2 });
  assert.equal(result.ok, true);
  if (!result.ok) return;
  assert.equal(result.event.state, 'approved');
  assert.ok(result.event.decision);
  assert.doesNotMatch(JSON.stringify(result.event), /https?:|front_image/);
  const scores = verify(vectors.cases.float_scores!.body, {
    'x-signature-v2': vectors.cases.float_scores!.signatures.v2,
  });
  assert.ok(scores.ok);
  if (scores.ok) {
    assert.equal(scores.event.decision?.facts.liveness_score, 95.4);
    assert.equal(scores.event.decision?.facts.face_match_score, 96.15);
  }
});

test('canonical JSON: code-point key order at every depth, {} kept, whole floats as integers, / unescaped', () => {
  const parsed = JSON.parse(
    '{"b":{"9":1,"10":2.0,"a":{}},"a":[3,1,{"z":1,"y":"a/b"}],"\u00e9":"\u00fc","\ud83d\ude00":1,"\uffff":2}',
  ) as unknown;
  assert.equal(
    canonicalJson(parsed),
    '{"a":[3,1,{"y":"a/b","z":1}],"b":{"10":2,"9":1,"a":{}},"é":"ü","\uffff":2,"😀":1}',
  );
  assert.equal(
    canonicalJson(parsed, { asciiOnly: true }),
    '{"a":[3,1,{"y":"a/b","z":1}],"b":{"10":2,"9":1,"a":{}},"\\u00e9":"\\u00fc","\\uffff":2,"\\ud83d\\ude00":1}',
  );
  assert.ok(compareCodePoints('\ud83d\ude00', '\uffff') > 0, 'astral characters sort after U+FFFF');
  assert.ok(compareCodePoints('10', '9') < 0);
});

test('canonical JSON numbers are written as Python writes them', () => {
  const cases: Array<[number, string]> = [
    [0, '0'],
    [-0, '0'],
    [42, '42'],
    [-7, '-7'],
    [96.15, '96.15'],
    [0.1, '0.1'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [-0.000015, '-1.5e-05'],
    [1e-7, '1e-07'],
    [1.5e-123, '1.5e-123'],
    [1e16, '10000000000000000'],
    [1e21, '1000000000000000000000'],
    [123456.789, '123456.789'],
  ];
  for (const [n, text] of cases) assert.equal(formatNumber(n), text, String(n));
  assert.throws(() => formatNumber(Number.NaN));
});

test('a body too deep (or with a number JSON cannot write) for the v2 canonical form: the v2 signature cannot match, the raw one still decides', () => {
  assert.throws(
    () => canonicalJson(JSON.parse('['.repeat(MAX_CANONICAL_DEPTH + 1) + ']'.repeat(MAX_CANONICAL_DEPTH + 1))),
    RangeError,
  );
  assert.equal(
    canonicalJson(JSON.parse('['.repeat(MAX_CANONICAL_DEPTH) + ']'.repeat(MAX_CANONICAL_DEPTH))).length,
    2 * MAX_CANONICAL_DEPTH,
  );
  const envelope = `"event_id":"evt-deep","session_id":"${vectors.session_id}","status":"Approved","webhook_type":"status.updated","timestamp":${NOW}`;
  for (const body of [`{${envelope},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, `{${envelope},"x":1e400}`]) {
    assert.deepEqual(verify(body, { 'x-signature-v2': 'ab'.repeat(32) }), { ok: false, reason: 'invalid_signature' });
    const raw = verify(body, { 'x-signature-v2': 'ab'.repeat(32), 'x-signature': hmacHex(vectors.secret, body) });
    assert.equal(raw.ok && raw.event.signature, 'raw');
  }
});

test('created_at (unix seconds or ISO 8601) is the event time, taken only from a fully authenticated body', () => {
  const secret = 'wh_test_secret_9f2c4b8e1a7d';
  const base = {
    event_id: 'e1',
    webhook_type: 'status.updated',
    timestamp: NOW,
    session_id: 's1',
    status: 'In Progress',
  };
  for (const [createdAt, expected] of [
    [NOW - 300, NOW - 300],
    [new Date((NOW - 60) * 1000).toISOString(), NOW - 60],
    ['yesterday', undefined],
    [-5, undefined],
  ] as const) {
    const signed = signDiditWebhook(secret, { ...base, created_at: createdAt });
    const result = verifyDiditWebhook(Buffer.from(signed.body), signed.headers, { secret, nowSeconds: NOW });
    assert.equal(result.ok, true);
    if (result.ok) assert.equal(result.event.createdAt, expected, String(createdAt));
  }
  const simpleOnly = signDiditWebhook(secret, { ...base, created_at: NOW - 300 });
  const result = verifyDiditWebhook(
    Buffer.from(simpleOnly.body),
    { 'x-signature-simple': simpleOnly.headers['x-signature-simple'] },
    { secret, nowSeconds: NOW },
  );
  assert.equal(result.ok && result.event.createdAt, undefined, 'created_at is not covered by the simple signature');
});
