/**
 * Every adapter's whole loop through the sandbox speaking its provider's dialect, over real sockets: a gated API
 * call is refused with the provider's hosted URL; the user decides on the hosted page; the sandbox delivers the
 * webhook signed as that provider signs it; the gateway verifies it with the adapter, fetches the result from the
 * provider's result API (signed requests where the provider requires them), maps it to claims (age and document
 * expiry from the provider's own fields) and lets the same call through. A replay of the delivery is a duplicate;
 * a declined user stays out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { httpRequest, startTestGateway } from '../../../../testing/harness.js';
import { eventually, kycTestbed } from '../../../../testing/kyc-testbed.js';
import type { Store } from '../../../store/store.js';
import type { DialectName } from './dialect.js';

const WORKFLOW_IDS: Record<Exclude<DialectName, 'didit'>, string> = {
  veriff: 'veriff-integration',
  onfido: '3f1c2d4e-5b6a-4c7d-8e9f-0a1b2c3d4e5f',
  sumsub: 'basic-kyc-level',
  persona: 'itmpl_Ab12Cd34Ef56Gh78',
};

/** A relay in front of the gateway's webhook route that keeps every delivery, so a test can replay one. */
async function recordingRelay(target: () => string) {
  const deliveries: Array<{ path: string; headers: Record<string, string>; body: Buffer }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      const delivery = { path: req.url ?? '/', headers, body: Buffer.concat(chunks) };
      deliveries.push(delivery);
      httpRequest(target() + delivery.path, { method: 'POST', headers, body: delivery.body }).then(
        (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body),
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    deliveries,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function decide(
  verificationUrl: string,
  decision: 'approved' | 'declined',
  dateOfBirth = '1990-05-17',
): Promise<void> {
  let pageUrl = verificationUrl;
  let page = await httpRequest(pageUrl);
  if (page.status === 303) {
    // Persona's hosted flow is addressed by inquiry id and leads to the page.
    pageUrl = new URL(page.headers.location!, verificationUrl).toString();
    page = await httpRequest(pageUrl);
  }
  assert.equal(page.status, 200, page.body);
  const form = new URLSearchParams({ first_name: 'Ana', last_name: 'Ruiz', date_of_birth: dateOfBirth, decision });
  const done = await httpRequest(pageUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  assert.equal(done.status, 200, done.body);
}

for (const dialect of ['veriff', 'onfido', 'sumsub', 'persona'] as const) {
  test(`${dialect}: challenge, hosted page, signed webhook, result fetch, claims; a replay is a duplicate`, async (t) => {
    const bed = await kycTestbed(t);
    let gatewayUrl = '';
    const relay = await recordingRelay(() => gatewayUrl);
    t.after(() => relay.close());
    const config = bed.config(
      { required_claims: ['kyc_full', 'adult', 'document_valid'] },
      {
        kyc: {
          providers: {
            idv: { type: 'sandbox', dialect, webhook_url: `${relay.url}/webhooks/idv`, retry_delays_ms: [50, 50] },
          },
          workflows: {
            full: {
              provider: 'idv',
              workflow_id: WORKFLOW_IDS[dialect],
              claims: {
                kyc_full: 'true',
                adult: 'facts.age >= 18',
                document_valid: 'facts.document_expires > "2027-01-01"',
                [`from_${dialect}`]: `facts.provider == "${dialect}"`,
              },
            },
          },
        },
      },
    );
    const gw = await startTestGateway(config);
    t.after(() => gw.close());
    gatewayUrl = gw.url;
    const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });

    const first = await httpRequest(`${gw.url}/api/x`, as('ana'));
    assert.equal(first.status, 403, first.body);
    const challenge = JSON.parse(first.body) as { verification_url: string; session_id: string };
    assert.match(challenge.verification_url, /^http:\/\/127\.0\.0\.1:\d+\/verify/);
    await decide(challenge.verification_url, 'approved');

    assert.ok(
      await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('ana'))).status === 200, 10_000),
      'the approved user passes',
    );
    const passed = JSON.parse((await httpRequest(`${gw.url}/api/x`, as('ana'))).body) as {
      headers: Record<string, string>;
    };
    assert.deepEqual(passed.headers['x-kyc-claims']!.split(/[ ,]+/).sort(), [
      'adult',
      'document_valid',
      `from_${dialect}`,
      'kyc_full',
    ]);

    const store = gw.gateway.services.get<Store>('store');
    const applied = await store.query<{ event_id: string; outcome: string }>(
      "SELECT event_id, outcome FROM kyc_webhook_events WHERE provider = 'idv' AND outcome = 'applied'",
    );
    assert.ok(applied.length >= 1, 'the signed webhook was verified and applied');
    const decisive = relay.deliveries.at(-1)!;
    const replay = await httpRequest(`${gw.url}${decisive.path}`, {
      method: 'POST',
      headers: decisive.headers,
      body: decisive.body,
    });
    assert.equal(replay.status, 200);
    assert.equal(JSON.parse(replay.body).status, 'duplicate', 'a replayed delivery is not applied twice');
    const tampered = Buffer.from(
      decisive.body.toString('utf8').replace(/approved|GREEN/, (m) => (m === 'GREEN' ? 'GREEM' : 'approvee')),
    );
    const refused = await httpRequest(`${gw.url}${decisive.path}`, {
      method: 'POST',
      headers: decisive.headers,
      body: tampered,
    });
    assert.equal(refused.status, 401);

    // A declined user (document expired) stays out, with the provider's status on record.
    const second = JSON.parse((await httpRequest(`${gw.url}/api/x`, as('ben'))).body) as { verification_url: string };
    await decide(second.verification_url, 'declined');
    assert.ok(
      await eventually(async () => {
        const rows = await store.query<{ state: string }>(
          "SELECT state FROM kyc_verifications WHERE state = 'declined'",
        );
        return rows.length === 1;
      }, 10_000),
      'the decline is recorded',
    );
    assert.equal((await httpRequest(`${gw.url}/api/x`, as('ben'))).status, 403);
  });
}
