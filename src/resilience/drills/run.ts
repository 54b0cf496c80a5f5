/**
 * Runs a drill against running gateways: checks every fault as `kycgate faults arm` would, drives the traffic
 * through three phases (before, fault, after), arms the faults in the shared store for the fault phase only (with an
 * `until`, so they end even if the drill is killed) and disarms them when it ends, then writes the resilience test
 * report: what was injected, which objectives were kept or missed in which phase, how long each stream took to
 * recover, whether verified users were unaffected, and the incidents the gateways detected and how fast.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { GatewayConfig } from '../../config/types.js';
import { ConfigError } from '../../config/load.js';
import { checkArmRequest } from '../faults/arming.js';
import type { FaultRecord, FaultStore } from '../faults/store.js';
import type { LoadedScenario, TrafficStream } from './scenario.js';
import { phaseStats, recoveryMs, StreamDriver, type Phase, type PhaseStats } from './traffic.js';

/** An incident the gateways opened during the drill, as the report shows it. */
export interface DrillIncident {
  id: string;
  cause: string;
  title: string;
  opened_at: string;
  closed_at?: string | undefined;
  major?: boolean | undefined;
}

export interface DrillOptions {
  /** Who runs the drill (recorded with the faults it arms). */
  operator: string;
  /** The incidents opened between two times (epoch ms), when the incident store is available. */
  incidents?: (from: number, to: number) => Promise<DrillIncident[]>;
  /** Stops the drill early; the faults are disarmed all the same. */
  signal?: AbortSignal;
  /** Told when a phase starts. */
  onPhase?: (phase: Phase, at: number) => void;
}

export interface ObjectiveResult {
  phase: Phase;
  objective: 'served_percent' | 'p95_ms' | 'max_ms';
  target: number;
  measured: number | null;
  kept: boolean;
}

export interface DrillReport {
  report: 'kycgate resilience test';
  drill: string;
  description: string;
  gateway: string;
  operator: string;
  started_at: string;
  ended_at: string;
  result: 'passed' | 'failed';
  phases: Record<Phase, { from: string; to: string }>;
  faults: Array<Record<string, unknown>>;
  /** Injections counted by the gateway whose admin URL the scenario names, by target and effect. */
  injected: Record<string, number> | null;
  traffic: Array<{
    name: string;
    verified_users: boolean;
    phases: Record<Phase, PhaseStats>;
    objectives: ObjectiveResult[];
    recovery_ms: number | null;
  }>;
  objectives_kept: boolean;
  /** For streams of verified users: every request served while the fault was armed. Null when none is marked. */
  verified_users_unaffected: boolean | null;
  incidents: Array<DrillIncident & { detected_after_ms: number }> | null;
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return sleep(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

/** Faults injected so far, from a gateway's metrics (null when it cannot be read). */
async function injectedCounts(admin: string | undefined): Promise<Record<string, number> | null> {
  if (admin === undefined) return null;
  try {
    const res = await request(new URL('/metrics', admin), { headersTimeout: 5000, bodyTimeout: 5000 });
    const text = await res.body.text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(
      /^kycgate_faults_injected_total\{kind="(\w+)",target="([^"]*)",effect="(\w+)"\} (\d+)/gm,
    )) {
      out[`${m[1]} ${m[2]} ${m[3]}`] = Number(m[4]);
    }
    return out;
  } catch {
    return null;
  }
}

function evaluate(stream: TrafficStream, phases: Record<Phase, PhaseStats>): ObjectiveResult[] {
  const out: ObjectiveResult[] = [];
  for (const phase of stream.objectives_during ?? (['before', 'fault', 'after'] as const)) {
    const s = phases[phase];
    if (s.requests === 0) continue;
    const o = stream.objectives;
    if (o.served_percent !== undefined) {
      out.push({
        phase,
        objective: 'served_percent',
        target: o.served_percent,
        measured: s.served_percent,
        kept: (s.served_percent ?? 0) >= o.served_percent,
      });
    }
    if (o.p95_ms !== undefined) {
      out.push({
        phase,
        objective: 'p95_ms',
        target: o.p95_ms,
        measured: s.p95_ms,
        kept: (s.p95_ms ?? Infinity) <= o.p95_ms,
      });
    }
    if (o.max_ms !== undefined) {
      out.push({
        phase,
        objective: 'max_ms',
        target: o.max_ms,
        measured: s.max_ms,
        kept: (s.max_ms ?? Infinity) <= o.max_ms,
      });
    }
  }
  return out;
}

function describe(f: FaultRecord): Record<string, unknown> {
  return {
    id: f.id,
    kind: f.kind,
    target: f.target,
    ...f.spec,
    allow_critical: f.allowCritical,
    armed_at: new Date(f.armedAt).toISOString(),
    until: new Date(f.until).toISOString(),
  };
}

