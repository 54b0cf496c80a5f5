/**
 * A watched set of trust anchors: one bundle per SPIFFE trust domain (federation = several domains) plus plain CA
 * files for non-SPIFFE client certificates. Files are re-read when their directory changes (debounced, because
 * tools like spiffe-helper write several files one after another); a file that fails to parse keeps its previous
 * content in use, and a SPIFFE bundle whose `spiffe_sequence` goes backwards is refused as a rollback.
 *
 * Directory events can be lost (or watching can be impossible, e.g. when inotify instances run out), so the files'
 * metadata is also polled every few seconds as a backstop.
 *
 * Every change bumps `generation`, which per-connection verdict caches compare against, and notifies listeners
 * (the TLS listener swaps its context and rotates session ticket keys).
 */
import { readFileSync, type FSWatcher } from 'node:fs';
import { watchFileDirectories } from '../shared/file-watch.js';
import { stat } from 'node:fs/promises';
import { createHash, type X509Certificate } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { JWK } from 'jose';
import { parseTrustBundle, type TrustBundle } from './trust-bundle.js';
import { validateTrustDomain } from './spiffe-id.js';

export interface TrustDomainConfig {
  /** Trust domain name, e.g. `example.org`. */
  name: string;
  /** Bundle file: PEM certificates or a SPIFFE bundle (JWK Set). */
  bundle: string;
}

export interface TrustStoreConfig {
  trustDomains?: readonly TrustDomainConfig[];
  /** PEM files of CAs for plain (non-SPIFFE) client certificates. */
  caFiles?: readonly string[];
}

interface Source {
  file: string;
  /** Trust domain, or undefined for a plain CA file. */
  trustDomain: string | undefined;
  digest: string;
  bundle: TrustBundle;
}

export class TrustStore {
  private sources: Source[] = [];
  private byDomain = new Map<string, TrustBundle>();
  /** X.509 and JWT authorities pushed by the Workload API (own and federated trust domains), by trust domain. */
  private pushedX509 = new Map<string, readonly X509Certificate[]>();
  private pushedJwt = new Map<string, ReadonlyMap<string, JWK>>();
  private pushedDigest = '';
  private pushedJwtDigest = '';
  private plainRoots: X509Certificate[] = [];
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private readonly fileStamps = new Map<string, string>();
  private listeners: Array<() => void> = [];
  /** Increases on every change of any anchor. */
  generation = 0;

  /** Loads every file now; throws (with the file name) when one is missing or invalid. */
  constructor(
    config: TrustStoreConfig,
    baseDir: string,
    private readonly logger: Logger,
    private readonly debounceMs = 150,
    pollMs = 2000,
  ) {
    const seen = new Set<string>();
    for (const td of config.trustDomains ?? []) {
      const problem = validateTrustDomain(td.name);
      if (problem) throw new Error(`trust domain ${JSON.stringify(td.name)}: ${problem}`);
      if (seen.has(td.name)) throw new Error(`trust domain ${td.name} is configured twice`);
      seen.add(td.name);
      this.sources.push(this.load(path.resolve(baseDir, td.bundle), td.name));
    }
    for (const file of config.caFiles ?? []) this.sources.push(this.load(path.resolve(baseDir, file), undefined));
    this.index();
    this.watch();
    if (this.sources.length > 0) {
      void this.pollFiles();
      this.poller = setInterval(() => void this.pollFiles(), pollMs);
      this.poller.unref();
    }
  }

  /** Schedules a reload when a file's size, mtime or inode changed since the last poll. */
  private async pollFiles(): Promise<void> {
    let changed = false;
    for (const s of this.sources) {
      let stamp: string;
      try {
        const st = await stat(s.file);
        stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        stamp = 'missing';
      }
      const previous = this.fileStamps.get(s.file);
      this.fileStamps.set(s.file, stamp);
      if (previous !== undefined && previous !== stamp) changed = true;
    }
    if (changed) this.schedule();
  }

  get hasTrustDomains(): boolean {
    return this.byDomain.size > 0;
  }

  get hasPlainRoots(): boolean {
    return this.plainRoots.length > 0;
  }

  /** The bundle of a trust domain, or undefined when the domain is not trusted. */
  bundle(trustDomain: string): TrustBundle | undefined {
    return this.byDomain.get(trustDomain);
  }

  x509Authorities(trustDomain: string): readonly X509Certificate[] | undefined {
    return this.byDomain.get(trustDomain)?.x509Authorities;
  }

  get plainAuthorities(): readonly X509Certificate[] {
    return this.plainRoots;
  }

