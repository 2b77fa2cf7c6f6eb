import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  createFakeUpstream,
  type FakeUpstream,
  type FakeUpstreamOptions,
} from '@voice-bot/fake-provider';
import type { ProvidersConfig } from '@voice-bot/relay';
import { openStartedTalk, startRelay, type RelayHarness } from './support/relay.js';

const REPLY = 'The backup provider answers. It speaks in two sentences.';
/** One second of 16 kHz PCM16 (the fake transcribes anything). */
const UTTERANCE = new Uint8Array(32_000);

interface FirstProvider {
  upstream: FakeUpstream;
  url: string;
  close(): Promise<void>;
}

async function fake(options: FakeUpstreamOptions): Promise<FirstProvider> {
  const upstream = createFakeUpstream(options);
  const served = await upstream.listen(0);
  return { upstream, url: served.url, close: served.close };
}

/** An address where nothing listens: connections are refused. */
async function refusingUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/v1`;
}

/** Every stage on `first` (one URL per stage), then on `backup`; a circuit opens at the first failure. */
function providers(
  first: { stt: string; llm: string; tts: string },
  backup: string,
  firstByteTimeoutMs?: number,
): ProvidersConfig {
  const stage = (baseURL: string, model: string) => ({
    baseURL,
    apiKey: 'sk-first-secret',
    name: 'first',
    model,
    timeoutMs: 5_000,
    maxRetries: 2,
    ...(firstByteTimeoutMs ? { firstByteTimeoutMs } : {}),
    fallbacks: [{ baseURL: backup, apiKey: 'sk-backup-secret', name: 'backup' }],
  });
  return {
    stt: stage(first.stt, 'whisper-1'),
    llm: stage(first.llm, 'gpt-4o-mini'),
    tts: { ...stage(first.tts, 'gpt-4o-mini-tts'), voice: 'alloy' },
    circuit: { failures: 1, openMs: 60_000 },
  };
}

/** One audio turn: its transcript, reply text and audio bytes, or the error code that ended it. */
async function audioTurn(h: RelayHarness): Promise<{
  transcript?: string;
  reply: string;
  audioBytes: number;
  promptTokens?: number;
  error?: string;
}> {
  const talk = await openStartedTalk(h);
  try {
    await talk.next('status', (m) => m.state === 'listening');
    await talk.sendPcm(UTTERANCE);
    talk.send({ type: 'commit' });
    const end = await Promise.race([talk.next('done'), talk.next('error')]);
    const turn = talk.of('transcript')[0]?.turn_id;
    return {
      ...(talk.of('transcript')[0] ? { transcript: talk.of('transcript')[0]?.text } : {}),
      reply: talk
        .of('text_delta')
        .map((d) => d.delta)
        .join(''),
      audioBytes: turn === undefined ? 0 : talk.audioBytes(turn),
      ...(end.type === 'error' ? { error: end.code } : {}),
      ...(end.type === 'done' ? { promptTokens: end.metrics?.prompt_tokens } : {}),
    };
  } finally {
    talk.close();
  }
}

function metric(text: string, line: RegExp): number | undefined {
  for (const row of text.split('\n')) {
    const value = line.exec(row) ? Number(row.split(' ').at(-1)) : undefined;
    if (value !== undefined) return value;
  }
  return undefined;
}

describe('provider failover through the relay (two fake providers)', () => {
  let backup: FirstProvider;
  const relays: RelayHarness[] = [];
  const firsts: FirstProvider[] = [];
  before(async () => {
    backup = await fake({ chat: () => ({ content: REPLY }) });
  });
  after(async () => {
    for (const h of relays) await h.close();
    for (const f of firsts) await f.close();
    await backup.close();
  });

  async function relay(
    first: { stt: string; llm: string; tts: string },
    firstByteTimeoutMs?: number,
  ): Promise<RelayHarness> {
    const h = await startRelay({
      relay: { metrics: 'public', providers: providers(first, backup.url, firstByteTimeoutMs) },
    });
    relays.push(h);
    return h;
  }

  test('503 on STT, LLM and TTS: the turn completes on the backup, the next one skips the dead provider', async () => {
    const dead = await fake({
      transcribe: () => ({ fail: 'http', status: 503 }),
      chat: () => ({ fail: 'http', status: 503 }),
      speech: () => ({ fail: 'http', status: 503 }),
    });
    firsts.push(dead);
    const h = await relay({ stt: dead.url, llm: dead.url, tts: dead.url });
    const mark = backup.upstream.requests.length;

    const turn = await audioTurn(h);
    assert.equal(turn.error, undefined);
    assert.match(turn.transcript ?? '', /I heard/);
    assert.equal(turn.reply, REPLY);
    assert.ok(turn.audioBytes > 0, 'the reply was spoken');
    const kinds = (requests: { kind: string }[]) => new Set(requests.map((r) => r.kind));
    assert.deepEqual(kinds(dead.upstream.requests), new Set(['transcription', 'chat', 'speech']));
    const count = (kind: string) => dead.upstream.requests.filter((r) => r.kind === kind).length;
    assert.deepEqual(
      [count('transcription'), count('chat')],
      [1, 1],
      'no retries on the dead provider: the backup was next',
    );
    assert.deepEqual(
      kinds(backup.upstream.requests.slice(mark)),
      new Set(['transcription', 'chat', 'speech']),
    );

    const spoken = backup.upstream.requests
      .slice(mark)
      .filter((r) => r.kind === 'speech')
      .reduce((n, r) => n + (r.body as { input: string }).input.length, 0);
    const [today] = await h.relay.usage.history(h.keyId, 1);
    assert.equal(today?.tts_chars, spoken, 'each sentence charged once, not once per provider');
    assert.equal(
      today?.prompt_tokens,
      turn.promptTokens,
      'the prompt estimate is charged once and corrected by the answering provider',
    );

    const metrics = await metricsOf(h);
    for (const stage of ['stt', 'llm', 'tts']) {
      assert.ok(
        (metric(
          metrics,
          new RegExp(
            `^voicebot_provider_failovers_total\\{stage="${stage}",from="first",to="backup"\\}`,
          ),
        ) ?? 0) >= 1,
        `a ${stage} failover is counted`,
      );
      assert.equal(
        metric(
          metrics,
          new RegExp(`^voicebot_provider_circuit_state\\{stage="${stage}",provider="first"\\}`),
        ),
        2,
        `the ${stage} circuit of the dead provider is open`,
      );
    }
    assert.ok(
      (metric(
        metrics,
        /^voicebot_provider_requests_total\{stage="llm",provider="first",outcome="server_error"\}/,
      ) ?? 0) >= 1,
    );
    assert.doesNotMatch(metrics, /sk-|http:\/\//, 'no keys or URLs in the labels');

    const seen = dead.upstream.requests.length;
    const next = await audioTurn(h);
    assert.equal(next.reply, REPLY);
    assert.equal(dead.upstream.requests.length, seen, 'the dead provider got no request');
  });

  test('refused connections and a provider that never answers (first-byte timeout) fail over within the turn', async () => {
    const hanging = await fake({
      chat: () => ({ fail: 'hang' }),
      speech: () => ({ fail: 'hang' }),
    });
    firsts.push(hanging);
    const h = await relay({ stt: await refusingUrl(), llm: hanging.url, tts: hanging.url }, 400);
    const started = performance.now();
    const turn = await audioTurn(h);
    assert.equal(turn.error, undefined);
    assert.match(turn.transcript ?? '', /I heard/);
    assert.equal(turn.reply, REPLY);
    assert.ok(turn.audioBytes > 0);
    assert.ok(performance.now() - started < 4_000, 'two first-byte timeouts, not the 5 s one');
    const metrics = await metricsOf(h);
    assert.equal(
      metric(
        metrics,
        /^voicebot_provider_requests_total\{stage="stt",provider="first",outcome="connect_error"\}/,
      ),
      1,
    );
    assert.ok(
      (metric(
        metrics,
        /^voicebot_provider_requests_total\{stage="llm",provider="first",outcome="timeout"\}/,
      ) ?? 0) >= 1,
    );
  });

  test('a 400 is the request at fault: no failover, the turn reports the LLM error', async () => {
    const picky = await fake({ chat: () => ({ fail: 'http', status: 400 }) });
    firsts.push(picky);
    const h = await relay({ stt: picky.url, llm: picky.url, tts: picky.url });
    const mark = backup.upstream.requests.length;
    const turn = await audioTurn(h);
    assert.equal(turn.error, 'upstream_llm');
    assert.deepEqual(
      backup.upstream.requests.slice(mark).map((r) => r.kind),
      [],
      'the backup got nothing',
    );
    const metrics = await metricsOf(h);
    assert.equal(metric(metrics, /^voicebot_provider_failovers_total\{stage="llm"/), undefined);
  });
});

async function metricsOf(h: RelayHarness): Promise<string> {
  return (await fetch(`${h.url}/metrics`)).text();
}
