/**
 * Structured output (`response_format: {type: "json_schema"}`), answered deterministically from the
 * request's user messages with JSON that conforms to the schema: the conversation analysis the
 * relay asks for gets a summary (the visitor's first sentence), a sentiment and an urgency from
 * keywords, and string fields found by simple patterns (a name after "my name is", a phone number,
 * a day of the week); everything else is null, or the first choice, or empty.
 */
import { isRecord } from './exchange.js';

type Schema = Record<string, unknown>;

const NEGATIVE =
  /\b(angry|upset|terrible|awful|bad|worst|disappointed|unhappy|annoyed|rude|hate|complain)/i;
const POSITIVE =
  /\b(thanks?|thank you|great|perfect|wonderful|excellent|happy|love|awesome|helpful)\b/i;
const HIGH =
  /\b(urgent|urgently|emergency|asap|immediately|right away|severe|pain|bleeding|hurts?)\b/i;
const LOW = /\b(no rush|whenever|sometime|just wondering|curious)\b/i;
const NAME = /\b[Mm]y name is ([A-Z][\p{L}'-]+(?: [A-Z][\p{L}'-]+)?)/u;
const PHONE = /\+?\d[\d\s().-]{5,}\d/;
const EMAIL = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/;
const DAY = /\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow)s?\b/i;

/** The visitor's lines: user messages, and "Visitor: …" lines inside them (a transcript). */
function visitorText(messages: unknown[]): string {
  const parts: string[] = [];
  for (const message of messages) {
    if (!isRecord(message) || message['role'] !== 'user') continue;
    const content = message['content'];
    const text =
      typeof content === 'string'
        ? content
        : Array.isArray(content)
          ? content
              .map((p) => (isRecord(p) && typeof p['text'] === 'string' ? p['text'] : ''))
              .join('')
          : '';
    const lines = text.split('\n').filter((line) => line.startsWith('Visitor: '));
    parts.push(
      lines.length > 0 ? lines.map((line) => line.slice('Visitor: '.length)).join('\n') : text,
    );
  }
  return parts.join('\n').trim();
}

function firstSentence(text: string): string {
  const line = text.split('\n')[0] ?? '';
  const match = /^.*?[.!?](?=\s|$)/.exec(line);
  return (match ? match[0] : line).trim().slice(0, 300);
}

function types(schema: Schema): string[] {
  const type = schema['type'];
  if (typeof type === 'string') return [type];
  if (Array.isArray(type)) return type.filter((t): t is string => typeof t === 'string');
  return [];
}

/** A value for a string field, guessed from its name (and description). */
function guess(name: string, schema: Schema, text: string): string | undefined {
  const about =
    `${name} ${typeof schema['description'] === 'string' ? schema['description'] : ''}`.toLowerCase();
  if (about.includes('name')) return NAME.exec(text)?.[1];
  if (about.includes('phone') || about.includes('number')) return PHONE.exec(text)?.[0].trim();
  if (about.includes('mail')) return EMAIL.exec(text)?.[0];
  if (about.includes('day') || about.includes('date')) return DAY.exec(text)?.[1]?.toLowerCase();
  return undefined;
}

/** A value that conforms to `schema`, filled from `text` where the field is recognised. */
export function valueFor(schema: Schema, text: string, name = ''): unknown {
  const anyOf = schema['anyOf'];
  if (Array.isArray(anyOf)) {
    const options = anyOf.filter(isRecord);
    const concrete = options.find((o) => !types(o).includes('null'));
    if (!concrete) return null;
    const orNull = options.some((o) => types(o).includes('null'));
    return valueFor(
      orNull && types(concrete).length > 0
        ? { ...concrete, type: [...types(concrete), 'null'] }
        : concrete,
      text,
      name,
    );
  }
  const enumValues = schema['enum'];
  const allowed = types(schema);
  if (Array.isArray(enumValues) && enumValues.length > 0) {
    if (name === 'sentiment')
      return NEGATIVE.test(text) ? 'negative' : POSITIVE.test(text) ? 'positive' : 'neutral';
    if (name === 'urgency') return HIGH.test(text) ? 'high' : LOW.test(text) ? 'low' : 'normal';
    return enumValues[0];
  }
  const nullable = allowed.includes('null');
  if (allowed.includes('object')) {
    const properties = isRecord(schema['properties']) ? schema['properties'] : {};
    return Object.fromEntries(
      Object.entries(properties).map(([key, sub]) => [
        key,
        isRecord(sub) ? valueFor(sub, text, key) : null,
      ]),
    );
  }
  if (allowed.includes('string')) {
    if (name === 'summary') return firstSentence(text);
    const found = guess(name, schema, text);
    if (found !== undefined) return found;
    return nullable ? null : '';
  }
  if (nullable) return null;
  if (allowed.includes('array')) return [];
  if (allowed.includes('boolean')) return false;
  if (allowed.includes('integer') || allowed.includes('number')) return 0;
  return null;
}

/**
 * The JSON text answering a request with `response_format: {type: "json_schema"}`, or undefined
 * for any other request.
 */
export function structuredReply(body: Record<string, unknown>): string | undefined {
  const format = body['response_format'];
  if (!isRecord(format) || format['type'] !== 'json_schema') return undefined;
  const spec = format['json_schema'];
  const schema = isRecord(spec) && isRecord(spec['schema']) ? spec['schema'] : { type: 'object' };
  const messages = Array.isArray(body['messages']) ? body['messages'] : [];
  return JSON.stringify(valueFor(schema, visitorText(messages)));
}
