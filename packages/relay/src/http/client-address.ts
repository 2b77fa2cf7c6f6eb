import ipaddr from 'ipaddr.js';

/**
 * The bucket a client address is counted in by the per-address limits: an IPv4 address as it is
 * (also when it arrives IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address by its /64 — one host
 * usually holds a whole /64, so counting single IPv6 addresses would give it unlimited buckets.
 * Anything else (`unknown`, a malformed forwarded value) is its own bucket.
 */
export function addressBucket(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
    else {
      const parts = v6.parts.slice(0, 4);
      return `${parts.map((p) => p.toString(16)).join(':')}::/64`;
    }
  }
  return parsed.toString();
}
