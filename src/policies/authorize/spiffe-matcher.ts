/**
 * Matches SPIFFE IDs against an allow list of exact IDs, trust domains (`spiffe://td`) and path prefixes
 * (`spiffe://td/ns/prod/*`). Compiled once: exact IDs and trust domains are set lookups, prefixes a short scan.
 */
export class SpiffeIdMatcher {
  private readonly exact = new Set<string>();
  private readonly trustDomains = new Set<string>();
  /** Prefixes ending in `/`: `spiffe://td/ns/prod/*` is stored as `spiffe://td/ns/prod/`. */
  private readonly prefixes: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      if (p.endsWith('/*')) this.prefixes.push(p.slice(0, -1));
      else if (p.indexOf('/', 'spiffe://'.length) === -1) this.trustDomains.add(p);
      else this.exact.add(p);
    }
  }

  matches(id: string | undefined): boolean {
    if (id === undefined || !id.startsWith('spiffe://')) return false;
    if (this.exact.has(id)) return true;
    const slash = id.indexOf('/', 9);
    if (this.trustDomains.has(slash === -1 ? id : id.slice(0, slash))) return true;
    for (const prefix of this.prefixes) {
      if (id.length > prefix.length && id.startsWith(prefix)) return true;
    }
    return false;
  }
}
