import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressBucket } from './client-address.js';

test('per-address limits count IPv4 addresses one by one and IPv6 addresses by their /64', () => {
  assert.equal(addressBucket('203.0.113.7'), '203.0.113.7');
  assert.equal(
    addressBucket('::ffff:203.0.113.7'),
    '203.0.113.7',
    'IPv4-mapped is the IPv4 address',
  );
  const a = addressBucket('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
  assert.equal(a, '2001:db8:1:2::/64');
  assert.equal(addressBucket('2001:db8:1:2::1'), a, 'another address of the same /64: same bucket');
  assert.notEqual(addressBucket('2001:db8:1:3::1'), a, 'the next /64: another bucket');
  assert.equal(addressBucket('unknown'), 'unknown');
});
