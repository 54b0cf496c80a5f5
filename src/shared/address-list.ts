/**
 * IP address lists (addresses and CIDR ranges, IPv4 and IPv6) on node:net BlockList, parsed once: trusted proxies,
 * decision front proxies, network-rules allow and deny lists, the KYC rules' in_cidr(). Prefix lengths must be
 * plain decimal numbers in range ("10.0.0.0/" or "10.0.0.0/0x8" are refused, never read as /0).
 */
import { BlockList, isIP } from 'node:net';

/** Schema pattern of one list entry (the constructor checks the address and the prefix exactly). */
export const ADDRESS_OR_CIDR = '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)(/[0-9]{1,3})?$';

export class AddressList {
  // One list per family: a single BlockList matches IPv4 addresses against IPv6 ranges such as ::/64.
  private readonly v4 = new BlockList();
  private readonly v6 = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[], what: string) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const address = slash === -1 ? entry : entry.slice(0, slash);
      const family = isIP(address);
      if (family === 0) throw new Error(`${what}: "${entry}" is not an IP address or CIDR range`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      const list = family === 6 ? this.v6 : this.v4;
      if (slash === -1) {
        list.addAddress(address, type);
        continue;
      }
      const bits = entry.slice(slash + 1);
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (family === 6 ? 128 : 32))
        throw new Error(`${what}: "${entry}" has an invalid prefix length`);
      list.addSubnet(address, prefix, type);
    }
  }

  /** True when `address` is in the list. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked as IPv4. */
  has(address: string): boolean {
    if (this.empty) return false;
    if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return this.v4.check(address.slice(7), 'ipv4');
    const family = isIP(address);
    if (family === 4) return this.v4.check(address, 'ipv4');
    return family === 6 && this.v6.check(address, 'ipv6');
  }
}
