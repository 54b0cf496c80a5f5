/**
 * Header names an upstream could read as one the gateway sets: CGI-style servers (WSGI, Rack, PHP, CGI) turn both
 * `x-kyc-status` and `x_kyc_status` into HTTP_X_KYC_STATUS, so a client's underscore copy could stand in for the
 * gateway's own header. They are dropped (or refused, or allowed) per server.underscored_headers; names that are not
 * RFC 9110 tokens never get past the parser.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, startUpstream, rawRequest, statusOf } from '../../testing/harness.js';

const KYC = {
  providers: { sandbox: { type: 'sandbox', port: 0 } },
  workflows: {
    kyc: {
      provider: 'sandbox',
      workflow_id: '0b6f3f0e-6c1d-4c55-9d9e-0e6f2f1d2a3b',
      claims: { kyc_full: 'facts.status == "Approved"' },
    },
  },
};

const TWINS = [
  'x_kyc_status: approved',
  'X_Subject_Id: forged',
  'x_kycgate_assertion: forged',
  'X_Forwarded_For: 10.0.0.1',
  'x_consumer: admin',
  'x_auth_method: api-key',
  'X_Request_Id: forged',
];

async function setup(t: TestContext, underscored?: string) {
  const seen: string[][] = [];
  const upstream = await startUpstream((req, res) => {
    seen.push(req.rawHeaders);
    res.end('ok');
  });
  const gw = await startTestGateway({
    ...(underscored ? { server: { underscored_headers: underscored } } : {}),
    kyc: KYC,
    consumers: { billing: { scopes: ['payments:read'] } },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    routes: [
      { name: 'open', match: { prefix: '/open' }, upstream: 'app' },
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
      },
      {
        name: 'kyc',
        match: { prefix: '/kyc' },
        upstream: 'app',
        policies: [
          {
            'kyc-gate': {
              subject: { from: 'header', header: 'x-user-id', trust_unauthenticated_header: true },
              required_claims: ['kyc_full'],
            },
          },
        ],
      },
    ],
  });
  t.after(async () => {
    await gw.close();
    await upstream.close();
  });
  const send = () =>
    rawRequest(
      gw.port,
      `GET /open/x HTTP/1.1\r\nHost: a\r\n${TWINS.join('\r\n')}\r\nx_custom_thing: kept\r\nConnection: close\r\n\r\n`,
    );
  return { gw, upstream, seen, send };
}

function names(raw: readonly string[]): string[] {
  return raw.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

test('underscore spellings of injected and forwarding headers are dropped before forwarding; other underscored names pass', async (t) => {
  const { seen, send } = await setup(t);
  const answer = await send();
  assert.equal(statusOf(answer), 200);
  const got = names(seen[0]!);
  for (const twin of TWINS) assert.ok(!got.includes(twin.split(':')[0]!.toLowerCase()), `${twin} was dropped`);
  assert.ok(got.includes('x_custom_thing'), 'an underscored name that stands for no gateway header is forwarded');
  assert.ok(got.includes('x-forwarded-for') && got.includes('x-request-id'), "the gateway's own headers are there");
});

test('underscored_headers: refuse answers 400 ambiguous-request and forwards nothing', async (t) => {
  const { upstream, send } = await setup(t, 'refuse');
  const answer = await send();
  assert.equal(statusOf(answer), 400);
  assert.match(answer, /"type":"https:\/\/kycgate\.dev\/problems\/ambiguous-request"/);
  assert.match(answer, /reads as a header the gateway sets/);
  assert.equal(upstream.requests, 0);
});

test('underscored_headers: allow forwards them as sent', async (t) => {
  const { seen, send } = await setup(t, 'allow');
  assert.equal(statusOf(await send()), 200);
  assert.ok(names(seen[0]!).includes('x_kyc_status'));
});

test('a header name outside RFC 9110 token characters is refused with a request id, never forwarded', async (t) => {
  const { upstream, gw } = await setup(t);
  for (const line of ['x(kyc: 1', 'x-kyc@status: 1', 'x kyc: 1', 'x-kyc\x7fstatus: 1']) {
    const answer = await rawRequest(gw.port, `GET /open/x HTTP/1.1\r\nHost: a\r\n${line}\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(answer), 400, JSON.stringify(line));
    assert.match(answer, /x-request-id: [0-9a-f-]{36}\r\n/i, JSON.stringify(line));
    assert.match(answer, /"instance":"urn:kycgate:request:[0-9a-f-]{36}"/, JSON.stringify(line));
  }
  assert.equal(upstream.requests, 0);
});
