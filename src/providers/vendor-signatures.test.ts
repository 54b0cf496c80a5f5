/**
 * Webhook signatures of Veriff, Onfido, Sumsub and Persona, each scheme exactly as its provider documents it:
 * known-answer vectors computed with OpenSSL (test-fixtures/provider-webhook-vectors.json), then for every scheme
 * a good delivery, a tampered body, the wrong secret, a stale event and a replay (the same event id, so the inbox
 * acknowledges it as a duplicate; for Persona a replay after the tolerance is refused as stale).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookVerification } from './provider.js';
import { signVeriffWebhook, verifyVeriffWebhook } from './veriff/signature.js';
import { signOnfidoWebhook, verifyOnfidoWebhook } from './onfido/signature.js';
import {
  SUMSUB_DIGEST_ALGORITHMS,
  signSumsubWebhook,
  verifySumsubWebhook,
  type SumsubDigestAlgorithm,
} from './sumsub/signature.js';
import { parsePersonaSignature, signPersonaWebhook, verifyPersonaWebhook } from './persona/signature.js';

// Compiled to dist/src/providers/: three levels up is the repository root.
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const V = JSON.parse(readFileSync(path.resolve(repoRoot, 'test-fixtures/provider-webhook-vectors.json'), 'utf8'));
const NOW: number = V.now;
const AGE = { maxEventAgeSeconds: 3 * 86400, maxFutureSkewSeconds: 60 };

type Verify = (body: Buffer, headers: IncomingHttpHeaders, secret: string, now: number) => WebhookVerification;

interface Scheme {
  name: string;
  secret: string;
  body: string;
  headers: Record<string, string>;
  verify: Verify;
  sign: (secret: string, body: string, now: number) => Record<string, string>;
  /** A body whose event is older than the window, signed at `now`. */
  staleBody: string;
  sessionId: string;
}

const veriff: Verify = (b, h, secret, now) => verifyVeriffWebhook(b, h, { secret, nowSeconds: now, ...AGE });
const onfido: Verify = (b, h, token, now) => verifyOnfidoWebhook(b, h, { token, nowSeconds: now, ...AGE });
const sumsub: Verify = (b, h, secret, now) => verifySumsubWebhook(b, h, { secret, nowSeconds: now, ...AGE });
const persona: Verify = (b, h, secret, now) =>
  verifyPersonaWebhook(b, h, { secret, nowSeconds: now, toleranceSeconds: 300, maxFutureSkewSeconds: 60 });

const SCHEMES: Scheme[] = [
  {
    name: 'Veriff X-HMAC-SIGNATURE',
    secret: V.veriff.secret,
    body: V.veriff.body,
    headers: V.veriff.headers,
    verify: veriff,
    sign: (s, b) => signVeriffWebhook(s, 'api-key', b),
    staleBody: V.veriff.body.replace('2026-12-01T10:00:00.000Z', '2026-11-01T10:00:00.000Z'),
    sessionId: V.veriff.session_id,
  },
  {
    name: 'Onfido X-SHA2-Signature',
    secret: V.onfido.secret,
    body: V.onfido.body,
    headers: V.onfido.headers,
    verify: onfido,
    sign: (s, b) => signOnfidoWebhook(s, b),
    staleBody: V.onfido.body.replace('2026-12-01T10:00:00Z', '2026-11-01T10:00:00Z'),
    sessionId: V.onfido.session_id,
  },
  ...SUMSUB_DIGEST_ALGORITHMS.map(
    (alg): Scheme => ({
      name: `Sumsub X-Payload-Digest ${alg}`,
      secret: V.sumsub.secret,
      body: V.sumsub.body,
      headers: { 'x-payload-digest': V.sumsub.digests[alg], 'x-payload-digest-alg': alg },
      verify: sumsub,
      sign: (s, b) => signSumsubWebhook(s, b, alg),
      staleBody: V.sumsub.body.replace('2026-12-01 10:00:00.000', '2026-11-01 10:00:00.000'),
      sessionId: V.sumsub.session_id,
    }),
  ),
  {
    name: 'Persona Persona-Signature',
    secret: V.persona.secret,
    body: V.persona.body,
    headers: { 'persona-signature': `t=${V.persona.t},v1=${V.persona.v1}` },
    verify: persona,
    sign: (s, b, now) => signPersonaWebhook(s, b, now),
    staleBody: V.persona.body,
    sessionId: V.persona.session_id,
  },
];