export async function runDrill(
  scenario: LoadedScenario,
  config: GatewayConfig,
  store: FaultStore,
  options: DrillOptions,
): Promise<DrillReport> {
  const { before, fault, after, requestTimeout } = scenario.durations;
  const planned = Date.now() + before;
  const refusals = scenario.armed.flatMap((f, i) =>
    checkArmRequest(config, { ...f, until: planned + fault }, planned).refusals.map((r) => `faults[${i}]: ${r}`),
  );
  if (refusals.length > 0) throw new ConfigError(refusals.map((r) => `${scenario.file}: ${r}`));

  const agent = new Agent({ connections: 64, headersTimeout: requestTimeout, bodyTimeout: requestTimeout });
  let phase: Phase = 'before';
  const bounds = {} as Record<Phase, { from: number; to: number }>;
  const startPhase = (p: Phase) => {
    const now = Date.now();
    if (p !== 'before') bounds[phase]!.to = now;
    phase = p;
    bounds[p] = { from: now, to: now };
    options.onPhase?.(p, now);
  };
  const drivers = scenario.traffic.map(
    (t) => new StreamDriver(t, scenario.gateway, agent, () => phase, scenario.baseDir, requestTimeout),
  );
  const startedAt = Date.now();
  startPhase('before');
  for (const d of drivers) d.start();
  const armed: FaultRecord[] = [];
  let faultStart = 0;
  let faultEnd = 0;
  let injectedBefore: Record<string, number> | null = null;
  try {
    await wait(before, options.signal);
    if (options.signal?.aborted !== true) {
      injectedBefore = await injectedCounts(scenario.admin);
      startPhase('fault');
      faultStart = Date.now();
      for (const f of scenario.armed) {
        armed.push(
          await store.arm({
            ...f,
            armedBy: options.operator,
            reason: `drill ${scenario.name}`,
            armedAt: faultStart,
            until: faultStart + fault,
          }),
        );
      }
      await wait(fault, options.signal);
    }
  } finally {
    // Disarmed whatever happened: a drill that stops early leaves nothing armed.
    const now = Date.now();
    for (const f of armed) await store.disarm(f.id, options.operator, now).catch(() => false);
    faultEnd = now;
  }
  startPhase('after');
  await wait(after, options.signal);
  bounds.after.to = Date.now();
  await Promise.all(drivers.map((d) => d.stop()));
  await agent.close();
  const endedAt = Date.now();

  const injectedAfter = await injectedCounts(scenario.admin);
  let injected: Record<string, number> | null = null;
  if (injectedAfter !== null) {
    injected = {};
    for (const [k, v] of Object.entries(injectedAfter)) {
      const d = v - (injectedBefore?.[k] ?? 0);
      if (d > 0) injected[k] = d;
    }
  }

  const traffic = drivers.map((d) => {
    const by = (p: Phase) =>
      phaseStats(
        d.stream,
        d.samples.filter((s) => s.phase === p),
      );
    const phases = { before: by('before'), fault: by('fault'), after: by('after') };
    return {
      name: d.stream.name,
      verified_users: d.stream.verified_users,
      phases,
      objectives: evaluate(d.stream, phases),
      recovery_ms: recoveryMs(d.stream, d.samples, faultEnd),
    };
  });
  const objectivesKept = traffic.every((t) => t.objectives.every((o) => o.kept));
  const verified = traffic.filter((t) => t.verified_users);
  const verifiedUnaffected =
    verified.length === 0
      ? null
      : verified.every((t) => t.phases.fault.requests > 0 && t.phases.fault.served === t.phases.fault.requests);

  let incidents: DrillReport['incidents'] = null;
  if (options.incidents !== undefined && faultStart > 0) {
    const list = await options.incidents(faultStart, endedAt).catch(() => undefined);
    incidents =
      list?.map((i) => ({ ...i, detected_after_ms: Math.max(0, Date.parse(i.opened_at) - faultStart) })) ?? null;
  }
  const iso = (t: number) => new Date(t).toISOString();
  return {
    report: 'kycgate resilience test',
    drill: scenario.name,
    description: scenario.description,
    gateway: scenario.gateway,
    operator: options.operator,
    started_at: iso(startedAt),
    ended_at: iso(endedAt),
    result: objectivesKept && verifiedUnaffected !== false ? 'passed' : 'failed',
    phases: {
      before: { from: iso(bounds.before.from), to: iso(bounds.before.to) },
      fault: { from: iso(bounds.fault?.from ?? faultEnd), to: iso(bounds.fault?.to ?? faultEnd) },
      after: { from: iso(bounds.after.from), to: iso(bounds.after.to) },
    },
    faults: armed.map(describe),
    injected,
    traffic,
    objectives_kept: objectivesKept,
    verified_users_unaffected: verifiedUnaffected,
    incidents,
  };
}
