import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  InvalidOriginPattern,
  isOriginAllowed,
  normaliseOrigin,
  parseOriginPattern,
} from './origins.js';

test('exact origins match only themselves, with default ports normalised', () => {
  const allowed = ['https://shop.example.com', 'http://localhost:8787'];
  assert.equal(isOriginAllowed('https://shop.example.com', allowed), true);
  assert.equal(isOriginAllowed('https://shop.example.com:443', allowed), true);
  assert.equal(isOriginAllowed('http://localhost:8787', allowed), true);
  assert.equal(isOriginAllowed('http://localhost:8788', allowed), false);
  assert.equal(isOriginAllowed('http://shop.example.com', allowed), false, 'scheme matters');
  assert.equal(isOriginAllowed('https://evil-shop.example.com', allowed), false);
  assert.equal(isOriginAllowed('https://shop.example.com.evil.io', allowed), false);
  assert.equal(isOriginAllowed(undefined, allowed), false);
  assert.equal(isOriginAllowed('null', allowed), false, 'sandboxed iframes send Origin: null');
});

test('a wildcard matches subdomains only, never the bare domain or look-alikes', () => {
  const allowed = ['https://*.example.com'];
  assert.equal(isOriginAllowed('https://a.example.com', allowed), true);
  assert.equal(isOriginAllowed('https://a.b.example.com', allowed), true);
  assert.equal(isOriginAllowed('https://example.com', allowed), false);
  assert.equal(isOriginAllowed('https://badexample.com', allowed), false);
  assert.equal(isOriginAllowed('http://a.example.com', allowed), false);
  assert.equal(isOriginAllowed('https://a.example.com:8443', allowed), false);
  assert.equal(isOriginAllowed('https://a.example.com.evil.io', allowed), false);
});

test('patterns that are not origins are rejected with a clear error', () => {
  for (const bad of [
    'example.com',
    'https://example.com/path',
    'ftp://example.com',
    'https://*',
    'https://*.com.',
    'https://user@example.com',
  ]) {
    assert.throws(() => parseOriginPattern(bad), InvalidOriginPattern, bad);
  }
  assert.equal(normaliseOrigin('HTTPS://Example.COM'), 'https://example.com');
});
