/**
 * Loading and validating configuration: YAML in, a typed config with defaults filled in out, or a list of errors
 * that each name the key path and the reason. Policy configs are validated with each policy's own schema.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 as Ajv } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { coreSchema } from './schema.js';
import type { GatewayConfig, LoadedConfig, PolicyConfigEntry } from './types.js';
import type { PolicyDefinition } from '../pipeline/policy.js';
import type { Subsystem } from '../subsystems.js';
import { closest, suggestion } from '../shared/suggest.js';

export class ConfigError extends Error {
  /** The parsed document the problems are about, when it could be parsed (so more checks can run on it). */
  raw?: unknown;

  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export function newAjv(): Ajv {
  // verbose: an error carries its schema, so an unknown key can be answered with the known ones.
  return new Ajv({
    allErrors: true,
    useDefaults: true,
    strict: true,
    allowUnionTypes: true,
    strictRequired: false,
    verbose: true,
  });
}

/** Builds the full schema: the core plus every subsystem's section. Published in docs/config.schema.json. */
export function fullSchema(
  subsystems: readonly Subsystem[],
  policies: readonly PolicyDefinition[],
): Record<string, unknown> {
  const properties: Record<string, unknown> = { ...coreSchema.properties };
  for (const m of subsystems) if (m.section) properties[m.section.key] = m.section.schema;
  const policySchemas: Record<string, unknown> = {};
  for (const p of policies) policySchemas[p.name] = { description: p.description, ...p.schema };
  return { ...coreSchema, properties, $defs: { policies: policySchemas } };
}

export function formatErrors(errors: ErrorObject[] | null | undefined, prefix: string): string[] {
  if (!errors) return [];
  const out = new Set<string>();
  for (const e of errors) {
    // oneOf/anyOf produce one error per branch; the summary line alone is clearer.
    if (e.keyword === 'if') continue;
    const where =
      (prefix + e.instancePath.replace(/\//g, '.').replace(/\.(\d+)(?=\.|$)/g, '[$1]')).replace(/^\./, '') || '(root)';
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      message = `has unknown key "${key}"${suggestion(key, known)}`;
    } else if (e.keyword === 'enum')
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    else if (e.keyword === 'required')
      message = `is missing required key "${(e.params as { missingProperty: string }).missingProperty}"`;
    out.add(`${where}: ${message}`);
  }
  return [...out];
}

export class ConfigValidator {
  private readonly validateCore: ValidateFunction;
  private readonly policyValidators = new Map<string, ValidateFunction>();
  private readonly policies: ReadonlyMap<string, PolicyDefinition>;

  constructor(
    private readonly subsystems: readonly Subsystem[],
    policies: readonly PolicyDefinition[],
  ) {
    const ajv = newAjv();
    const schema = fullSchema(subsystems, []);
    delete (schema as { $defs?: unknown }).$defs;
    this.validateCore = ajv.compile(schema);
    this.policies = new Map(policies.map((p) => [p.name, p]));
    for (const p of policies) this.policyValidators.set(p.name, newAjv().compile(p.schema));
  }

  /**
   * Validates in place (filling defaults) and returns the typed config, or throws ConfigError listing every problem
   * found: the schema's, cross-references, each policy's options and each subsystem's checks, in one run.
   */
  validate(raw: unknown): GatewayConfig {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new ConfigError(['(root): must be a mapping of keys']);
    const problems: string[] = [];
    if (!this.validateCore(raw)) problems.push(...formatErrors(this.validateCore.errors, ''));
    // What the schema let through is checked further even when it failed elsewhere: one run names every problem.
    const config = raw as GatewayConfig;
    const list = <T>(value: unknown): T[] => (Array.isArray(value) ? (value as T[]) : []);
    const upstreams = typeof config.upstreams === 'object' && config.upstreams !== null ? config.upstreams : {};
    this.validatePolicies(list(config.defaults?.policies), 'defaults.policies', problems);
    const routeNames = new Set<string>();
    list<GatewayConfig['routes'][number]>(config.routes).forEach((route, i) => {
      if (typeof route !== 'object' || route === null) return;
      const where = `routes[${i}]`;
      if (routeNames.has(route.name)) problems.push(`${where}.name: route name "${route.name}" is used twice`);
      routeNames.add(route.name);
      if (typeof route.upstream === 'string' && !(route.upstream in upstreams)) {
        problems.push(
          `${where}.upstream: no upstream named "${route.upstream}"${suggestion(route.upstream, Object.keys(upstreams))}`,
        );
      }
      this.validatePolicies(list(route.policies), `${where}.policies`, problems);
    });
    const listenerNames = new Set<string>();
    list<GatewayConfig['listeners'][number]>(config.listeners).forEach((l, i) => {
      if (typeof l !== 'object' || l === null) return;
      if (listenerNames.has(l.name)) problems.push(`listeners[${i}].name: listener name "${l.name}" is used twice`);
      listenerNames.add(l.name);
      if (l.tls && l.plain !== undefined && l.plain !== 'serve')
        problems.push(`listeners[${i}].plain: only applies to plain-HTTP listeners`);
    });
    for (const s of this.subsystems) {
      if (!s.check || !s.section || config[s.section.key] === undefined) continue;
      try {
        problems.push(...s.check(config));
      } catch {
        // The section is malformed: its schema errors above already say how.
      }
    }
    if (problems.length > 0) {
      const error = new ConfigError(problems);
      error.raw = raw;
      throw error;
    }
    return config;
  }

  private validatePolicies(list: PolicyConfigEntry[], where: string, problems: string[]): void {
    list.forEach((entry, i) => {
      if (typeof entry !== 'object' || entry === null) return;
      const name = Object.keys(entry)[0];
      if (name === undefined) return;
      const validate = this.policyValidators.get(name);
      if (!validate || !this.policies.has(name)) {
        const known = [...this.policies.keys()];
        const near = closest(name, known);
        problems.push(
          `${where}[${i}]: unknown policy "${name}"${near ? ` (did you mean "${near}"?)` : ` (known: ${known.join(', ')})`}`,
        );
        return;
      }
      if (entry[name] === null || entry[name] === undefined) entry[name] = {};
      if (!validate(entry[name])) problems.push(...formatErrors(validate.errors, `${where}[${i}].${name}`));
    });
  }
}

/** Parses YAML text, refusing duplicate keys and anchors-bombs; errors carry line numbers. */
export function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `${source}: ${e.message.split('\n')[0]}`));
  return doc.toJS({ maxAliasCount: 100 });
}

export function loadConfigFile(file: string, validator: ConfigValidator): LoadedConfig {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const config = validator.validate(parseYaml(text, file));
  return { config, file: absolute, baseDir: path.dirname(absolute) };
}
