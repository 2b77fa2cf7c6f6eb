import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
}

/** Only globally routable unicast addresses: no loopback, private, link-local (cloud metadata), CGNAT, multicast… */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  return parsed.range() === 'unicast';
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
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const allowed = hostAllowed(hostname, policy);
      const bad = addresses.find((a) => !allowed && !isPublicAddress(a.address));
      if (bad || addresses.length === 0) {
        return callback(Object.assign(new BlockedAddressError(`${hostname} resolves to a non-public address (${bad?.address ?? 'none'})`), { code: 'EBLOCKED' }), '', 0);
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
