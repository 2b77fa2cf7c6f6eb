import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hostMatches, linkify, safeUrl } from './links.js';

const PAGE = 'https://acme.example/contact';
const HOSTS = ['acme.example', '*.acme-help.example', 'localhost:8787'];

describe('links in replies', () => {
  test('a Markdown link and a bare URL on allowed hosts become links; punctuation stays text', () => {
    assert.deepEqual(
      linkify(
        'See [our prices](https://acme.example/prices) or https://docs.acme-help.example/faq.',
        HOSTS,
        PAGE,
      ),
      [
        'See ',
        { href: 'https://acme.example/prices', text: 'our prices' },
        ' or ',
        { href: 'https://docs.acme-help.example/faq', text: 'https://docs.acme-help.example/faq' },
        '.',
      ],
    );
  });

  test('javascript:, data: and foreign hosts are never links', () => {
    const text =
      '[win](javascript:alert(1)) [x](data:text/html,hi) [book](https://evil.example/book) ' +
      'https://evil.example/a [y](JavaScript:void0) https://acme.example.evil.example/';
    const parts = linkify(text, HOSTS, PAGE);
    assert.ok(
      parts.every((part) => typeof part === 'string'),
      JSON.stringify(parts),
    );
    // A refused Markdown link keeps its label only, so the foreign URL is not offered for copying.
    assert.equal(
      parts.join(''),
      'win x book https://evil.example/a y https://acme.example.evil.example/',
    );
  });

  test('a wildcard covers subdomains, not the domain; a port in the pattern must match', () => {
    const url = (href: string) => new URL(href);
    assert.ok(hostMatches(url('https://help.acme-help.example/'), '*.acme-help.example'));
    assert.equal(hostMatches(url('https://acme-help.example/'), '*.acme-help.example'), false);
    assert.equal(hostMatches(url('https://xacme-help.example/'), '*.acme-help.example'), false);
    assert.ok(hostMatches(url('http://localhost:8787/chat'), 'localhost:8787'));
    assert.equal(hostMatches(url('http://localhost:9999/chat'), 'localhost:8787'), false);
    assert.ok(hostMatches(url('https://ACME.example/'), 'acme.example'));
  });

  test('relative Markdown links resolve against the page; protocol-relative and credentials do not pass', () => {
    assert.deepEqual(linkify('[Book](/book)', HOSTS, PAGE), [
      { href: 'https://acme.example/book', text: 'Book' },
    ]);
    assert.deepEqual(linkify('[x](//evil.example/a)', HOSTS, PAGE), ['x']);
    assert.equal(safeUrl('https://user:pw@acme.example/', HOSTS, PAGE), undefined);
  });

  test('a Markdown URL may hold parentheses', () => {
    assert.deepEqual(linkify('[Hours](https://acme.example/hours_(summer))!', HOSTS, PAGE), [
      { href: 'https://acme.example/hours_(summer)', text: 'Hours' },
      '!',
    ]);
  });

  test('plain text is one part, unchanged', () => {
    assert.deepEqual(linkify('We open at 9 (Monday).', HOSTS, PAGE), ['We open at 9 (Monday).']);
    assert.deepEqual(linkify('', HOSTS, PAGE), []);
  });
});
