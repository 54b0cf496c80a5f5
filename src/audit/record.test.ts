import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  canonicalOf,
  LineBuffer,
  RecordIds,
  serialise,
  serialiseInto,
  scrub,
  traceIdOf,
  type AuditEntry,
} from './record.js';

/** The record object a line must equal: keys in the documented order, absent fields omitted. */
function reference(entry: AuditEntry, seq: number, id: string, prev: string): string {
  const r: Record<string, unknown> = {
    v: 1,
    seq,
    id,
    time: new Date(entry.time).toISOString(),
    kind: entry.kind,
    type: entry.type,
  };
  const pairs: Array<[string, unknown]> = [
    ['request_id', entry.requestId],
    ['trace_id', traceIdOf(entry.traceparent)],
    ['listener', entry.listener],
    ['route', entry.route],
    ['method', entry.method],
    ['path', entry.path],
    ['client_ip', entry.clientIp],
    ['consumer', entry.consumer],
    ['subject', entry.subject],
    ['auth_method', entry.authMethod],
    ['credential_id', entry.credentialId],
    ['spiffe_id', entry.spiffeId],
    ['decision', entry.decision],
    ['kyc', entry.kyc],
    ['stale', entry.stale],
    ['upstream', entry.upstream],
    ['status', entry.status],
    ['latency_ms', entry.latencyMs === undefined ? undefined : Math.round(entry.latencyMs * 1000) / 1000],
    ['problem', entry.problem],
    ['aborted', entry.aborted ? true : undefined],
    ['outcome', entry.outcome],
    ['request_headers', entry.requestHeaders],
    ['response_headers', entry.responseHeaders],
    ['data', entry.data === undefined ? undefined : scrub(entry.data)],
  ];
  for (const [k, v] of pairs) if (v !== undefined) r[k] = v;
  r.prev = prev;
  return JSON.stringify(r);
}

test('a journal line is the canonical JSON of its record, whatever the field values contain', () => {
  const awkward = [
    'plain',
    'quote " and \\ backslash',
    'tab\tnewline\ncontrol\u0001',
    'ünïcödé ✓',
    'lone \ud800 surrogate',
    'del\u007f',
    '',
    '/a b/%2F?x=1',
  ];
  const passes = awkward.map((rule) => Object.freeze({ outcome: 'allow', policy: 'kyc-gate', rule }));
  const ids = new RecordIds();
  let prev = '0'.repeat(64);
  // The journal's batch path: the same lines, written into a buffer that starts too small and has to grow.
  const batch = new LineBuffer(64);
  const expected: string[] = [];
  for (let i = 0; i < awkward.length * 3; i++) {
    const s = awkward[i % awkward.length]!;
    const entry: AuditEntry = {
      kind: i % 3 === 0 ? 'event' : 'request',
      time: 1_760_000_000_000 + i * 7,
      type: i % 3 === 0 ? 'kyc.decision' : 'http.request',
      requestId: `req-${s}`,
      traceparent: i % 2 === 0 ? '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' : undefined,
      listener: 'public',
      route: s,
      method: 'GET',
      path: `/p/${s}`,
      clientIp: '2001:db8::1',
      consumer: i % 2 === 0 ? s : undefined,
      subject: i % 2 === 0 ? 'sub_abc' : s,
      authMethod: i % 3 === 0 ? 'api-key' : s,
      credentialId: s,
      spiffeId: i % 2 === 0 ? undefined : `spiffe://example.org/${s}`,
      // Frozen decisions (a KYC rule's constant pass) are serialised once and remembered; fresh ones every time.
      decision: i % 2 === 0 ? passes[i % passes.length]! : { outcome: 'allow', policy: 'kyc-gate', rule: s },
      kyc: i % 4 === 1 ? passes[(i + 1) % passes.length] : undefined,
      upstream: i % 3 === 0 ? 'http://10.0.0.1:8080' : s,
      stale: i % 5 === 0 ? ['api_key', 'kyc_subject'] : undefined,
      status: 200 + i,
      latencyMs: 1.23456 * i,
      aborted: i % 4 === 0,
      outcome: i % 3 === 0 ? s : undefined,
      requestHeaders: i % 2 === 0 ? { 'user-agent': s } : undefined,
      data: i % 3 === 0 ? { subject: 'sub_abc', api_key: 'kg_secret', nested: { s } } : undefined,
    };
    const id = ids.next(entry.time, i + 1);
    const { line, hash } = serialise(entry, i + 1, id, prev);
    const canonical = reference(entry, i + 1, id, prev);
    const parsed = canonicalOf(line);
    assert.ok(parsed, 'the line ends in its hash');
    assert.equal(parsed.canonical, canonical);
    assert.equal(hash, createHash('sha256').update(canonical).digest('hex'));
    assert.equal(parsed.hash, hash);
    assert.doesNotMatch(line, /kg_secret/);
    assert.equal(serialiseInto(batch, entry, i + 1, id, prev), hash, 'the batch path hashes the same bytes');
    expected.push(line + '\n');
    prev = hash;
  }
  assert.equal(batch.view().toString('utf8'), expected.join(''));
  assert.ok(batch.view().equals(Buffer.from(expected.join(''), 'utf8')), 'byte for byte');
  batch.reset();
  assert.equal(batch.view().length, 0);
});

test('record ids are unique and sortable by time within and across milliseconds', () => {
  const ids = new RecordIds();
  const made = [ids.next(1000, 1), ids.next(1000, 2), ids.next(1001, 3), ids.next(1001, 4), ids.next(5000, 5)];
  assert.equal(new Set(made).size, made.length);
  assert.deepEqual([...made].sort(), made);
  assert.ok(made.every((id) => id.length === 26));
});

test('a record repeats no text of the record before it that could have changed since', () => {
  const decision = { outcome: 'allow', policy: 'kyc-gate', rule: 'default' };
  const stale = ['api_key'];
  const entry: AuditEntry = {
    kind: 'request',
    time: 1_760_000_000_000,
    type: 'http.request',
    requestId: 'r1',
    listener: 'public',
    route: 'orders',
    method: 'GET',
    consumer: 'shop',
    subject: 'sub_abc',
    decision,
    stale,
    upstream: 'http://10.0.0.1',
    status: 200,
  };
  const first = serialise(entry, 1, '0000000000AAAAAA0000000001', '0'.repeat(64));
  assert.match(first.line, /"decision":\{"outcome":"allow".*"stale":\["api_key"\]/);
  // The same objects, changed in place: the next record says what they hold now.
  decision.outcome = 'deny';
  stale.push('kyc_subject');
  const second = serialise(entry, 2, '0000000000AAAAAA0000000002', first.hash);
  assert.match(second.line, /"decision":\{"outcome":"deny".*"stale":\["api_key","kyc_subject"\]/);
  assert.equal(canonicalOf(second.line)!.canonical, reference(entry, 2, '0000000000AAAAAA0000000002', first.hash));
});
