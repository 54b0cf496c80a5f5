/**
 * gRPC through the gateway end to end: a real @grpc/grpc-js client on the TLS listener (ALPN h2), a real grpc-js
 * server as the upstream (h2c), with API-key authentication, a scope check, the KYC gate and a rate limit. Unary,
 * server streaming, client streaming and bidi calls; upstream statuses and trailers relayed; gateway refusals as
 * grpc-status codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startTestGateway } from '../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../testing/kyc-testbed.js';
import { testCertificate } from '../../testing/h2.js';
import type { AuthService } from '../auth/subsystem.js';

type Msg = Record<string, unknown>;
const json = {
  requestSerialize: (v: Msg) => Buffer.from(JSON.stringify(v)),
  requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as Msg,
  responseSerialize: (v: Msg) => Buffer.from(JSON.stringify(v)),
  responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as Msg,
};
const SERVICE = {
  unary: { path: '/kyc.Orders/Get', requestStream: false, responseStream: false, ...json },
  list: { path: '/kyc.Orders/List', requestStream: false, responseStream: true, ...json },
  upload: { path: '/kyc.Orders/Upload', requestStream: true, responseStream: false, ...json },
  chat: { path: '/kyc.Orders/Chat', requestStream: true, responseStream: true, ...json },
} satisfies grpc.ServiceDefinition;

const Client = grpc.makeGenericClientConstructor(SERVICE, 'Orders') as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => grpc.Client & Record<string, (...args: unknown[]) => any>;

/** The upstream: echoes what the gateway told it (KYC status, consumer) and streams in every shape. */
async function startGrpcServer(): Promise<{ port: number; calls: number; server: grpc.Server }> {
  const state = { port: 0, calls: 0, server: new grpc.Server() };
  const seen = (md: grpc.Metadata) => ({
    kyc: md.get('x-kyc-status')[0],
    consumer: md.get('x-consumer')[0] ?? md.get('x-consumer-id')[0],
    apiKey: md.get('x-api-key').length,
  });
  state.server.addService(SERVICE, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      state.calls++;
      if (call.request.id === 'missing') {
        const md = new grpc.Metadata();
        md.set('order-hint', 'try-42');
        return cb({ code: grpc.status.NOT_FOUND, details: 'no order "missing"', metadata: md });
      }
      const trailer = new grpc.Metadata();
      trailer.set('x-served-by', 'orders-1');
      cb(null, { id: call.request.id, ...seen(call.metadata) }, trailer);
    },
    list: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      state.calls++;
      for (let i = 0; i < Number(call.request.count); i++) call.write({ n: i });
      call.end();
    },
    upload: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      state.calls++;
      let total = 0;
      call.on('data', (m: Msg) => {
        total += Number(m.n);
      });
      call.on('end', () => cb(null, { total }));
    },
    chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      state.calls++;
      call.on('data', (m: Msg) => call.write({ echo: m.text }));
      call.on('end', () => call.end());
    },
  });
  state.port = await new Promise<number>((resolve, reject) =>
    state.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  return state;
}

function unary(client: any, request: Msg, md: grpc.Metadata) {
  return new Promise<{ err: grpc.ServiceError | null; value?: Msg; trailers?: grpc.Metadata }>((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client.unary(request, md, (err: grpc.ServiceError | null, value?: Msg) =>
      setImmediate(() => resolve({ err, value, trailers: trailers ?? err?.metadata })),
    );
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
    });
  });
}

