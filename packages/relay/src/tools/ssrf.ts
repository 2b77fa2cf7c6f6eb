import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
}

/**
 * Only globally routable unicast addresses: no loopback, private, link-local (cloud metadata), CGNAT, multicast…
 * IPv6 forms that embed an IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`) is judged by the embedded
 * address; the deprecated IPv4-compatible range `::/96` (`::127.0.0.1`, also `::` and `::1`) is refused
 * whole; NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002::/16`), Teredo and SIIT (`::ffff:0:0:0/96`)
 * are not `unicast` to ipaddr.js, so they are refused too.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    // ipaddr.js reads `::a.b.c.d` as `::ffff:a.b.c.d`, but a socket connects to `::a.b.c.d` itself:
    // re-read the address in the all-hex form the WHATWG URL parser writes (`::7f00:1`).
    const hex = ipv6Hex(address);
    if (hex === undefined || !ipaddr.IPv6.isValid(hex)) return false;
    parsed = ipaddr.IPv6.parse(hex);
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
    else if (v6.parts.slice(0, 6).every((part) => part === 0)) return false;
  }
  return parsed.range() === 'unicast';
}

/** An IPv6 address without an embedded dotted quad, as `new URL()` serialises it; undefined if it cannot be read. */
function ipv6Hex(address: string): string | undefined {
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

export interface AddressPolicy {
  /** Hosts (exact names or IP literals) the config explicitly allows even when private. */
  allowHosts: readonly string[];
}

export function hostAllowed(host: string, policy: AddressPolicy): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return policy.allowHosts.some((allowed) => allowed.toLowerCase() === bare);
}

/**
 * A `dns.lookup` replacement for outgoing tool requests: resolves, then refuses unless every
 * address is public (or the host is allowed). Used at connect time, so redirects and DNS
 * rebinding are covered too.
 */
export function guardedLookup(policy: AddressPolicy) {
  return (
    hostname: string,
    options: { family?: number | string; all?: boolean },
    callback: (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void => {
    dnsLookup(hostname, { all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const allowed = hostAllowed(hostname, policy);
      const bad = addresses.find((a) => !allowed && !isPublicAddress(a.address));
      if (bad || addresses.length === 0) {
        return callback(
          Object.assign(
            new BlockedAddressError(
              `${hostname} resolves to a non-public address (${bad?.address ?? 'none'})`,
            ),
            { code: 'EBLOCKED' },
          ),
          '',
          0,
        );
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

/** IP literals never reach `lookup`: check them directly. */
export function assertLiteralAllowed(hostname: string, policy: AddressPolicy): void {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare) && !hostAllowed(bare, policy) && !isPublicAddress(bare)) {
    throw new BlockedAddressError(`${bare} is not a public address`);
  }
}
