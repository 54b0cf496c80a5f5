/**
 * The network part of an IPv6 address, as text: `2001:db8:1:2::/64` for prefix 64. Used to count IPv6 clients per
 * network rather than per address (one client usually holds a whole /64 and can rotate through it).
 */
import { isIP } from 'node:net';

/** Returns `address` unchanged for IPv4 (and IPv4-mapped IPv6), otherwise its first `prefix` bits. */
export function ipv6Network(address: string, prefix: number): string {
  if (prefix >= 128 || address.indexOf(':') === -1 || address.startsWith('::ffff:')) return address;
  if (isIP(address) !== 6) return address;
  const groups = expand(address);
  const out: string[] = [];
  let bits = prefix;
  for (let i = 0; i < 8 && bits > 0; i++) {
    const value = parseInt(groups[i]!, 16);
    const keep = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    out.push((value & keep).toString(16));
    bits -= 16;
  }
  return out.join(':') + '::/' + prefix;
}

function expand(address: string): string[] {
  const zone = address.indexOf('%');
  const plain = zone === -1 ? address : address.slice(0, zone);
  const [head, tail] = plain.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  if (tail === undefined) return left;
  const right = tail === '' ? [] : tail.split(':');
  return [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
}