for (const scheme of SCHEMES) {
  test(`${scheme.name}: known answer, tampered, wrong secret, stale, replayed`, () => {
    const body = Buffer.from(scheme.body);
    // Known answer: the OpenSSL-computed signature verifies, and kycgate's signer produces the same header.
    const good = scheme.verify(body, scheme.headers, scheme.secret, NOW);
    assert.ok(good.ok, JSON.stringify(good));
    assert.equal(good.event.sessionId, scheme.sessionId);
    assert.equal(good.event.state, 'approved');
    const persona = scheme.name.startsWith('Persona');
    const signedAt = persona ? V.persona.t : NOW;
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(scheme.sign(scheme.secret, scheme.body, signedAt)).filter(([k]) => k in scheme.headers),
      ),
      scheme.headers,
    );

    // Tampered: one byte of the body changed.
    const tampered = Buffer.from(scheme.body.replace('approved', 'approvee').replace('GREEN', 'GREEM'));
    assert.notDeepEqual(tampered, body);
    assert.deepEqual(scheme.verify(tampered, scheme.headers, scheme.secret, NOW), {
      ok: false,
      reason: 'invalid_signature',
    });

    // Wrong secret.
    assert.deepEqual(scheme.verify(body, scheme.headers, scheme.secret + 'x', NOW), {
      ok: false,
      reason: 'invalid_signature',
    });

    // Missing signature; a signature of the wrong length or not hex.
    assert.deepEqual(scheme.verify(body, {}, scheme.secret, NOW), { ok: false, reason: 'missing_signature' });
    const [name, value] = Object.entries(scheme.headers)[0]!;
    assert.deepEqual(scheme.verify(body, { ...scheme.headers, [name]: value.slice(0, -2) }, scheme.secret, NOW), {
      ok: false,
      reason: 'invalid_signature',
    });

    // Stale: correctly signed, but the event (or Persona's signed `t`) is outside the window.
    const staleNow = persona ? V.persona.t + 301 : NOW;
    const staleHeaders = persona ? scheme.headers : scheme.sign(scheme.secret, scheme.staleBody, NOW);
    assert.deepEqual(scheme.verify(Buffer.from(scheme.staleBody), staleHeaders, scheme.secret, staleNow), {
      ok: false,
      reason: 'stale',
    });
    // From the future beyond the allowed skew, too.
    const future = persona ? V.persona.t - 61 : NOW - 40 * 86400;
    assert.equal((scheme.verify(body, scheme.headers, scheme.secret, future) as { reason?: string }).reason, 'stale');

    // Replayed: the same delivery again is the same event (same id), which the inbox acknowledges as a duplicate.
    const again = scheme.verify(Buffer.from(scheme.body), scheme.headers, scheme.secret, NOW + 5);
    assert.ok(again.ok);
    assert.equal(again.event.eventId, good.event.eventId);
    // A different event never shares the id.
    const other = scheme.body
      .replace(scheme.sessionId, scheme.sessionId.slice(0, -1) + 'Z')
      .replace(V.persona.event_id, 'evt_another');
    const otherEvent = scheme.verify(
      Buffer.from(other),
      scheme.sign(scheme.secret, other, signedAt),
      scheme.secret,
      NOW,
    );
    assert.ok(otherEvent.ok);
    assert.notEqual(otherEvent.event.eventId, good.event.eventId);
  });
}

test('Sumsub: the algorithm header defaults to HMAC_SHA256_HEX; an unknown or refused algorithm is never downgraded', () => {
  const body = Buffer.from(V.sumsub.body);
  const digests = V.sumsub.digests as Record<SumsubDigestAlgorithm, string>;
  const verify = (headers: IncomingHttpHeaders, accept?: SumsubDigestAlgorithm[]) =>
    verifySumsubWebhook(body, headers, { secret: V.sumsub.secret, nowSeconds: NOW, ...AGE, accept });
  assert.ok(verify({ 'x-payload-digest': digests.HMAC_SHA256_HEX }).ok, 'absent algorithm header means SHA-256');
  assert.equal(verify({ 'x-payload-digest': digests.HMAC_SHA512_HEX }).ok, false, 'SHA-512 digest without its header');
  assert.equal(
    verify({ 'x-payload-digest': digests.HMAC_SHA1_HEX, 'x-payload-digest-alg': 'HMAC_SHA256_HEX' }).ok,
    false,
  );
  assert.equal(
    verify({ 'x-payload-digest': digests.HMAC_SHA256_HEX, 'x-payload-digest-alg': 'HMAC_MD5_HEX' }).ok,
    false,
  );
  const sha1 = { 'x-payload-digest': digests.HMAC_SHA1_HEX, 'x-payload-digest-alg': 'HMAC_SHA1_HEX' };
  assert.ok(verify(sha1).ok);
  assert.deepEqual(verify(sha1, ['HMAC_SHA256_HEX', 'HMAC_SHA512_HEX']), { ok: false, reason: 'invalid_signature' });
  // Upper-case hex is the same digest.
  assert.ok(verify({ 'x-payload-digest': digests.HMAC_SHA256_HEX.toUpperCase() }).ok);
});

