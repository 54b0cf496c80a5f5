/**
 * Plugins: policies and verification-provider types from outside the bundled set, loaded from files the operator names
 * (`kycgate start --plugin ./my-plugin.js`). A plugin subsystem's default export is `{ policies?, providers? }`; they
 * join the bundled lists (src/bundled.ts) as if they were bundled. Loading a plugin runs its code with the
 * gateway's rights: name only files you trust.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PolicyDefinition } from '../pipeline/policy.js';
import type { ProviderType } from '../providers/provider.js';
import type { Subsystem } from '../subsystems.js';
import { POLICIES, PROVIDERS, bundledSubsystems } from '../bundled.js';

export interface Plugin {
  readonly policies?: readonly PolicyDefinition[];
  readonly providers?: readonly ProviderType[];
}

/** What a gateway is built from: the bundled policies and subsystems plus those of the plugins. */
export interface Extensions {
  readonly policies: readonly PolicyDefinition[];
  readonly subsystems: readonly Subsystem[];
}

export async function loadExtensions(files: readonly string[]): Promise<Extensions> {
  if (files.length === 0) return { policies: POLICIES, subsystems: bundledSubsystems() };
  const policies = [...POLICIES];
  const providers = [...PROVIDERS];
  for (const file of files) {
    const loaded = (await import(pathToFileURL(path.resolve(file)).href)) as { default?: Plugin };
    const plugin = loaded.default;
    if (plugin === undefined || typeof plugin !== 'object')
      throw new Error(`plugin ${file}: its default export must be { policies?, providers? }`);
    for (const p of plugin.policies ?? []) {
      if (policies.some((q) => q.name === p.name))
        throw new Error(`plugin ${file}: a policy named "${p.name}" exists already`);
      policies.push(p);
    }
    for (const p of plugin.providers ?? []) {
      if (providers.some((q) => q.type === p.type))
        throw new Error(`plugin ${file}: a provider type "${p.type}" exists already`);
      providers.push(p);
    }
  }
  return { policies, subsystems: bundledSubsystems(providers) };
}
