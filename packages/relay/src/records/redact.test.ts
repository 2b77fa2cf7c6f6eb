import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { luhnValid, redactText, redactValue } from './redact.js';

const ALL = ['email', 'phone', 'card'] as const;

describe('redaction', () => {
  test('Luhn: valid card numbers pass, one changed digit fails', () => {
    for (const card of [
      '4111111111111111',
      '5555555555554444',
      '378282246310005',
      '6011111111111117',
    ])
      assert.ok(luhnValid(card), card);
    assert.ok(!luhnValid('4111111111111112'));
    assert.ok(!luhnValid(''));
  });

  test('replaces e-mails, phone numbers and Luhn-valid card numbers, keeping the rest', () => {
    assert.equal(
      redactText(
        'Mail jane.doe+clinic@example.co.uk or call +1 (555) 123-4567, card 4111 1111 1111 1111.',
        [...ALL],
      ),
      'Mail [email] or call [phone], card [card].',
    );
    assert.equal(redactText('my number is 0612345678', [...ALL]), 'my number is [phone]');
    assert.equal(redactText('5555-5555-5555-4444 expires 12/27', [...ALL]), '[card] expires 12/27');
  });

  test('leaves dates, amounts, short numbers and Luhn-invalid 16-digit runs alone', () => {
    for (const text of [
      'Come on 2024-05-12 at 10.30',
      'It costs 120.50 dollars',
      'Room 12, age 42',
      'order 4111 1111 1111 1112',
    ])
      assert.equal(redactText(text, [...ALL]), text);
  });

  test('only the configured kinds', () => {
    const text = 'jane@example.com 4111111111111111 +44 20 7946 0958';
    assert.equal(redactText(text, ['email']), '[email] 4111111111111111 +44 20 7946 0958');
    assert.equal(redactText(text, ['card']), 'jane@example.com [card] +44 20 7946 0958');
    assert.equal(redactText(text, ['phone']), 'jane@example.com 4111111111111111 [phone]');
    assert.equal(redactText(text, []), text);
  });

  test('every string in a JSON value (tool arguments and results)', () => {
    assert.deepEqual(
      redactValue({ who: { email: 'a@b.io', n: 3 }, phones: ['+1 555 123 4567'], ok: true }, [
        ...ALL,
      ]),
      { who: { email: '[email]', n: 3 }, phones: ['[phone]'], ok: true },
    );
  });
});
