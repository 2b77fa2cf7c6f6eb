import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { APIConnectionTimeoutError, APIUserAbortError, BadRequestError } from 'openai';
import { createFakeUpstream, type FakeUpstream } from '@voice-bot/fake-provider';
import {
  ConfigError,
  applyConfigFile,
  providersFromEnv,
  type ProvidersConfig,
  type StageConfig,
} from '../config/config.js';
import { parseConfigFile } from '../config/settings.js';
import { streamChat } from '../pipeline/stages/llm.js';
import { transcribe } from '../pipeline/stages/stt.js';
import { CircuitBreaker } from './circuit.js';
import type { CircuitReading, ProviderObserver, ProviderOutcome } from './failover.js';
import { createProviderClients } from './providers.js';

class Recorder implements ProviderObserver {
  readonly requests: string[] = [];
  readonly failovers: string[] = [];
  circuits: () => CircuitReading[] = () => [];
  providerRequest(stage: string, provider: string, outcome: ProviderOutcome): void {
    this.requests.push(`${stage}/${provider}/${outcome}`);
  }
  providerFailover(stage: string, from: string, to: string): void {
    this.failovers.push(`${stage}: ${from} -> ${to}`);
  }
  watchCircuits(read: () => CircuitReading[]): void {
    this.circuits = read;
  }
}

describe('failover settings', () => {
  const parse = (providers: unknown) =>
    parseConfigFile(JSON.stringify({ providers }), 'voicebot.config.json');

  it('reads fallbacks and the circuit from the file, keys only from the environment', () => {
    const file = parse({
      llm: {
        name: 'openai',
        firstByteTimeoutMs: 1500,
        fallbacks: [
          {
            name: 'groq',
            baseURL: 'https://api.groq.com/openai/v1',
            apiKeyEnv: 'GROQ_KEY',
            model: 'llama-3.1-8b-instant',
          },
        ],
      },
      tts: { fallbacks: [{ baseURL: 'http://localhost:8880/v1', voice: 'af_heart' }] },
      circuit: { failures: 5 },
    });
    const env = { OPENAI_API_KEY: 'sk-primary', GROQ_KEY: 'gsk-fallback' };
    const { providers } = applyConfigFile(file, env);
    assert.deepEqual(providers?.llm.fallbacks, [
      {
        name: 'groq',
        baseURL: 'https://api.groq.com/openai/v1',
        model: 'llama-3.1-8b-instant',
        apiKey: 'gsk-fallback',
      },
    ]);
    assert.equal(providers?.llm.firstByteTimeoutMs, 1500);
    assert.deepEqual(
      providers?.tts.fallbacks,
      [{ baseURL: 'http://localhost:8880/v1', voice: 'af_heart' }],
      "a fallback never inherits the stage's key",
    );
    assert.deepEqual(providers?.circuit, { failures: 5, openMs: 30_000 });
  });

  it('refuses what cannot work, naming the field', () => {
    assert.throws(
      () => parse({ llm: { name: 'a', fallbacks: [{ name: 'a', baseURL: 'http://b.test/v1' }] } }),
      /providers\.llm: provider names must differ/,
    );
    assert.throws(
      () => parse({ embeddings: { fallbacks: [{ baseURL: 'http://b.test/v1' }] } }),
      /providers\.embeddings/,
    );
    assert.throws(
      () => parse({ stt: { fallbacks: [{ baseURL: 'not a url' }] } }),
      /providers\.stt\.fallbacks\[0\]\.baseURL: must be a URL/,
    );
    assert.throws(
      () =>
        applyConfigFile(
          parse({ stt: { fallbacks: [{ baseURL: 'http://b.test/v1', apiKeyEnv: 'UNSET_KEY' }] } }),
          {},
        ),
      (error: unknown) =>
        error instanceof ConfigError &&
        /providers\.stt\.fallbacks\[0\]\.apiKeyEnv names UNSET_KEY/.test(error.message),
    );
  });

  it('takes one fallback per stage from VOICEBOT_<STAGE>_FALLBACK_*', () => {
    const providers = providersFromEnv({
      OPENAI_API_KEY: 'sk-primary',
      VOICEBOT_LLM_FALLBACK_BASE_URL: 'http://localhost:11434/v1',
      VOICEBOT_LLM_FALLBACK_MODEL: 'llama3.2',
    });
    assert.deepEqual(providers.llm.fallbacks, [
      { baseURL: 'http://localhost:11434/v1', model: 'llama3.2' },
    ]);
    assert.equal(providers.stt.fallbacks, undefined);
  });
});