test('Persona: two signatures during secret rotation, either matching; malformed headers refused', () => {
  const body = Buffer.from(V.persona.body);
  const now = V.persona.t + 10;
  const verify = (header: string, secret = V.persona.secret) =>
    verifyPersonaWebhook(
      body,
      { 'persona-signature': header },
      { secret, nowSeconds: now, toleranceSeconds: 300, maxFutureSkewSeconds: 60 },
    );
  const ours = `t=${V.persona.t},v1=${V.persona.v1}`;
  const theirs = `t=${V.persona.t},v1=${V.persona.v1_other_secret}`;
  // Rotation: the header carries one pair per secret, space-separated; the order does not matter.
  assert.ok(verify(`${theirs} ${ours}`).ok);
  assert.ok(verify(`${ours} ${theirs}`).ok);
  assert.ok(verify(`${theirs} ${ours}`, 'wbhsec_previous_secret').ok, 'the other secret verifies its own pair');
  assert.equal(verify(theirs).ok, false);
  const verified = verify(ours);
  assert.ok(verified.ok);
  assert.equal(verified.event.eventId, V.persona.event_id);
  assert.equal(verified.event.createdAt, Date.parse('2026-12-01T10:00:00.000Z') / 1000);
  // The signed `t` is what the signature covers: moving it breaks the signature.
  assert.equal(verify(`t=${V.persona.t + 1},v1=${V.persona.v1}`).ok, false);
  for (const bad of [
    'v1=' + V.persona.v1,
    `t=${V.persona.t}`,
    `t=x,v1=${V.persona.v1}`,
    `t=${V.persona.t},t=1,v1=${V.persona.v1}`,
  ])
    assert.deepEqual(verify(bad), { ok: false, reason: 'invalid_signature' }, bad);
  assert.equal(parsePersonaSignature(`${ours} ${theirs}`)!.length, 2);
});

test('Veriff event webhooks and Onfido task events are progress only: ordered before any decision', () => {
  const secret = 'veriff-shared-secret';
  const body = JSON.stringify({
    id: 'f04bdb47-d3be-4b28-b028-a652feb060b5',
    attemptId: 'a',
    feature: 'selfid',
    code: 7002,
    action: 'submitted',
    vendorData: 'sub_x',
  });
  const v = verifyVeriffWebhook(Buffer.from(body), signVeriffWebhook(secret, 'k', body), {
    secret,
    nowSeconds: NOW,
    ...AGE,
  });
  assert.ok(v.ok);
  assert.equal(v.event.state, 'in_review');
  assert.equal(v.event.createdAt, 0);
  assert.equal(v.event.decision, undefined);
  const task = JSON.stringify({
    payload: {
      resource_type: 'workflow_task',
      action: 'workflow_task.completed',
      object: { id: 'profile_1', workflow_run_id: 'run-1' },
    },
  });
  const o = verifyOnfidoWebhook(Buffer.from(task), signOnfidoWebhook('tok', task), {
    token: 'tok',
    nowSeconds: NOW,
    ...AGE,
  });
  assert.ok(o.ok);
  assert.equal(o.event.sessionId, 'run-1');
  assert.equal(o.event.createdAt, 0);
  const other = JSON.stringify({ payload: { resource_type: 'check', action: 'check.completed', object: { id: 'c' } } });
  assert.deepEqual(
    verifyOnfidoWebhook(Buffer.from(other), signOnfidoWebhook('tok', other), { token: 'tok', nowSeconds: NOW, ...AGE }),
    {
      ok: false,
      reason: 'malformed',
    },
  );
});
