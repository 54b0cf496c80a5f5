/**
 * The client address behind trusted proxies, from X-Forwarded-For: the right-most hop that is not a trusted proxy
 * (hops further left were written by whoever the client is and cannot be trusted). One rule for proxied requests
 * and decision requests. A hop may carry a port (`203.0.113.9:1234`, `[2001:db8::1]:443`, as some load balancers
 * write them); anything else that is not an IP address makes the header unusable, so a malformed hop can never
 * become a client address that IP rules fail to match.
 */
import { isIP } from 'node:net';

const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const IPV6_BRACKETED = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/;

/** The IP address of one hop, without a port; undefined when it is not an address. */
function hopAddress(hop: string): string | undefined {
  if (isIP(hop) !== 0) return hop;
  const m = IPV4_WITH_PORT.exec(hop) ?? IPV6_BRACKETED.exec(hop);
  return m !== null && isIP(m[1]!) !== 0 ? m[1] : undefined;
}

export type ForwardedClient =
  | { kind: 'client'; address: string }
  /** Every hop is a trusted proxy: `leftmost` is the first of them. */
  | { kind: 'all-trusted'; leftmost: string }
  | { kind: 'invalid' }
  | { kind: 'absent' };

/** Reads X-Forwarded-For (values of repeated headers joined with commas) against the trusted proxies. */
export function clientFromForwardedFor(
  xff: string | string[] | undefined,
  trusted: { has(address: string): boolean },
): ForwardedClient {
  if (xff === undefined) return { kind: 'absent' };
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  let leftmost: string | undefined;
  for (let i = hops.length - 1; i >= 0; i--) {
    const raw = hops[i]!.trim();
    if (raw === '') continue;
    const address = hopAddress(raw);
    if (address === undefined) return { kind: 'invalid' };
    if (!trusted.has(address)) return { kind: 'client', address };
    leftmost = address;
  }
  return leftmost === undefined ? { kind: 'absent' } : { kind: 'all-trusted', leftmost };
}
