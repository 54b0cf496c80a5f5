/**
 * Incident reports: deadlines of Delegated Regulation (EU) 2025/301 across a day (and month) boundary, and the
 * reports `kycgate incidents report` writes for an incident a real gateway detected, valid against
 * docs/incident-report.schema.json, with the audit extract of the window verified, and an override on record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { stringify } from 'yaml';
import { httpRequest, startTestGateway, startUpstream } from '../../../testing/harness.js';
import { startTcpRelay } from '../../../testing/tcp-relay.js';
import { addMonth, reportDeadlines } from './deadlines.js';
import type { IncidentsService } from './subsystem.js';
import type { GatewayEvent } from '../../pipeline/events.js';
import { AdminClient } from '../../../testing/admin-client.js';

const CLI = path.resolve('dist/src/cli/main.js');
const H = 3_600_000;

function cli(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, KYCGATE_DATA_DIR: dataDir }, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
    );
  });
}

test('deadlines: 4 h after classification, capped at 24 h after detection, overdue across midnight', () => {
  const detected = Date.parse('2026-03-09T22:10:00Z');
  const classified = Date.parse('2026-03-09T23:30:00Z');
  const inc = { detectedAt: detected, classifiedAt: classified, submissions: {} };
  const before = reportDeadlines(inc, Date.parse('2026-03-10T03:29:59Z'));
  assert.equal(before[0]!.due, '2026-03-10T03:30:00.000Z', 'due the next day');
  assert.equal(before[0]!.overdue, false);
  const after = reportDeadlines(inc, Date.parse('2026-03-10T03:30:01Z'));
  assert.equal(after[0]!.overdue, true, 'overdue once the day has turned and 4 h passed');
  assert.equal(after[1]!.due, '2026-03-13T03:30:00.000Z', 'intermediate: 72 h after the initial was due');
  assert.equal(after[1]!.overdue, false);
  // Classified late: the 24 h cap after detection wins.
  const late = reportDeadlines({ detectedAt: detected, classifiedAt: detected + 22 * H, submissions: {} }, detected);
  assert.equal(late[0]!.due, '2026-03-10T22:10:00.000Z');
  assert.match(late[0]!.basis, /24 h after detection/);
  // Submitted: the next deadline runs from the submission; the final one a calendar month after the intermediate.
  const sub = reportDeadlines(
    {
      detectedAt: detected,
      classifiedAt: classified,
      submissions: { initial: Date.parse('2026-03-10T01:00:00Z'), intermediate: Date.parse('2026-03-12T23:59:00Z') },
    },
    Date.parse('2026-04-13T00:00:00Z'),
  );
  assert.equal(sub[0]!.overdue, false);
  assert.equal(sub[0]!.late, false);
  assert.equal(sub[1]!.due, '2026-03-13T01:00:00.000Z');
  assert.equal(sub[2]!.due, '2026-04-12T23:59:00.000Z');
  assert.equal(sub[2]!.overdue, true);
  assert.equal(new Date(addMonth(Date.parse('2027-01-31T10:00:00Z'))).toISOString(), '2027-02-28T10:00:00.000Z');
});

test('kycgate incidents: an upstream outage detected by a gateway, classified, overridden, reported (SQLite)', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kycgate-incidents-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const relay = await startTcpRelay(upstream.port);
  const config = {
    listeners: [{ name: 'main', port: 0 }],
    admin: { port: 0, api: { enabled: true, key_file: { path: 'admin-key' } } },
    audit: { enabled: true },
    consumers: { shop: {} },
    upstreams: { core: { targets: [{ url: `http://127.0.0.1:${relay.port}` }] } },
    routes: [
      {
        name: 'payments',
        match: { prefix: '/payments' },
        upstream: 'core',
        critical: true,
        function: 'payments',
        policies: [{ authenticate: { methods: [{ 'api-key': {} }] } }],
      },
    ],
    incidents: {
      enabled: true,
      instance: 'gw-1',
      interval_ms: 100,
      window_ms: 1000,
      confirm_ms: 200,
      close_after_ms: 800,
      slo: { default: { min_requests: 5 } },
      classification: { functions: { payments: { clients: 10, daily_transactions: 1000 } } },
      reporting: { entity: 'Example Payments SA', lei: '5299000J2N45DDNE4Y28', competent_authority: 'CSSF' },
      third_parties: { 'core-host': { upstream: 'core', availability_percent: 99.9, p95_ms: 500 } },
    },
  };
  const gw = await startTestGateway(config, { dataDir });
  let sending = true;
  const statuses: number[] = [];
  const { key } = await gw.gateway.services
    .get<{ createKey(o: { consumer: string }): Promise<{ key: string }> }>('auth')
    .createKey({ consumer: 'shop' });
  const drive = (async () => {
    while (sending) {
      const res = await httpRequest(gw.url + '/payments/1', { headers: { 'x-api-key': key } }).catch(() => undefined);
      if (res) statuses.push(res.status);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  t.after(async () => {
    sending = false;
    await drive;
    await gw.close();
    await relay.close();
    await upstream.close();
  });
  const incidents = gw.gateway.services.get<IncidentsService>('incidents').store;
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
    const started = Date.now();
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() - started > 30_000) throw new Error(`${what}: not within 30 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitFor('served', async () => (statuses.filter((s) => s === 200).length >= 20 ? true : undefined));
  await relay.cut('refuse');
  const opened = await waitFor('incident opened', async () => (await incidents.list(0, Date.now() + 1))[0]);
  assert.equal(opened.cause, 'upstream:core');
  await new Promise((r) => setTimeout(r, 500));
  await relay.restore();
  await waitFor('incident closed', async () =>
    (await incidents.get(opened.id))?.status === 'closed' ? true : undefined,
  );
  sending = false;
  await drive;

  const file = path.join(dataDir, 'kycgate.yaml');
  writeFileSync(file, stringify(config));
  const list = await cli(['incidents', 'list', '--json', '-c', file], dataDir);
  assert.equal(list.code, 0, list.stderr);
  const rows = list.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    rows.map((r) => [r.id, r.status, r.cause]),
    [[opened.id, 'closed', 'upstream:core']],
  );

  // Measured: the critical service failed, one client of ten (10 % is not over 10 %), short: not major.
  const show = await cli(['incidents', 'show', opened.id, '--json', '-c', file], dataDir);
  assert.equal(show.code, 0, show.stderr);
  const detail = JSON.parse(show.stdout);
  assert.equal(detail.classification.criteria.critical_services.met, true);
  assert.equal(detail.classification.figures.consumers, 1);
  assert.equal(detail.classification.major, false, detail.classification.reasons.join('; '));
  assert.deepEqual(detail.deadlines, [], 'no deadline for an incident that is not major');

  const refused = await cli(['incidents', 'classify', opened.id, '--major', 'yes', '-c', file], dataDir);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /justification/);
  const overrideAudited = new Promise<GatewayEvent>((resolve) => {
    const off = gw.gateway.services.events.on('incident.override', (e) => {
      off();
      resolve(e);
    });
  });
  const classify = await cli(
    [
      'incidents',
      'classify',
      opened.id,
      '--major',
      'yes',
      '--justification',
      'payments down at month end',
      '--member-states',
      'LU,BE',
      '--by',
      'alice',
      '--json',
      '-c',
      file,
    ],
    dataDir,
  );
  assert.equal(classify.code, 0, classify.stderr);
  const classified = JSON.parse(classify.stdout);
  assert.equal(classified.classification.major, true);
  assert.equal(classified.classification.computed_major, false);
  assert.equal(classified.classification.criteria.geographical_spread.met, true);
  assert.ok(
    classified.timeline.some(
      (e: any) =>
        e.type === 'override' && e.instance === 'alice' && e.detail.justification === 'payments down at month end',
    ),
    'the override is on the timeline with who and why',
  );
  assert.equal(classified.deadlines.length, 3);
  const audited = await overrideAudited;
  assert.equal(audited.data?.by, 'alice', 'the running gateway puts the override on its audit trail');
  assert.equal(audited.data?.justification, 'payments down at month end');

  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync('docs/incident-report.schema.json', 'utf8')));
  const journal = path.join(dataDir, 'audit');
  const reports: Record<string, any> = {};
  for (const kind of ['initial', 'intermediate', 'final']) {
    const out = path.join(dataDir, `${kind}.json`);
    const html = path.join(dataDir, `${kind}.html`);
    const extra =
      kind === 'initial'
        ? ['--description', 'Payments upstream refused connections', '--bcp', 'no', '--submitted']
        : kind === 'final'
          ? [
              '--root-cause',
              'host firewall change',
              '--actions',
              'rule reverted; change review added',
              '--lessons',
              'stage firewall changes',
            ]
          : ['--actions', 'traffic moved to standby'];
    const r = await cli(
      [
        'incidents',
        'report',
        opened.id,
        '--kind',
        kind,
        '--out',
        out,
        '--html',
        html,
        '--journal',
        journal,
        ...extra,
        '-c',
        file,
      ],
      dataDir,
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.ok(validate(report), `${kind}: ${ajv.errorsText(validate.errors)}`);
    assert.match(readFileSync(html, 'utf8'), new RegExp(opened.id));
    reports[kind] = report;
  }
  const initial = reports.initial;
  assert.equal(initial.entity.lei, '5299000J2N45DDNE4Y28');
  assert.equal(initial.initial_notification.date_time_detection, new Date(opened.detectedAt).toISOString());
  assert.ok(initial.audit_extract.records > 0, 'the audit journal has records of the window');
  assert.equal(initial.audit_extract.verification.ok, true);
  assert.equal(initial.deadlines[0].submitted_at !== null, true, 'the initial notification is recorded as submitted');
  assert.equal(reports.intermediate.intermediate_report.affected_services[0].function, 'payments');
  assert.ok(reports.intermediate.intermediate_report.transactions_affected > 0);
  const final = reports.final;
  assert.equal(final.final_report.root_cause, 'host firewall change');
  assert.ok(!final.to_complete.includes('final_report.root_cause'));
  assert.ok(
    final.third_parties[0].requests > 0 && final.third_parties[0].failed > 0,
    JSON.stringify(final.third_parties),
  );
  assert.equal(final.third_parties[0].met.availability, false);
  assert.ok(validate({ ...initial, report: 'weekly' }) === false, 'the schema refuses what it does not describe');

  const tp = await cli(['incidents', 'third-parties', '--since', '1h', '--json', '-c', file], dataDir);
  assert.equal(tp.code, 0, tp.stderr);
  const party = JSON.parse(tp.stdout).third_parties[0];
  assert.equal(party.name, 'core-host');
  assert.ok(party.requests >= final.third_parties[0].requests, 'the period holds the incident window');
  assert.equal(party.contract.availability_percent, 99.9);

  // The same through the admin API (answers checked against the OpenAPI document by the client).
  const admin = new AdminClient(gw.adminUrl, readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim());
  const listed = await admin.call<{ items: Array<{ id: string; major: boolean }> }>('listIncidents', {
    query: { since: '1d' },
  });
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(
    listed.body.items.map((i) => [i.id, i.major]),
    [[opened.id, true]],
  );
  const shown = await admin.call<{ deadlines: Array<{ report: string; submitted_at: string | null }> }>('getIncident', {
    params: { id: opened.id },
  });
  assert.equal(shown.status, 200, shown.text);
  assert.notEqual(shown.body.deadlines[0]!.submitted_at, null);
  assert.equal((await admin.call('getIncident', { params: { id: 'inc_0000000000000000' } })).status, 404);
  const noReason = await admin.call('classifyIncident', { params: { id: opened.id }, body: { major: false } });
  assert.equal(noReason.status, 400, noReason.text);
  const cleared = await admin.call<{ classification: { major: boolean; override: unknown } }>('classifyIncident', {
    params: { id: opened.id },
    body: { major: null },
  });
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.classification.override, null);
  assert.equal(cleared.body.classification.major, false, 'back to the computed classification');
  const viaApi = await admin.call<Record<string, unknown>>('incidentReport', {
    params: { id: opened.id },
    body: { kind: 'intermediate', actions: 'standby promoted' },
  });
  assert.equal(viaApi.status, 200, viaApi.text);
  assert.ok(validate(viaApi.body), ajv.errorsText(validate.errors));
  assert.equal(
    (viaApi.body.intermediate_report as { temporary_actions: string }).temporary_actions,
    'standby promoted',
  );
});
