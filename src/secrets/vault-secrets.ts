/**
 * Vault secrets for a synchronous resolver. Before a configuration is compiled (at start and on every reload) the
 * gateway calls `prepare(config)`, which reads every `{vault: {path, key}}` reference it holds; subsystems and
 * policies then resolve them from this cache. Each secret is read again in the background (its lease or the
 * refresh interval, whichever is shorter). When Vault cannot be reached the last good value keeps serving (a
 * warning, a `secret.refresh_failed` event, a readiness detail); when a value changes, `onRotated` is called so
 * the gateway recompiles its configuration and the new value takes effect without a restart.
 */
import type { Logger } from 'pino';
import type { GatewayConfig, VaultConfig, VaultSecretRef } from '../config/types.js';
import { ConfigError } from '../config/load.js';
import { isVaultRef, type VaultSecretCache } from '../config/secrets.js';
import type { EventBus } from '../pipeline/events.js';
import { VaultClient, VaultError } from './vault-client.js';

interface CachedSecret {
  data: Record<string, string>;
  /** Keys of this secret that the current configuration references. */
  keys: Set<string>;
  fetchedAt: number;
  nextRefreshAt: number;
  version?: number;
  /** Set while refreshes fail: since when, and the last error (no values in it). */
  failingSince?: number;
  lastError?: string;
}

/** Every vault reference in a validated config (subsystem sections and policy configs included). */
export function collectVaultRefs(
  value: unknown,
  out: Array<VaultSecretRef['vault']> = [],
): Array<VaultSecretRef['vault']> {
  if (Array.isArray(value)) {
    for (const v of value) collectVaultRefs(v, out);
  } else if (typeof value === 'object' && value !== null) {
    if (isVaultRef(value)) out.push(value.vault);
    else for (const v of Object.values(value)) collectVaultRefs(v, out);
  }
  return out;
}

