/**
 * A drill scenario (DORA Art. 24-25 resilience test): the faults to arm against running gateways and for how long,
 * the traffic to drive through them before, during and after, and the objectives each stream of traffic must keep.
 * Written in YAML; `kycgate drill run FILE` runs it and writes the resilience test report (docs/DORA.md, "Drills";
 * an example in examples/drills/).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ConfigError, formatErrors, newAjv } from '../../config/load.js';
import { parseDuration } from '../../auth/api-keys/format.js';
import { faultSpecProperties, type FaultSpec, type FaultTargetKind } from '../faults/spec.js';

export interface TrafficObjectives {
  /** Share of requests answered with an expected status, in percent. */
  served_percent?: number;
  p95_ms?: number;
  max_ms?: number;
}

export interface TrafficStream {
  name: string;
  method: string;
  /** Path and query; `{n}` is replaced by the request's sequence number. */
  path: string;
  /** Header values: text (`{n}` replaced as in the path) or a secret reference ({env}, {file}). */
  headers: Record<string, unknown>;
  body?: string;
  /** Requests per second (open loop: sent on time whether or not earlier ones were answered). */
  rate: number;
  /** Statuses that count as served. Default: 2xx and 3xx. */
  expect?: number[];
  objectives: TrafficObjectives;
  /** Which phases the objectives apply to (default: all three). */
  objectives_during?: Array<'before' | 'fault' | 'after'>;
  /** The stream stands for users who are already verified: the report says whether they were unaffected. */
  verified_users: boolean;
}

export interface ScenarioFault {
  route?: string;
  upstream?: string;
  provider?: string;
  abort?: FaultSpec['abort'];
  delay?: FaultSpec['delay'];
  header?: FaultSpec['header'];
  consumers?: string[];
  webhook_delay_ms?: number;
  allow_critical: boolean;
}

export interface Scenario {
  name: string;
  description: string;
  gateway: string;
  admin?: string;
  phases: { before: string; fault: string; after: string };
  request_timeout: string;
  faults: ScenarioFault[];
  traffic: TrafficStream[];
}

/** A scenario with durations in milliseconds and faults in the registry's terms. */
export interface LoadedScenario extends Scenario {
  file: string;
  baseDir: string;
  durations: { before: number; fault: number; after: number; requestTimeout: number };
  armed: Array<{ kind: FaultTargetKind; target: string; spec: FaultSpec; allowCritical: boolean }>;
}

const duration = { type: 'string', pattern: '^\\d+(ms|s|m|h)$' } as const;

export const scenarioSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, description: 'Names the drill in its report and in the faults it arms.' },
    description: { type: 'string', default: '' },
    gateway: { type: 'string', pattern: '^https?://', description: 'Base URL the traffic is sent to.' },
    admin: {
      type: 'string',
      pattern: '^https?://',
      description: "A gateway's admin base URL, to count injected faults.",
    },
    phases: {
      type: 'object',
      properties: { before: duration, fault: duration, after: duration },
      required: ['fault'],
      additionalProperties: false,
      default: {},
    },
    request_timeout: { ...duration, default: '10s' },
    faults: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: {
          route: { type: 'string' },
          upstream: { type: 'string' },
          provider: { type: 'string' },
          ...faultSpecProperties,
          allow_critical: { type: 'boolean', default: false },
        },
        oneOf: [{ required: ['route'] }, { required: ['upstream'] }, { required: ['provider'] }],
        additionalProperties: false,
      },
    },
    traffic: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1 },
          method: { type: 'string', pattern: '^[A-Z]+$', default: 'GET' },
          path: { type: 'string', pattern: '^/' },
          headers: { type: 'object', default: {} },
          body: { type: 'string' },
          rate: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
          expect: { type: 'array', items: { type: 'integer', minimum: 100, maximum: 599 }, minItems: 1 },
          objectives: {
            type: 'object',
            properties: {
              served_percent: { type: 'number', minimum: 0, maximum: 100 },
              p95_ms: { type: 'number', exclusiveMinimum: 0 },
              max_ms: { type: 'number', exclusiveMinimum: 0 },
            },
            additionalProperties: false,
            default: {},
          },
          objectives_during: {
            type: 'array',
            items: { enum: ['before', 'fault', 'after'] },
            minItems: 1,
            uniqueItems: true,
          },
          verified_users: { type: 'boolean', default: false },
        },
        required: ['name', 'path', 'rate'],
        additionalProperties: false,
      },
    },
  },
  required: ['name', 'gateway', 'phases', 'faults'],
  additionalProperties: false,
} as const;

let validate: ReturnType<ReturnType<typeof newAjv>['compile']> | undefined;

function ms(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : parseDuration(text);
}

/** Parses and checks a scenario (throws ConfigError naming each bad key). */
export function parseScenario(doc: unknown, file: string): LoadedScenario {
  validate ??= newAjv().compile(scenarioSchema);
  if (!validate(doc)) throw new ConfigError(formatErrors(validate.errors, '').map((p) => `${file}: ${p}`));
  const s = doc as Scenario;
  const names = s.traffic.map((t) => t.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new ConfigError([`${file}: traffic stream "${dup}" is named twice`]);
  return {
    ...s,
    file,
    baseDir: path.dirname(path.resolve(file)),
    durations: {
      before: ms(s.phases.before, 0),
      fault: ms(s.phases.fault, 0),
      after: ms(s.phases.after, 0),
      requestTimeout: ms(s.request_timeout, 10_000),
    },
    armed: s.faults.map((f) => {
      const kind: FaultTargetKind =
        f.route !== undefined ? 'route' : f.upstream !== undefined ? 'upstream' : 'provider';
      const spec: FaultSpec = {
        ...(f.abort ? { abort: f.abort } : {}),
        ...(f.delay ? { delay: f.delay } : {}),
        ...(f.header ? { header: f.header } : {}),
        ...(f.consumers ? { consumers: f.consumers } : {}),
        ...(f.webhook_delay_ms ? { webhook_delay_ms: f.webhook_delay_ms } : {}),
      };
      return { kind, target: (f.route ?? f.upstream ?? f.provider)!, spec, allowCritical: f.allow_critical };
    }),
  };
}

export function loadScenario(file: string): LoadedScenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigError([`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`]);
  }
  return parseScenario(doc, file);
}
