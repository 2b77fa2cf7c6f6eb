/**
 * Browser cost in headless Chromium (test/support/browser.ts `launchChromium`), with the fake
 * microphone playing `../shared/fixtures/audio/48k/hours.wav` in a loop, the SDK served by a relay
 * started with `staticDirs` (as in test/browser/sdk-client.test.ts) and the scripted fake upstream.
 *
 * - Main-thread time per second of captured audio: CDP `Performance.getMetrics` (`page.metrics()`)
 *   TaskDuration and ScriptDuration over a window while the client runs, divided by the window's
 *   length (the mic captures continuously), next to an idle page over the same window.
 * - Capture-to-send latency: bench/pages/probe-worklet.js stamps each frame when the capture
 *   worklet posts it; bench/pages/cost.html stamps its `WebSocket.send`. Frames sent while the
 *   visitor speaks ("live") and frames held back until speech was confirmed ("pre-roll") are
 *   reported apart. The page's receipt of the frame gives the main-thread share.
 * - Barge-in: the looped fixture makes the visitor speak again while the reply plays; for every
 *   `interrupt` the SDK sends: speech onset (first loud frame) → interrupt sent, and interrupt →
 *   playback worklet reported silence.
 */
import { join } from 'node:path';
import type { Page } from '../test/support/browser.js';
import { startPageRelay, withBenchPage } from './bench-page.js';
import { FIXTURES, LATENCY, REPLY, summarize, type Summary } from './common.js';

export interface BrowserConfigResult {
  name: string;
  windowS: number;
  taskMsPerS: number;
  scriptMsPerS: number;
  framesCaptured: number;
  framesSent: number;
  /** worklet post → WebSocket.send, frames sent while speaking */
  captureToSend: Summary;
  /** page receipt → WebSocket.send (main-thread part of the above) */
  mainThreadToSend: Summary;
  /** pre-roll frames, held until the VAD confirmed speech */
  heldCaptureToSend: Summary;
  /** speech onset (first loud captured frame) → playback silenced / → `interrupt` sent */
  bargeIn: { onsetToSilence: Summary; onsetToInterrupt: Summary };
  clock: string | undefined;
  turns: number;
}

