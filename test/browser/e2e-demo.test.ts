import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { launchChromium, type Browser, type Page } from '../support/browser.js';
import { FIXTURES, REPO_ROOT } from '../support/relay.js';

/**
 * What a newcomer does: `npm start` (here `voicebot-relay serve --demo`, offline demo provider),
 * open the page, click the assistant, speak (the fake mic plays hours.wav), hear the reply.
 */
describe('end to end: the demo site with the one-tag widget, spoken turn', () => {
  let relay: ChildProcess;
  let url = '';
  let dataDir = '';
  let browser: Browser;
  let page: Page;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'voicebot-e2e-'));
    const env: NodeJS.ProcessEnv = { ...process.env, VOICEBOT_DATA_DIR: dataDir };
    for (const name of [
      'OPENAI_API_KEY',
      'OPENAI_BASE_URL',
      'VOICEBOT_STT_BASE_URL',
      'VOICEBOT_LLM_BASE_URL',
      'VOICEBOT_TTS_BASE_URL',
    ])
      delete env[name];
    // exactly what `npm start` runs, on a free port
    const args = [
      'serve',
      '--demo',
      '--config',
      join(REPO_ROOT, 'demo/voicebot.config.json'),
      '--port',
      '0',
    ];
    relay = spawn(
      process.execPath,
      [join(REPO_ROOT, 'packages/relay/bin/voicebot-relay.js'), ...args],
      { env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: relay.stdout as NodeJS.ReadableStream });
    url = await new Promise<string>((resolve, reject) => {
      relay.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
      lines.on('line', (line) => {
        if (!line.startsWith('{')) return;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'relay listening' && entry.url)
          resolve(entry.url.replace('localhost', '127.0.0.1'));
      });
    });
    browser = await launchChromium({ fakeMicWav: join(FIXTURES, '48k/hours.wav') });
    page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 800 });
    page.on('pageerror', (error) => console.error('page error:', error));
  });

  after(async () => {
    await browser?.close();
    relay?.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  });

  test('the demo serves its pages and scripts, not its config file', async () => {
    assert.equal((await fetch(`${url}/`)).status, 200);
    assert.equal((await fetch(`${url}/spa.js`)).status, 200);
    const config = await fetch(`${url}/voicebot.config.json`);
    assert.equal(config.status, 404);
    assert.equal(config.headers.get('x-voicebot-error'), 'not_found');
  });

  test('click, speak, see and hear the answer, end in listening', async () => {
    await page.goto(`${url}/`);
    await page.evaluate(() => {
      const w = window as unknown as { widgetEvents: { type: string; detail: unknown }[] };
      w.widgetEvents = [];
      for (const type of [
        'state',
        'transcript',
        'text-delta',
        'message',
        'metrics',
        'error',
        'level',
      ]) {
        document.addEventListener(`voice-bot:${type}`, (event) => {
          const detail = (event as CustomEvent).detail as unknown;
          if (type !== 'level' || (detail as { output: number }).output > 0)
            w.widgetEvents.push({
              type,
              detail:
                detail instanceof Error
                  ? { code: (detail as Error & { code: string }).code }
                  : detail,
            });
        });
      }
    });
    await page.waitForFunction(
      () =>
        customElements.get('voice-bot') !== undefined &&
        document.querySelector('voice-bot')?.getAttribute('key'),
      { timeout: 10_000 },
    );
    const launcher = await page.waitForSelector('voice-bot >>> [part~="launcher"]', {
      timeout: 10_000,
    });
    await launcher?.click();
    const talk = await page.waitForSelector('voice-bot >>> [part~="talk-button"]', {
      visible: true,
    });
    await talk?.click();

    const events = async () =>
      page.evaluate(
        () =>
          (window as unknown as { widgetEvents: { type: string; detail: unknown }[] }).widgetEvents,
      );
    // the bot greets first (relay-side greeting), then answers the spoken question
    await page
      .waitForFunction(
        () =>
          (
            window as unknown as { widgetEvents: { type: string; detail: { text?: string } }[] }
          ).widgetEvents.some(
            (e) => e.type === 'message' && /offline demo/i.test(e.detail.text ?? ''),
          ),
        { timeout: 30_000, polling: 100 },
      )
      .catch(async (error: unknown) => {
        console.error('widget events so far:', JSON.stringify(await events()).slice(0, 4000));
        throw error;
      });

    const all = await events();
    const errors = all.filter((e) => e.type === 'error');
    assert.deepEqual(errors, [], 'no errors');
    const transcript = all.find((e) => e.type === 'transcript')?.detail as { text: string };
    assert.match(
      transcript.text,
      /^\(demo: I heard \d+\.\d seconds of speech\)$/,
      'the relay received and measured the utterance',
    );
    const seconds = Number(/(\d+\.\d)/.exec(transcript.text)?.[1]);
    assert.ok(
      seconds > 2 && seconds < 5.5,
      `utterance of ${seconds} s (the fixture holds ~3.3 s of speech)`,
    );
    assert.ok(all.filter((e) => e.type === 'text-delta').length > 3, 'the reply streamed in');
    assert.ok(
      all.some((e) => e.type === 'level'),
      'the reply was played through the playback worklet',
    );
    const messages = all
      .filter((e) => e.type === 'message')
      .map((e) => (e.detail as { text: string }).text);
    // The fixture's speech starts 0.6 s in, while the greeting still plays: the visitor barges in,
    // and the greeting is kept only as far as it was heard.
    const greeting =
      "Hi! I'm the Acme Dental assistant. Ask me about opening hours or appointments.";
    assert.ok(
      greeting.startsWith((messages[0] ?? 'x').replace(/…$/, '')),
      `the greeting came first: ${JSON.stringify(messages)}`,
    );
    assert.match(messages[1] ?? '', /offline demo/i);

    const shadowText = async () =>
      page.$eval(
        'voice-bot',
        (el) => el.shadowRoot?.querySelector('[part~="transcript"]')?.textContent ?? '',
      );
    const text = await shadowText();
    assert.ok(text.includes('I heard'), 'the visitor transcript is shown');
    assert.ok(text.includes('offline demo'), 'the bot reply is shown');
    await page.waitForFunction(
      () =>
        (document.querySelector('voice-bot') as unknown as { state: string }).state === 'listening',
      { timeout: 10_000 },
    );
    const metrics = (await events()).find((e) => e.type === 'metrics')?.detail as {
      first_audio_ms: number;
      end_of_speech_to_first_audio_ms?: number;
    };
    assert.equal(typeof metrics.first_audio_ms, 'number');

    await mkdir(join(REPO_ROOT, 'test-output'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, 'test-output/e2e-demo.png') });
  });

  test('the SPA page (SDK with a custom UI): opening hours come from the HTTP tool in voicebot.config.json', async () => {
    const spa = await browser.newPage();
    await spa.goto(`${url}/spa.html`);
    await spa.waitForSelector('#text');
    await spa.type('#text', 'What are your opening hours on Saturday?');
    await spa.keyboard.press('Enter');
    await spa.waitForFunction(
      () =>
        [...document.querySelectorAll('#log .assistant')].some((li) =>
          /10 a\.m\. to 2 p\.m\./.test(li.textContent ?? ''),
        ),
      { timeout: 15_000 },
    );
    const lines = await spa.$$eval('#log li', (items) =>
      items.map((li) => `${li.className}: ${li.textContent}`),
    );
    assert.ok(
      lines.some((l) => l === 'user: What are your opening hours on Saturday?'),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith('assistant: On saturday Acme Dental is open from 10 a.m. to 2 p.m.'),
      ),
      lines.join('\n'),
    );
    await spa.close();
  });
});
