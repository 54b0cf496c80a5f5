/** Media type matching for Content-Type checks: `type/subtype` exactly or `type/*`, parameters ignored. */

/** The lower-case `type/subtype` of a Content-Type value, or '' when absent. */
export function mediaTypeOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

export class MediaTypeMatcher {
  private readonly exact: ReadonlySet<string>;
  private readonly prefixes: readonly string[];

  constructor(types: readonly string[]) {
    this.exact = new Set(types.filter((t) => !t.endsWith('/*')).map((t) => t.toLowerCase()));
    this.prefixes = types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1).toLowerCase());
  }

  matches(mediaType: string): boolean {
    if (this.exact.has(mediaType)) return true;
    for (let i = 0; i < this.prefixes.length; i++) if (mediaType.startsWith(this.prefixes[i]!)) return true;
    return false;
  }
}