export interface BrowserReport {
  chromium: string;
  configs: BrowserConfigResult[];
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function taskMetrics(page: Page): Promise<{ task: number; script: number }> {
  const m = await page.metrics();
  return { task: m.TaskDuration ?? 0, script: m.ScriptDuration ?? 0 };
}

export async function measureBrowser(options: {
  windowMs: number;
  configs?: ('idle' | 'energy' | 'silero')[];
}): Promise<BrowserReport> {
  const configs = options.configs ?? ['idle', 'energy', 'silero'];
  const { h, key } = await startPageRelay({ latency: LATENCY, chat: () => ({ content: REPLY }) });
  const results: BrowserConfigResult[] = [];
  let chromium = '';
  try {
    for (const name of configs) {
      await withBenchPage(
        `${h.url}/cost.html`,
        join(FIXTURES, '48k/hours.wav'),
        async (page, version) => {
          chromium = version;
          let sileroLoaded: Promise<unknown> = Promise.resolve();
          if (name === 'silero')
            sileroLoaded = page
              .waitForResponse((r) => r.url().endsWith('.onnx'), { timeout: 20_000 })
              .catch(() => undefined);
          if (name !== 'idle') {
            await page.evaluate(
              async (relayUrl, clientKey, vad) => {
                const sdk = await import('/sdk/voice-bot-sdk.js' as string);
                const w = window as unknown as {
                  __bench: { state: string; turns?: number };
                  __client: unknown;
                };
                const client = new sdk.VoiceBotClient({
                  relayUrl,
                  clientKey,
                  assetBaseUrl: '/sdk/',
                  persistence: false,
                  ...(vad ? { vad } : {}),
                });
                w.__bench.turns = 0;
                client.on('state', (state: string) => (w.__bench.state = state));
                client.on('message', () => (w.__bench.turns = (w.__bench.turns ?? 0) + 1));
                w.__client = client;
                await client.start();
              },
              h.url,
              key,
              name === 'energy' ? { model: 'energy' } : null,
            );
            await sileroLoaded;
            if (name === 'silero') {
              // The client swaps Silero in once it has loaded (its WebAssembly compiled, its session
              // created) and the visitor is between utterances: start the window after that, so it
              // measures Silero running, not its one-time load. (`vad` is private: best effort.)
              await page
                .waitForFunction(
                  () => {
                    const client = (window as unknown as { __client?: { vad?: object } }).__client;
                    return client?.vad !== undefined && 'probability' in client.vad;
                  },
                  { timeout: 30_000, polling: 100 },
                )
                .catch(() => undefined);
            }
            await sleep(name === 'silero' ? 1500 : 500); // warm-up (first inferences)
          } else {
            await page.evaluate(() => import('/sdk/voice-bot-sdk.js' as string));
            await sleep(500);
          }
          const before = await taskMetrics(page);
          const t0 = performance.now();
          await page.evaluate(() => {
            const b = (window as unknown as { __bench: Record<string, unknown[]> }).__bench;
            for (const k of ['live', 'held', 'onsets', 'interrupts', 'playbackStopped'])
              (b[k] as unknown[]).length = 0;
            (b as unknown as { framesSent: number; framesCaptured: number }).framesSent = 0;
            (b as unknown as { framesCaptured: number }).framesCaptured = 0;
          });
          await sleep(options.windowMs);
          const after = await taskMetrics(page);
          const windowS = (performance.now() - t0) / 1000;
          const bench = (await page.evaluate(() => {
            const b = (window as unknown as { __bench: Record<string, unknown> }).__bench;
            return {
              live: b.live,
              held: b.held,
              onsets: b.onsets,
              interrupts: b.interrupts,
              playbackStopped: b.playbackStopped,
              framesSent: b.framesSent,
              framesCaptured: b.framesCaptured,
              clock: b.clock,
              turns: b.turns,
            };
          })) as {
            live: [number, number][];
            held: [number, number][];
            onsets: number[];
            interrupts: number[];
            playbackStopped: number[];
            framesSent: number;
            framesCaptured: number;
            clock: string | undefined;
            turns: number | undefined;
          };
          // The SDK silences playback first (it needs played_ms), then sends `interrupt`.
          const onsetToSilence: number[] = [];
          const onsetToInterrupt: number[] = [];
          for (const t of bench.interrupts) {
            const stopped = bench.playbackStopped.filter((s) => s <= t && t - s < 1000).at(-1) ?? t;
            const onset = bench.onsets.filter((o) => o <= stopped).at(-1);
            if (onset === undefined || t - onset > 3000) continue;
            onsetToSilence.push(stopped - onset);
            onsetToInterrupt.push(t - onset);
          }
          results.push({
            name,
            windowS,
            taskMsPerS: ((after.task - before.task) * 1000) / windowS,
            scriptMsPerS: ((after.script - before.script) * 1000) / windowS,
            framesCaptured: bench.framesCaptured,
            framesSent: bench.framesSent,
            captureToSend: summarize(bench.live.map((x) => x[0])),
            mainThreadToSend: summarize(bench.live.map((x) => x[1])),
            heldCaptureToSend: summarize(bench.held.map((x) => x[0])),
            bargeIn: {
              onsetToSilence: summarize(onsetToSilence),
              onsetToInterrupt: summarize(onsetToInterrupt),
            },
            clock: bench.clock,
            turns: bench.turns ?? 0,
          });
          if (name !== 'idle')
            await page
              .evaluate(() =>
                (window as unknown as { __client: { stop(): Promise<void> } }).__client.stop(),
              )
              .catch(() => undefined);
        },
      );
    }
  } finally {
    await h.close();
  }
  return { chromium, configs: results };
}