describe('CircuitBreaker', () => {
  it('opens after the failures in a row, lets one probe through after openMs, and closes on its success', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failures: 2, openMs: 1000 }, () => now);
    assert.equal(breaker.failure(), false);
    breaker.success();
    assert.equal(breaker.failure(), false, 'a success in between resets the count');
    assert.equal(breaker.failure(), true, 'the second failure in a row opens it');
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.available, false);
    now = 999;
    assert.equal(breaker.available, false);
    now = 1000;
    assert.equal(breaker.state, 'half_open');
    assert.equal(breaker.available, true);
    breaker.acquire();
    assert.equal(breaker.available, false, 'one probe at a time');
    breaker.failure();
    assert.equal(breaker.state, 'open', 'a failed probe opens it again');
    now = 1999;
    assert.equal(breaker.state, 'open', 'for another openMs from the probe');
    now = 2000;
    breaker.acquire();
    breaker.release();
    assert.equal(breaker.available, true, 'an aborted probe frees the slot');
    breaker.acquire();
    breaker.success();
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.failure(), false, 'closed again: the count starts over');
  });
});

describe('FailoverClient', () => {
  let recovered = false;
  const failing = createFakeUpstream({
    chat: (req) =>
      req.model === 'bad-request'
        ? { fail: 'http', status: 400 }
        : req.model === 'revoked-key'
          ? { fail: 'http', status: 401 }
          : req.model === 'cut'
            ? { fail: 'cut', afterChunks: 2 }
            : req.model === 'recovering' && recovered
              ? { content: 'the first provider is back' }
              : { fail: 'http', status: 503 },
    transcribe: () => ({ fail: 'http', status: 429, retryAfter: 0 }),
  });
  const healthy = createFakeUpstream({ chat: () => ({ content: 'from the second provider' }) });
  const served: { url: string; close(): Promise<void> }[] = [];
  /** Answers headers at once, then never a body byte. */
  let silent: Server;
  let silentUrl: string;
  let refusedUrl: string;

  before(async () => {
    served.push(await failing.listen(0), await healthy.listen(0));
    silent = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`;
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    refusedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/v1`;
    await new Promise((resolve) => closed.close(resolve));
  });

  after(async () => {
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
    for (const s of served) await s.close();
  });

  const stage = (extra: Partial<StageConfig>): StageConfig => ({
    baseURL: served[0]?.url,
    name: 'first',
    model: 'm',
    timeoutMs: 5_000,
    maxRetries: 0,
    fallbacks: [{ baseURL: served[1]?.url ?? '', name: 'second', model: 'fallback-model' }],
    ...extra,
  });
  const clients = (llm: StageConfig, recorder = new Recorder(), now?: () => number) => {
    const config: ProvidersConfig = {
      stt: stage({}),
      llm,
      tts: { ...stage({}), voice: 'v' },
      circuit: { failures: 1, openMs: 60_000 },
    };
    return {
      recorder,
      ...createProviderClients(config, undefined, { observer: recorder, ...(now ? { now } : {}) }),
    };
  };
  const chat = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'hi' }] });
  const signal = () => new AbortController().signal;
  const since = (upstream: FakeUpstream, from: number) => upstream.requests.slice(from);

  it('moves a 503 to the next provider with its model, then skips the first while its circuit is open', async () => {
    const { llm, recorder } = clients(stage({}));
    const [f, h] = [failing.requests.length, healthy.requests.length];
    let text = '';
    await streamChat(llm, chat('m'), signal(), (t) => void (text += t));
    assert.equal(text, 'from the second provider');
    assert.equal(since(failing, f).length, 1);
    assert.deepEqual(
      since(healthy, h).map((r) => (r.body as { model: string }).model),
      ['fallback-model'],
      'the fallback gets its own model, the rest of the request unchanged',
    );
    assert.deepEqual(recorder.requests, ['llm/first/server_error', 'llm/second/ok']);
    assert.deepEqual(recorder.failovers, ['llm: first -> second']);
    assert.deepEqual(
      recorder.circuits().filter((c) => c.stage === 'llm'),
      [
        { stage: 'llm', provider: 'first', state: 'open' },
        { stage: 'llm', provider: 'second', state: 'closed' },
      ],
    );

    await streamChat(llm, chat('m'), signal(), () => undefined);
    assert.equal(since(failing, f).length, 1, 'the open circuit skips the dead provider');
    assert.equal(since(healthy, h).length, 2);
  });

  it('does not fail over a 400 (the request is at fault, not the provider)', async () => {
    const { llm, recorder } = clients(stage({}));
    const h = healthy.requests.length;
    await assert.rejects(
      streamChat(llm, chat('bad-request'), signal(), () => undefined),
      BadRequestError,
    );
    assert.equal(since(healthy, h).length, 0);
    assert.deepEqual(recorder.requests, ['llm/first/client_error']);
  });

  it('fails over a 401: the next provider has its own key', async () => {
    const { llm, recorder } = clients(stage({}));
    let text = '';
    await streamChat(llm, chat('revoked-key'), signal(), (t) => void (text += t));
    assert.equal(text, 'from the second provider');
    assert.deepEqual(recorder.requests, ['llm/first/auth_error', 'llm/second/ok']);
  });

  it('probes an open circuit after openMs and closes it when the provider is back', async () => {
    let now = 0;
    const { llm, recorder } = clients(stage({}), new Recorder(), () => now);
    const f = failing.requests.length;
    const reply = async () => {
      let text = '';
      await streamChat(llm, chat('recovering'), signal(), (t) => void (text += t));
      return text;
    };
    assert.equal(await reply(), 'from the second provider');
    assert.equal(await reply(), 'from the second provider');
    assert.equal(since(failing, f).length, 1, 'skipped while open');
    now = 60_000;
    assert.equal(await reply(), 'from the second provider', 'the probe fails: open again');
    assert.equal(since(failing, f).length, 2);
    assert.equal(recorder.circuits().find((c) => c.stage === 'llm')?.state, 'open');
    recovered = true;
    now = 120_000;
    assert.equal(await reply(), 'the first provider is back');
    assert.equal(recorder.circuits().find((c) => c.stage === 'llm')?.state, 'closed');
    assert.equal(await reply(), 'the first provider is back');
  });

  it('never fails over once the response body has started', async () => {
    const { llm, recorder } = clients(stage({}));
    const h = healthy.requests.length;
    let text = '';
    await assert.rejects(streamChat(llm, chat('cut'), signal(), (t) => void (text += t)));
    assert.notEqual(text, '', 'some text was streamed before the cut');
    assert.equal(since(healthy, h).length, 0);
    assert.deepEqual(recorder.requests, ['llm/first/ok']);
  });

  it(
    'fails over a refused connection and a body that never starts (first-byte timeout)',
    { timeout: 10_000 },
    async () => {
      for (const [baseURL, outcome] of [
        [refusedUrl, 'connect_error'],
        [silentUrl, 'timeout'],
      ] as const) {
        const { llm, recorder } = clients(stage({ baseURL, firstByteTimeoutMs: 200 }));
        const started = performance.now();
        let text = '';
        await streamChat(llm, chat('m'), signal(), (t) => void (text += t));
        assert.equal(text, 'from the second provider');
        assert.ok(performance.now() - started < 2_000);
        assert.deepEqual(recorder.requests, [`llm/first/${outcome}`, 'llm/second/ok']);
      }
    },
  );

  it('replaces the model field of a transcription upload for the fallback', async () => {
    const { stt, recorder } = clients(stage({}));
    const h = healthy.requests.length;
    const text = await transcribe(
      stt,
      { frames: [new Uint8Array(3_200)], model: 'whisper-1', language: 'en' },
      signal(),
    );
    assert.match(text, /I heard/);
    assert.deepEqual(recorder.requests, ['stt/first/rate_limited', 'stt/second/ok']);
    const body = since(healthy, h)[0]?.body as { model: string; language: string };
    assert.equal(body.model, 'fallback-model');
    assert.equal(body.language, 'en');
  });

  it('reports the last failure when every provider fails, as a timeout when it timed out', async () => {
    const { llm } = clients(
      stage({
        fallbacks: [{ baseURL: silentUrl, name: 'second', firstByteTimeoutMs: 100 }],
      }),
    );
    await assert.rejects(
      streamChat(llm, chat('m'), signal(), () => undefined),
      APIConnectionTimeoutError,
    );
  });

  it('a barge-in aborts the attempt at once and fails over to nobody', async () => {
    const { llm, recorder } = clients(stage({ baseURL: silentUrl, firstByteTimeoutMs: 5_000 }));
    const h = healthy.requests.length;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = performance.now();
    await assert.rejects(
      streamChat(llm, chat('m'), controller.signal, () => undefined),
      APIUserAbortError,
    );
    assert.ok(performance.now() - started < 1_000);
    assert.equal(since(healthy, h).length, 0);
    assert.deepEqual(recorder.requests, ['llm/first/aborted']);
    assert.equal(recorder.circuits().find((c) => c.stage === 'llm')?.state, 'closed');
  });
});