  /** Every X.509 authority as PEM: the listener's `ca` list, so clients know which CAs it accepts. */
  allAuthoritiesPem(): string[] {
    const out = new Set<string>();
    for (const b of this.byDomain.values()) for (const c of b.x509Authorities) out.add(c.toString());
    for (const c of this.plainRoots) out.add(c.toString());
    return [...out];
  }

  /**
   * Replaces the bundles received from the Workload API (each message is the whole state: a domain missing from
   * it is no longer trusted through it). Notifies listeners only when something changed.
   */
  setPushedBundles(bundles: ReadonlyMap<string, readonly X509Certificate[]>): void {
    const valid = this.validDomains(bundles);
    const digest = createHash('sha256');
    for (const td of [...valid.keys()].sort()) {
      digest.update(td);
      for (const c of valid.get(td)!) digest.update(c.raw);
    }
    const value = digest.digest('hex');
    if (value === this.pushedDigest) return;
    this.pushedDigest = value;
    this.pushedX509 = valid;
    this.changed();
  }

  /** Replaces the JWT bundles received from the Workload API (whole state, like setPushedBundles). */
  setPushedJwtBundles(bundles: ReadonlyMap<string, ReadonlyMap<string, JWK>>): void {
    const valid = this.validDomains(bundles);
    const value = createHash('sha256')
      .update(
        JSON.stringify(
          [...valid.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([td, keys]) => [td, [...keys.entries()]]),
        ),
      )
      .digest('hex');
    if (value === this.pushedJwtDigest) return;
    this.pushedJwtDigest = value;
    this.pushedJwt = valid;
    this.changed();
  }

  private validDomains<V>(bundles: ReadonlyMap<string, V>): Map<string, V> {
    const valid = new Map<string, V>();
    for (const [td, value] of bundles) {
      if (validateTrustDomain(td) !== undefined) {
        this.logger.warn({ trust_domain: td }, 'bundle with an invalid trust domain name ignored');
        continue;
      }
      valid.set(td, value);
    }
    return valid;
  }

  private changed(): void {
    this.index();
    this.generation++;
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.logger.error({ err }, 'trust bundle change listener failed');
      }
    }
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private load(file: string, trustDomain: string | undefined): Source {
    const content = readFileSync(file, 'utf8');
    const bundle = parseTrustBundle(content, file);
    if (trustDomain === undefined && bundle.jwtAuthorities.size > 0)
      throw new Error(`${file}: a client CA file holds X.509 certificates only`);
    return { file, trustDomain, digest: createHash('sha256').update(content).digest('hex'), bundle };
  }

  private index(): void {
    this.byDomain = new Map();
    this.plainRoots = [];
    // Configured bundle files win over pushed bundles of the same trust domain.
    for (const td of new Set([...this.pushedX509.keys(), ...this.pushedJwt.keys()])) {
      this.byDomain.set(td, {
        x509Authorities: this.pushedX509.get(td) ?? [],
        jwtAuthorities: this.pushedJwt.get(td) ?? new Map(),
        sequence: undefined,
        refreshHintS: undefined,
      });
    }
    for (const s of this.sources) {
      if (s.trustDomain !== undefined) this.byDomain.set(s.trustDomain, s.bundle);
      else this.plainRoots.push(...s.bundle.x509Authorities);
    }
  }

  /** Re-reads every file; returns true when anything changed. */
  reload(): boolean {
    let changed = false;
    this.sources = this.sources.map((s) => {
      let next: Source;
      try {
        next = this.load(s.file, s.trustDomain);
      } catch (err) {
        this.logger.warn(
          { file: s.file, reason: (err as Error).message },
          'trust bundle change refused; the previous bundle stays in use',
        );
        return s;
      }
      if (next.digest === s.digest) return s;
      if (
        s.bundle.sequence !== undefined &&
        next.bundle.sequence !== undefined &&
        next.bundle.sequence < s.bundle.sequence
      ) {
        this.logger.warn(
          { file: s.file, sequence: String(next.bundle.sequence), current: String(s.bundle.sequence) },
          'trust bundle refused: spiffe_sequence went backwards',
        );
        return s;
      }
      changed = true;
      this.logger.info(
        {
          file: s.file,
          trust_domain: s.trustDomain,
          authorities: next.bundle.x509Authorities.length,
          jwt_keys: next.bundle.jwtAuthorities.size,
        },
        'trust bundle loaded',
      );
      return next;
    });
    if (changed) this.changed();
    return changed;
  }

  private watch(): void {
    this.watchers.push(
      ...watchFileDirectories(
        this.sources.map((src) => src.file),
        () => this.schedule(),
        (dir, err) =>
          this.logger.warn(
            { dir, err: err.message },
            'cannot watch trust bundle directory; changes apply on config reload',
          ),
      ),
    );
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.debounceMs);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    clearInterval(this.poller);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.listeners = [];
  }
}
