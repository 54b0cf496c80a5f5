import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';
import type { GatewayEvent } from '../../pipeline/events.js';
import { ConfigError } from '../../config/load.js';
import type { AuthService } from '../../auth/subsystem.js';
import type { FaultRegistry } from '../../resilience/faults/registry.js';

type Upstream = Awaited<ReturnType<typeof startUpstream>>;

function config(upstream: Upstream, armed: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    upstreams: { backend: { targets: [{ url: upstream.url }] } },
    consumers: { partner: {} },
    defaults: { policies: [{ 'fault-injection': {} }] },
    routes: [
      { name: 'orders', match: { prefix: '/orders' }, upstream: 'backend' },
      { name: 'payments', match: { prefix: '/payments' }, upstream: 'backend', critical: true, function: 'payments' },
      {
        name: 'partner',
        match: { prefix: '/partner' },
        upstream: 'backend',
        policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
      },
    ],
    resilience: { faults: { enabled: true, armed } },
    ...extra,
  };
}

const inAMinute = () => new Date(Date.now() + 60_000).toISOString();

function collect(
  gw: { gateway: { services: { events: { on(t: string, f: (e: GatewayEvent) => void): () => void } } } },
  type: string,
) {
  const seen: GatewayEvent[] = [];
  gw.gateway.services.events.on(type, (e) => seen.push(e));
  return seen;
}

async function metric(adminUrl: string, line: RegExp): Promise<number> {
  const text = (await httpRequest(`${adminUrl}/metrics`)).body;
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
}

test('fault-injection: an abort answers as the outage it stands for, on record, and other routes pass', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(
    config(upstream, [
      { name: 'orders-down', route: 'orders', abort: { status: 503 }, until: inAMinute(), reason: 'drill' },
    ]),
  );
  t.after(() => gw.close());
  const injected = collect(gw, 'fault.injected');

  const r = await httpRequest(`${gw.url}/orders/1`);
  assert.equal(r.status, 503);
  assert.match(String(r.headers['content-type']), /application\/problem\+json/);
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.match(String(body.type), /service-unavailable$/);
  assert.equal(body.instance, `urn:kycgate:request:${String(r.headers['x-request-id'])}`);
  assert.equal(r.headers['retry-after'], '1');
  assert.equal(upstream.requests, 0, 'the upstream never saw the request');

  const other = await httpRequest(`${gw.url}/payments/1`);
  assert.equal(other.status, 200, 'a fault on one route leaves the others alone');

  assert.equal(injected.length, 1);
  assert.equal(injected[0]!.outcome, 'abort');
  assert.equal(injected[0]!.data?.fault, 'config:orders-down');
  assert.equal(
    await metric(gw.adminUrl, /kycgate_faults_injected_total\{kind="route",target="orders",effect="abort"\} (\d+)/),
    1,
  );
  assert.equal(await metric(gw.adminUrl, /kycgate_faults_armed\{kind="route"\} (\d+)/), 1);
});

test('fault-injection: a status that stands for no outage answers fault-injected with that status', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(
    config(upstream, [{ route: 'orders', abort: { status: 429 }, until: inAMinute() }]),
  );
  t.after(() => gw.close());
  const r = await httpRequest(`${gw.url}/orders`);
  assert.equal(r.status, 429);
  assert.match(String((JSON.parse(r.body) as { type: string }).type), /fault-injected$/);
});

test('fault-injection: a header or consumer match limits the fault to the requests named', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(
    config(upstream, [
      { route: 'orders', abort: { status: 502 }, header: { name: 'X-Chaos', value: 'on' }, until: inAMinute() },
      { route: 'partner', abort: { status: 504 }, consumers: ['partner'], until: inAMinute() },
    ]),
  );
  t.after(() => gw.close());
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 200);
  assert.equal((await httpRequest(`${gw.url}/orders`, { headers: { 'x-chaos': 'off' } })).status, 200);
  const hit = await httpRequest(`${gw.url}/orders`, { headers: { 'x-chaos': 'on' } });
  assert.equal(hit.status, 502);
  assert.match(hit.body, /bad-gateway/);
  // Authentication decides first: no key is a 401, the partner's key meets the fault.
  assert.equal((await httpRequest(`${gw.url}/partner`)).status, 401);
  const { key } = await gw.gateway.services.get<AuthService>('auth').createKey({ consumer: 'partner' });
  const partner = await httpRequest(`${gw.url}/partner`, { headers: { 'x-api-key': key } });
  assert.equal(partner.status, 504);
});