test('gRPC through the gateway: every call shape, trailers relayed, API key, scope, KYC gate and rate limit as grpc-status', async (t) => {
  const bed = await kycTestbed(t);
  const cert = await testCertificate(t);
  const upstream = await startGrpcServer();
  t.after(() => upstream.server.forceShutdown());
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        listeners: [
          { name: 'plain', port: 0 },
          { name: 'secure', port: 0, tls: { cert: cert.cert, key: cert.key } },
        ],
        consumers: { shop: { scopes: ['orders'] }, viewer: { scopes: ['other'] } },
        upstreams: {
          api: { targets: [{ url: bed.upstream.url }] },
          orders: { targets: [{ url: `http://127.0.0.1:${upstream.port}` }], http2: true },
        },
        routes: [
          {
            name: 'orders',
            match: { prefix: '/kyc.Orders/' },
            upstream: 'orders',
            policies: [
              { authenticate: { methods: [{ 'api-key': {} }] } },
              { authorize: { scopes: { all_of: ['orders'] } } },
              { 'rate-limit': { limits: [{ rate: 1000, per: 'minute', key: ['consumer'] }] } },
              { 'kyc-gate': { subject: { from: 'header', header: 'x-user-id' }, required_claims: ['kyc_full'] } },
            ],
          },
        ],
      },
    ),
  );
  t.after(() => gw.close());
  const auth = gw.gateway.services.get<AuthService>('auth');
  const { key } = await auth.createKey({ consumer: 'shop' });
  const { key: viewerKey } = await auth.createKey({ consumer: 'viewer' });
  const client = new Client(
    `127.0.0.1:${new URL(gw.urlOf('secure')).port}`,
    grpc.credentials.createSsl(Buffer.from(cert.pem)),
    { 'grpc.ssl_target_name_override': 'localhost' },
  );
  t.after(() => client.close());
  const md = (entries: Record<string, string>) => {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(entries)) m.set(k, v);
    return m;
  };

  const anonymous = await unary(client, { id: '1' }, md({}));
  assert.equal(anonymous.err?.code, grpc.status.UNAUTHENTICATED);
  assert.match(String(anonymous.err?.metadata.get('x-request-id')[0]), /^[0-9a-f-]{36}$/);
  assert.equal(anonymous.err?.metadata.get('kycgate-problem-type')[0], 'https://kycgate.dev/problems/unauthenticated');

  const wrongScope = await unary(client, { id: '1' }, md({ 'x-api-key': viewerKey, 'x-user-id': 'alice' }));
  assert.equal(wrongScope.err?.code, grpc.status.PERMISSION_DENIED);

  const unverified = await unary(client, { id: '1' }, md({ 'x-api-key': key, 'x-user-id': 'alice' }));
  assert.equal(unverified.err?.code, grpc.status.PERMISSION_DENIED);
  assert.match(unverified.err!.details, /verif/i);
  assert.equal(unverified.err?.metadata.get('kycgate-problem-type')[0], 'https://kycgate.dev/problems/kyc-required');
  assert.equal(upstream.calls, 0, 'nothing reached the upstream');

  // The subject completes verification (the provider's webhook), then every call shape goes through.
  const [sessionId] = [...bed.provider.sessions.keys()];
  assert.equal((await postWebhook(gw.url, bed.provider.webhook(sessionId!, 'Approved'))).status, 200);
  const as = md({ 'x-api-key': key, 'x-user-id': 'alice', 'x-kyc-status': 'forged' });
  assert.ok(
    await eventually(async () => (await unary(client, { id: '7' }, as)).err === null, 5000),
    'approved subject passes',
  );

  const ok = await unary(client, { id: '7' }, as);
  assert.equal(ok.value?.id, '7');
  assert.equal(ok.value?.kyc, 'verified', 'the gate sets the KYC status, the forged one is gone');
  assert.equal(ok.trailers?.get('x-served-by')[0], 'orders-1', 'trailers relayed');

  const missing = await unary(client, { id: 'missing' }, as);
  assert.equal(missing.err?.code, grpc.status.NOT_FOUND, "the upstream's status");
  assert.equal(missing.err?.details, 'no order "missing"');
  assert.equal(missing.err?.metadata.get('order-hint')[0], 'try-42');

  const listed: Msg[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.list({ count: 50 }, as);
    call.on('data', (m: Msg) => listed.push(m));
    call.on('error', reject);
    call.on('end', () => resolve());
  });
  assert.deepEqual(
    listed.map((m) => m.n),
    Array.from({ length: 50 }, (_, i) => i),
  );

  const uploaded = await new Promise<Msg>((resolve, reject) => {
    const call = client.upload(as, (err: grpc.ServiceError | null, value: Msg) => (err ? reject(err) : resolve(value)));
    for (let i = 1; i <= 100; i++) call.write({ n: i });
    call.end();
  });
  assert.equal(uploaded.total, 5050);

  // Bidi: each answer comes back before the next message is sent (streaming both ways at once).
  const chat = client.chat(as);
  const replies: string[] = [];
  for (const text of ['a', 'b', 'c']) {
    const reply = new Promise<Msg>((resolve) => chat.once('data', resolve));
    chat.write({ text });
    replies.push(String((await reply).echo));
  }
  const ended = new Promise<void>((resolve) => chat.on('status', () => resolve()));
  chat.end();
  await ended;
  assert.deepEqual(replies, ['a', 'b', 'c']);
});

test('gateway errors on gRPC calls map to gRPC status codes: rate limit, no route, unreachable upstream', async (t) => {
  const cert = await testCertificate(t);
  const gw = await startTestGateway({
    listeners: [{ name: 'h2c', port: 0, http2: 'h2c' }],
    upstreams: { gone: { targets: [{ url: 'http://127.0.0.1:1' }], http2: true } },
    routes: [
      {
        name: 'limited',
        match: { prefix: '/kyc.Orders/' },
        upstream: 'gone',
        policies: [{ 'rate-limit': { limits: [{ rate: 1, per: 'minute', key: ['ip'] }] } }],
      },
    ],
  });
  t.after(() => gw.close());
  void cert;
  const client = new Client(`127.0.0.1:${new URL(gw.url).port}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const first = await unary(client, { id: '1' }, new grpc.Metadata());
  assert.equal(first.err?.code, grpc.status.UNAVAILABLE, 'upstream unreachable: 502 is UNAVAILABLE');
  const second = await unary(client, { id: '1' }, new grpc.Metadata());
  assert.equal(second.err?.code, grpc.status.RESOURCE_EXHAUSTED, '429 is RESOURCE_EXHAUSTED');
  assert.ok(Number(second.err?.metadata.get('retry-after')[0]) > 0);

  const Other = grpc.makeGenericClientConstructor(
    { get: { ...SERVICE.unary, path: '/kyc.Unknown/Get' } },
    'Unknown',
  ) as unknown as new (
    a: string,
    c: grpc.ChannelCredentials,
  ) => any;
  const other = new Other(`127.0.0.1:${new URL(gw.url).port}`, grpc.credentials.createInsecure());
  t.after(() => other.close());
  const unknown = await new Promise<grpc.ServiceError | null>((resolve) =>
    other.get({}, new grpc.Metadata(), (err: grpc.ServiceError | null) => resolve(err)),
  );
  assert.equal(unknown?.code, grpc.status.UNIMPLEMENTED, 'no route: 404 is UNIMPLEMENTED');
});
