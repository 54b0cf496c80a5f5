/** The kyc-gate's configuration: errors named at start and on reload, provider refusals, and what a reload keeps. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, startTestGateway } from '../../../testing/harness.js';
import { kycTestbed, postWebhook, eventually } from '../../../testing/kyc-testbed.js';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
const asJson = (body: string) => JSON.parse(body) as Record<string, any>;

test('config errors name the problem: refused at start, and refused on reload while the running config keeps serving', async (t) => {
  const bed = await kycTestbed(t);
  const startFile = path.join(bed.dir, 'bad-start.yaml');
  writeFileSync(
    startFile,
    stringify({
      ...bed.config({ workflow: 'nope' }),
      listeners: [{ name: 'main', port: 0 }],
      admin: { enabled: false },
    }),
  );
  const run = await runCli(['start', '--config', startFile], { KYCGATE_DATA_DIR: path.join(bed.dir, 'data-cli') });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /kyc-gate\.workflow: no workflow named "nope"/);

  const { gw, rewrite } = await reloadableGateway(t, bed);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [bed.config({ required_claims: ['age_over_21'] }), /no workflow grants every required claim \(age_over_21\)/],
    [bed.config({ rules: [{ name: 'r', when: 'body.amount >', action: 'allow' }] }), /rules\[0\] \(r\)\.when/],
    [
      bed.config({ rules: [{ name: 'r', when: 'subject.history_sum("amount", "1y") > 1.0', action: 'allow' }] }),
      /window "1y"/,
    ],
    [bed.config({ rules: [{ name: 'r', action: 'reroute', upstream: 'nowhere' }] }), /no upstream named "nowhere"/],
    [
      bed.config(
        {},
        {
          kyc: {
            workflows: { full: { provider: 'testprov', workflow_id: 'x', claims: { kyc_full: 'facts.score +' } } },
          },
        },
      ),
      /kyc\.workflows\.full\.claims\.kyc_full/,
    ],
  ];
  for (const [config, expected] of cases) {
    rewrite(config);
    assert.equal(await gw.gateway.reload('test'), false);
    const refused = gw.logs
      .filter((l) => l.msg === 'configuration refused; the previous configuration keeps serving')
      .at(-1);
    assert.match(((refused?.problems ?? []) as string[]).join('\n'), expected);
  }
  const still = await httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'judy', accept: 'application/json' } });
  assert.equal(asJson(still.body).type, 'https://kycgate.dev/problems/kyc-required');
});

/**
 * A gateway started on `bed`'s config that also reads it from a file, so a test can rewrite the file and reload;
 * `rewrite` writes a config there (listening on an ephemeral port, admin off).
 */
async function reloadableGateway(t: TestContext, bed: Awaited<ReturnType<typeof kycTestbed>>) {
  const file = path.join(bed.dir, 'gateway.yaml');
  const rewrite = (config: Record<string, unknown>) =>
    writeFileSync(file, stringify({ ...config, listeners: [{ name: 'main', port: 0 }], admin: { enabled: false } }));
  rewrite(bed.config());
  const gw = await startTestGateway(bed.config(), { file, baseDir: bed.dir, watchConfig: false });
  t.after(() => gw.close());
  return { gw, rewrite };
}

/** `kycgate <command> --plugin <the test provider type> ...rest`: the child knows the `test` provider type. */
function pluginArgs(args: string[]): string[] {
  return [args[0]!, '--plugin', path.resolve('dist/testing/kyc-test-provider-plugin.js'), ...args.slice(1)];
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/src/cli/main.js', ...pluginArgs(args)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000); // generous: a loaded machine
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('a provider refusing the session request (bad workflow id) answers 502 without detail, and is logged', async (t) => {
  const bed = await kycTestbed(t);
  const gw = await startTestGateway(
    bed.config(
      {},
      {
        kyc: {
          workflows: { full: { provider: 'testprov', workflow_id: 'rejected-workflow', claims: { kyc_full: 'true' } } },
        },
      },
    ),
  );
  t.after(() => gw.close());
  const res = await httpRequest(`${gw.url}/api/x`, { headers: { 'x-user-id': 'quinn', accept: 'application/json' } });
  assert.equal(res.status, 502);
  assert.equal(asJson(res.body).type, 'https://kycgate.dev/problems/bad-gateway');
  assert.ok(!res.body.includes('unknown workflow'), "the provider's own text stays out of the answer");
  assert.ok(gw.logs.some((l) => l.msg === 'verification session could not be created'));
});

test('reload: a changed claims mapping applies to new decisions, and an unchanged provider is kept', async (t) => {
  const bed = await kycTestbed(t);
  const { gw, rewrite } = await reloadableGateway(t, bed);
  const kyc = gw.gateway.services.get<import('../../kyc/service.js').KycService>('kyc');
  const providerBefore = kyc.setup.providers.get('testprov');
  rewrite(
    bed.config(
      {},
      {
        kyc: {
          workflows: {
            full: {
              provider: 'testprov',
              workflow_id: 'wf-full',
              claims: { kyc_full: 'has(facts.aml) && facts.aml == "clear"' },
            },
          },
        },
      },
    ),
  );
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal(kyc.setup.providers.get('testprov'), providerBefore);
  const as = (user: string) => ({ headers: { 'x-user-id': user, accept: 'application/json' } });
  const rita = asJson((await httpRequest(`${gw.url}/api/x`, as('rita'))).body).session_id as string;
  const sam = asJson((await httpRequest(`${gw.url}/api/x`, as('sam'))).body).session_id as string;
  await postWebhook(gw.url, bed.provider.webhook(rita, 'Approved', { facts: { aml: 'hit' } }));
  await postWebhook(gw.url, bed.provider.webhook(sam, 'Approved', { facts: { aml: 'clear' } }));
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as('sam'))).status === 200));
  const rejected = await httpRequest(`${gw.url}/api/x`, as('rita'));
  assert.equal(
    asJson(rejected.body).type,
    'https://kycgate.dev/problems/kyc-denied',
    'approved, but the new mapping does not grant kyc_full',
  );
});

test('reload: cached verification state and pseudonyms survive a reload that does not change them', async (t) => {
  const bed = await kycTestbed(t);
  const { gw, rewrite } = await reloadableGateway(t, bed);
  const kyc = gw.gateway.services.get<import('../../kyc/service.js').KycService>('kyc');
  const as = { headers: { 'x-user-id': 'tess', accept: 'application/json' } };
  const session = asJson((await httpRequest(`${gw.url}/api/x`, as)).body).session_id as string;
  await postWebhook(gw.url, bed.provider.webhook(session, 'Approved'));
  assert.ok(await eventually(async () => (await httpRequest(`${gw.url}/api/x`, as)).status === 200));
  const pseudonymiser = kyc.setup.pseudonymiser;
  const cached = kyc.cache.size;
  assert.ok(cached > 0);

  // A reload that only changes logging: the subject's entry and the pseudonym memo are kept.
  rewrite({ ...bed.config(), log: { level: 'warn', access: false } });
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal(kyc.cache.size, cached, 'the cached verification state was kept');
  assert.equal(kyc.setup.pseudonymiser, pseudonymiser);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 200);

  // Changed cache lifetimes: entries built with the old ones are dropped.
  const config = bed.config() as { kyc: Record<string, unknown> };
  rewrite({ ...config, kyc: { ...config.kyc, cache: { ttl_seconds: 120 } } });
  assert.equal(await gw.gateway.reload('test'), true);
  assert.equal(kyc.cache.size, 0);
  assert.equal((await httpRequest(`${gw.url}/api/x`, as)).status, 200, 'reloaded from the store');
});