test('fault-injection: a delay holds the request, then it goes on', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(config(upstream, [{ route: 'orders', delay: { ms: 400 }, until: inAMinute() }]));
  t.after(() => gw.close());
  const started = performance.now();
  const r = await httpRequest(`${gw.url}/orders`);
  const took = performance.now() - started;
  assert.equal(r.status, 200);
  assert.ok(took >= 390, `held ${took.toFixed(0)} ms`);
  assert.equal(upstream.requests, 1);
});

test('fault-injection: percent 50 aborts about half of 200 requests', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(
    config(upstream, [{ route: 'orders', abort: { status: 503, percent: 50 }, until: inAMinute() }]),
  );
  t.after(() => gw.close());
  let aborted = 0;
  for (let i = 0; i < 200; i++) if ((await httpRequest(`${gw.url}/orders`)).status === 503) aborted++;
  // Binomial(200, 0.5): outside 60..140 has a probability below 1e-8.
  assert.ok(aborted > 60 && aborted < 140, `${aborted} of 200 aborted`);
});

test('fault-injection: a reset closes the connection without an answer', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(
    config(upstream, [{ route: 'orders', abort: { reset: true }, until: inAMinute() }]),
  );
  t.after(() => gw.close());
  await assert.rejects(httpRequest(`${gw.url}/orders`), /socket hang up|ECONNRESET/);
  assert.equal(upstream.requests, 0);
});

test('fault-injection: a critical route is never faulted without allow_critical, and the refusal is on record', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  // An upstream fault reaches every route to the group; the critical one is spared.
  const gw = await startTestGateway(
    config(upstream, [{ upstream: 'backend', abort: { status: 503 }, until: inAMinute() }]),
  );
  t.after(() => gw.close());
  const refused = collect(gw, 'fault.refused');
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 503);
  for (let i = 0; i < 20; i++) assert.equal((await httpRequest(`${gw.url}/payments`)).status, 200);
  assert.equal(refused.length, 20);
  assert.equal(refused[0]!.outcome, 'critical_route');
  assert.equal(await metric(gw.adminUrl, /kycgate_faults_refused_total\{route="payments"\} (\d+)/), 20);

  const allowed = await startTestGateway(
    config(upstream, [{ upstream: 'backend', abort: { status: 503 }, allow_critical: true, until: inAMinute() }]),
  );
  t.after(() => allowed.close());
  assert.equal((await httpRequest(`${allowed.url}/payments`)).status, 503, 'with the override it is injected');
});

test('fault-injection: a configuration that would fault a critical route, an unknown target or with injection off is refused', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const refusals = async (armed: unknown[], extra: Record<string, unknown> = {}) => {
    try {
      const gw = await startTestGateway(config(upstream, armed, extra));
      await gw.close();
      return '';
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.message;
    }
  };
  assert.match(
    await refusals([{ route: 'payments', abort: { status: 503 }, until: inAMinute() }]),
    /payments.*critical/,
  );
  assert.match(
    await refusals([{ route: 'nope', abort: { status: 503 }, until: inAMinute() }]),
    /no route named "nope"/,
  );
  assert.match(
    await refusals([{ provider: 'nope', abort: { status: 503 }, until: inAMinute() }]),
    /no verification provider/,
  );
  assert.match(
    await refusals([
      { route: 'orders', delay: { ms: 10 }, until: new Date(Date.now() + 3 * 86_400_000).toISOString() },
    ]),
    /max_duration_s/,
  );
  assert.match(await refusals([{ route: 'orders', until: inAMinute() }]), /nothing to inject/);
  const off = await refusals([{ route: 'orders', abort: { status: 503 }, until: inAMinute() }], {
    resilience: {
      faults: { enabled: false, armed: [{ route: 'orders', abort: { status: 503 }, until: inAMinute() }] },
    },
  });
  assert.match(off, /fault injection is off/);
  const noPolicy = await refusals([{ route: 'orders', abort: { status: 503 }, until: inAMinute() }], { defaults: {} });
  assert.match(noPolicy, /does not run the fault-injection policy/);
});

test('fault-injection: a fault stops at its until, on record as disarmed', async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  t.after(() => upstream.close());
  const gw = await startTestGateway(
    config(upstream, [{ route: 'orders', abort: { status: 503 }, until: inAMinute() }]),
  );
  t.after(() => gw.close());
  const disarmed = new Promise<GatewayEvent>((resolve) => gw.gateway.services.events.on('fault.disarmed', resolve));
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 503);
  // The same fault, now ending shortly (a start-up on a loaded machine can take longer than any fixed until).
  const registry = gw.gateway.services.get<FaultRegistry>('faults');
  registry.configure(registry.all().map((f) => ({ ...f, until: Date.now() + 300 })));
  const event = await disarmed;
  assert.equal(event.outcome, 'ended');
  assert.equal((await httpRequest(`${gw.url}/orders`)).status, 200);
});