export class VaultSecrets implements VaultSecretCache {
  private client: VaultClient | undefined;
  private settings = '';
  private config: VaultConfig | undefined;
  private readonly secrets = new Map<string, CachedSecret>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private closed = false;
  /** Called after a background refresh changed a referenced value. */
  onRotated: ((paths: string[]) => void) | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly events: EventBus,
    private readonly now: () => number = Date.now,
  ) {}

  cached(ref: VaultSecretRef['vault']): string | undefined {
    return this.secrets.get(ref.path)?.data[ref.key];
  }

  /**
   * Reads every vault reference of `config` not already cached (or whose key is new), so the config can be
   * compiled. Throws a ConfigError naming the failing references (never values) when one cannot be read.
   */
  async prepare(config: GatewayConfig, baseDir: string): Promise<void> {
    const refs = collectVaultRefs(config);
    if (refs.length > 0 && !config.vault)
      throw new ConfigError(['vault: secret references {vault: ...} need a top-level `vault` section (address, auth)']);
    // Changed Vault settings (another address, namespace or login): every secret is read again through them, and
    // they are adopted only if that works, so a refused reload leaves the running setup as it was.
    const settings = JSON.stringify([config.vault, baseDir]);
    const changed = config.vault !== undefined && settings !== this.settings;
    const client = changed ? new VaultClient(config.vault!, baseDir) : this.client;
    const wanted = new Map<string, Set<string>>();
    for (const r of refs) {
      if (!wanted.has(r.path)) wanted.set(r.path, new Set());
      wanted.get(r.path)!.add(r.key);
    }
    const problems: string[] = [];
    const fetched = new Map<string, CachedSecret>();
    await Promise.all(
      [...wanted].map(async ([apiPath, keys]) => {
        const cached = this.secrets.get(apiPath);
        if (!changed && cached && [...keys].every((k) => k in cached.data)) return;
        try {
          const secret = await client!.readKv(apiPath);
          for (const k of keys)
            if (!(k in secret.data)) problems.push(`secret {vault: ${apiPath}#${k}}: the secret has no key "${k}"`);
          fetched.set(apiPath, this.entry(secret.data, keys, secret.leaseSeconds, secret.version, config.vault));
        } catch (err) {
          for (const k of keys) problems.push(`secret {vault: ${apiPath}#${k}}: ${(err as Error).message}`);
        }
      }),
    );
    if (problems.length > 0) {
      if (changed) void client?.close();
      throw new ConfigError(problems.sort());
    }
    if (changed) {
      void this.client?.close();
      this.client = client;
      this.settings = settings;
    }
    this.config = config.vault;
    for (const [apiPath, entry] of fetched) this.secrets.set(apiPath, entry);
    for (const [apiPath, keys] of wanted) {
      const cached = this.secrets.get(apiPath)!;
      for (const k of keys) cached.keys.add(k);
    }
    this.schedule();
  }

  /** Once a configuration is applied: secrets it no longer references are forgotten (and no longer refreshed). */
  retain(config: GatewayConfig): void {
    const wanted = new Map<string, Set<string>>();
    for (const r of collectVaultRefs(config)) {
      if (!wanted.has(r.path)) wanted.set(r.path, new Set());
      wanted.get(r.path)!.add(r.key);
    }
    for (const [p, s] of [...this.secrets]) {
      const keys = wanted.get(p);
      if (keys) s.keys = keys;
      else this.secrets.delete(p);
    }
    this.schedule();
  }

  /** Reads every secret whose refresh time has come; exposed so operators (and tests) can force one. */
  refresh(force = false): Promise<void> {
    this.refreshing ??= this.refreshDue(force).finally(() => {
      this.refreshing = undefined;
      this.schedule();
    });
    return this.refreshing;
  }

  /** For /readyz: ok while every referenced secret has a value (a stale one included), with staleness details. */
  readiness(): { ok: boolean; detail: Record<string, unknown> } {
    const stale: Array<Record<string, unknown>> = [];
    for (const [p, s] of this.secrets) {
      if (s.failingSince !== undefined)
        stale.push({ path: p, since: new Date(s.failingSince).toISOString(), error: s.lastError });
    }
    return { ok: true, detail: { address: this.config?.address, secrets: this.secrets.size, stale } };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.refreshing?.catch(() => undefined);
    await this.client?.close().catch(() => undefined);
  }

  private entry(
    data: Record<string, string>,
    keys: Set<string>,
    leaseSeconds: number,
    version: number | undefined,
    config = this.config,
  ): CachedSecret {
    const now = this.now();
    return {
      data,
      keys: new Set(keys),
      fetchedAt: now,
      nextRefreshAt: now + this.periodMs(leaseSeconds, config),
      ...(version !== undefined ? { version } : {}),
    };
  }

  private periodMs(leaseSeconds: number, config = this.config): number {
    const interval = config?.refresh_interval_s ?? 300;
    return (leaseSeconds > 0 ? Math.min(leaseSeconds, interval) : interval) * 1000;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.closed || this.secrets.size === 0) return;
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.secrets.values()) next = Math.min(next, s.nextRefreshAt);
    this.timer = setTimeout(() => void this.refresh(), Math.max(0, next - this.now()));
    this.timer.unref();
  }

  private async refreshDue(force: boolean): Promise<void> {
    const client = this.client;
    if (!client) return;
    const now = this.now();
    const rotated: string[] = [];
    await Promise.all(
      [...this.secrets].map(async ([apiPath, cached]) => {
        if (!force && cached.nextRefreshAt > now) return;
        try {
          const secret = await client.readKv(apiPath);
          if (this.secrets.get(apiPath) !== cached) return; // forgotten by a reload meanwhile
          const missing = [...cached.keys].filter((k) => !(k in secret.data));
          if (missing.length > 0)
            throw new VaultError(`vault: ${apiPath}: the secret no longer has key(s) ${missing.join(', ')}`, 200);
          const changed = [...cached.keys].some((k) => secret.data[k] !== cached.data[k]);
          if (cached.failingSince !== undefined) this.logger.info({ path: apiPath }, 'vault secret readable again');
          this.secrets.set(apiPath, this.entry(secret.data, cached.keys, secret.leaseSeconds, secret.version));
          if (changed) rotated.push(apiPath);
        } catch (err) {
          const reason = (err as Error).message;
          cached.failingSince ??= this.now();
          cached.lastError = reason;
          cached.nextRefreshAt = this.now() + Math.min(this.periodMs(0), (this.config?.retry_interval_s ?? 10) * 1000);
          this.logger.warn(
            { path: apiPath, reason, stale_since: new Date(cached.failingSince).toISOString() },
            'vault secret refresh failed; the last good value keeps serving',
          );
          this.events.emit({
            type: 'secret.refresh_failed',
            outcome: err instanceof VaultError && err.status !== undefined ? `status_${err.status}` : 'unreachable',
            data: { source: 'vault', path: apiPath },
          });
        }
      }),
    );
    if (rotated.length > 0 && !this.closed) {
      this.logger.info({ paths: rotated }, 'vault secret changed; reloading the configuration');
      for (const p of rotated)
        this.events.emit({
          type: 'secret.rotated',
          outcome: 'changed',
          data: { source: 'vault', path: p, version: this.secrets.get(p)?.version },
        });
      this.onRotated?.(rotated);
    }
  }
}
