/**
 * A verification provider outage injected by the fault policy (a resilience test) is detected as a provider
 * incident while users already verified keep passing; the incident records the provider's calls and closes once
 * the fault is disarmed and the provider answers again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';
import { eventually } from '../../../testing/kyc-testbed.js';
import { FaultStore } from '../faults/store.js';
import type { Store } from '../../store/store.js';
import type { GatewayEvent } from '../../pipeline/events.js';
import type { IncidentsService } from './subsystem.js';

const WORKFLOW = '0b6f3f0e-6c1d-4c55-9d9e-0e6f2f1d2a3b';

test('a provider outage injected by the fault policy opens a provider incident; verified users keep passing', {
  timeout: 120_000,
}, async (t) => {
  const upstream = await startUpstream((_req, res) => res.end('from the application'));
  t.after(() => upstream.close());
  const gw = await startTestGateway({
    log: { level: 'warn', access: false },
    upstreams: { app: { targets: [{ url: upstream.url }] } },
    kyc: {
      providers: { sandbox: { type: 'sandbox', port: 0, breaker: { cooldown_ms: 500 } } },
      workflows: {
        kyc: { provider: 'sandbox', workflow_id: WORKFLOW, claims: { kyc_full: 'facts.status == "Approved"' } },
      },
    },
    resilience: { faults: { enabled: true, poll_ms: 100 } },
    incidents: {
      enabled: true,
      instance: 'gw',
      interval_ms: 100,
      window_ms: 2000,
      confirm_ms: 200,
      close_after_ms: 1000,
    },
    routes: [
      {
        name: 'api',
        match: { prefix: '/api' },
        upstream: 'app',
        critical: true,
        function: 'accounts',
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
  t.after(() => gw.close());
  const url = `${gw.url}/api/accounts`;
  const ask = (user: string) => httpRequest(url, { headers: { 'x-user-id': user, accept: 'application/json' } });
  const incidents = gw.gateway.services.get<IncidentsService>('incidents').store;

  // Verify one user through the sandbox's hosted page.
  const challenge = await ask('vera');
  assert.equal(challenge.status, 403, challenge.body);
  const page = String((JSON.parse(challenge.body) as { verification_url: string }).verification_url);
  const approved = await httpRequest(page, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approved',
  });
  assert.equal(approved.status, 200);
  assert.ok(await eventually(async () => (await ask('vera')).status === 200, 10_000, 25), 'vera passes once verified');
  assert.deepEqual(await incidents.list(0, Date.now() + 1), [], 'no incident before the fault');

  const faults = new FaultStore(gw.gateway.services.get<Store>('store'));
  const armed = new Promise<GatewayEvent>((resolve) => {
    const off = gw.gateway.services.events.on('fault.armed', (e) => {
      off();
      resolve(e);
    });
  });
  const now = Date.now();
  const fault = await faults.arm({
    kind: 'provider',
    target: 'sandbox',
    spec: { abort: { status: 503, percent: 100 } },
    armedBy: 'test',
    reason: 'provider outage drill',
    armedAt: now,
    until: now + 60_000,
    allowCritical: false,
  });
  await armed;
  const faultAt = Date.now();
  const opened = new Promise<GatewayEvent>((resolve) => {
    const off = gw.gateway.services.events.on('incident.opened', (e) => {
      off();
      resolve(e);
    });
  });
  // New users meet the outage (503 at once); vera keeps passing throughout.
  let verifiedServed = 0;
  let verifiedAsked = 0;
  let n = 0;
  let seen: GatewayEvent | undefined;
  void opened.then((e) => {
    seen = e;
  });
  const deadline = Date.now() + 60_000;
  while (seen === undefined && Date.now() < deadline) {
    const r = await ask(`newcomer-${n++}`);
    assert.equal(r.status, 503, r.body);
    verifiedAsked++;
    if ((await ask('vera')).status === 200) verifiedServed++;
  }
  assert.ok(seen, 'a provider incident opened');
  for (let i = 0; i < 3; i++) {
    assert.equal((await ask(`late-${i}`)).status, 503);
    assert.equal((await ask('vera')).status, 200);
  }
  assert.equal(seen.data?.cause, 'provider:sandbox');
  console.log(`# provider incident opened ${Date.now() - faultAt} ms after the fault was armed`);
  assert.equal(verifiedServed, verifiedAsked, 'every request of the verified user was served during the outage');

  const id = String(seen.data?.incident);
  const timeline = await incidents.timeline(id);
  assert.equal(timeline[0]!.type, 'opened');
  const signals = (timeline[0]!.detail.signals as Array<{ signal: string }>).map((s) => s.signal);
  assert.ok(signals.includes('breaker_open') || signals.includes('provider_errors'), signals.join(','));

  assert.ok(await faults.disarm(fault.id, 'test', Date.now()));
  assert.ok(await eventually(async () => (await ask(`after-${Date.now()}`)).status === 403, 20_000, 100));
  assert.ok(
    await eventually(async () => (await incidents.get(id))?.status === 'closed', 30_000, 100),
    'the incident closes once the provider answers again',
  );
  const all = await incidents.list(0, Date.now() + 1);
  assert.deepEqual(
    all.map((i) => i.cause),
    ['provider:sandbox'],
    'one incident: the provider, not the route',
  );
  const closed = await incidents.get(id);
  const c = closed!.classification as { figures: { provider_calls: number; subjects: number } };
  assert.ok(c.figures.subjects >= 1, 'new users affected are counted (pseudonymous subjects)');
});
