import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { servedFake } from './served.fixture.js';
import { structuredReply } from './structured.js';

/** The shape the relay's end-of-conversation analysis asks for (strict: every field required, nullable). */
const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['summary', 'sentiment', 'urgency', 'extracted'],
  properties: {
    summary: { type: 'string' },
    sentiment: { type: 'string', enum: ['positive', 'neutral', 'negative'] },
    urgency: { type: 'string', enum: ['low', 'normal', 'high'] },
    extracted: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'phone', 'preferred_day', 'insured', 'visits'],
      properties: {
        name: { type: ['string', 'null'] },
        phone: { type: ['string', 'null'], description: 'phone number' },
        preferred_day: { type: ['string', 'null'] },
        insured: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
        visits: { type: ['integer', 'null'] },
      },
    },
  },
};

const request = (transcript: string) => ({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'Analyse.' },
    { role: 'user', content: `The conversation:\n\n${transcript}` },
  ],
  response_format: { type: 'json_schema', json_schema: { name: 'a', strict: true, schema } },
});

const served = servedFake({});

describe('structured output (response_format json_schema)', () => {
  test('fills the analysis from the visitor lines, conforming to the schema', () => {
    const text = structuredReply(
      request(
        'Visitor: I have terrible tooth pain. My name is Jane Doe and my phone is +1 555 123 4567.\n' +
          'Assistant: I am sorry to hear that.\nVisitor: Tuesday works.',
      ),
    );
    const value = JSON.parse(text ?? 'null') as Record<string, unknown>;
    assert.deepEqual(value, {
      summary: 'I have terrible tooth pain.',
      sentiment: 'negative',
      urgency: 'high',
      extracted: {
        name: 'Jane Doe',
        phone: '+1 555 123 4567',
        preferred_day: 'tuesday',
        insured: null,
        visits: null,
      },
    });
  });

  test('a calm conversation is neutral and normal; unknown fields are null', () => {
    const value = JSON.parse(
      structuredReply(request('Visitor: When do you open on Saturdays?')) ?? 'null',
    ) as Record<string, unknown>;
    assert.equal(value['sentiment'], 'neutral');
    assert.equal(value['urgency'], 'normal');
    assert.deepEqual(value['extracted'], {
      name: null,
      phone: null,
      preferred_day: 'saturday',
      insured: null,
      visits: null,
    });
  });

  test('is off without response_format, and answered over HTTP by the default chat', async () => {
    assert.equal(structuredReply({ messages: [] }), undefined);
    const response = await served
      .client()
      .chat.completions.create(request('Visitor: Thanks, that was helpful.') as never);
    const value = JSON.parse(response.choices[0]?.message.content ?? 'null') as Record<
      string,
      unknown
    >;
    assert.equal(value['sentiment'], 'positive');
    assert.deepEqual(Object.keys(value), ['summary', 'sentiment', 'urgency', 'extracted']);
  });
});
