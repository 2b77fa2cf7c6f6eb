/**
 * Smoke test of `npm run bench -- --quick`: every piece runs (three-process load level, time to
 * first audio pipelines, bundle sizes, headless-Chromium cost, a barge-in, in-browser Whisper with
 * the test model, clients that stop reading and oversized request bodies, `npm i` of the packed
 * SDK into an empty folder) and produces numbers and the markdown tables. No timing targets: the
 * numbers depend on the machine; only that each measurement saw the events it is made of.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

/** Runs `scripts/bench.mjs` with `args` and returns what it printed; fails unless it exits 0. */
async function runBench(args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['scripts/bench.mjs', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 0, `bench exited with ${code}:\n${output.slice(-4000)}`);
  return output;
}

test(
  'npm run bench -- --quick produces numbers, tables and the report file',
  { timeout: 240_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'voicebot-bench-smoke-'));
    try {
      const out = join(dir, 'benchmarks.md');
      const json = join(dir, 'results.json');
      const output = await runBench(['--quick', '--no-build', `--out=${out}`, `--json=${json}`]);

      const markdown = await readFile(out, 'utf8');
      for (const heading of [
        '# Benchmarks',
        '## Headline',
        '## 0. Relay ÷ minimal reference relay',
        '## 1. Relay-added latency',
        '## 2. Capacity',
        '## 3. Streaming vs sequential',
        '## 4. Bundle sizes',
        '## 5. Browser cost',
        '## 6. Barge-in',
        '## 7. In-browser Whisper',
        '## 9. Clients that stop reading',
        '## 10. Install size',
        '## 11. Mouth to ear',
      ]) {
        assert.ok(markdown.includes(heading), `report has "${heading}"`);
      }
      assert.match(markdown, /\| sessions \| turns \|/);
      assert.ok(output.includes('## Headline'), 'the tables are printed too');

      const r = JSON.parse(await readFile(json, 'utf8'));
      assert.ok(r.machine.cpus > 0 && typeof r.machine.node === 'string');
      const level = r.latency.levels[0];
      assert.ok(level.turns > 0, 'the load level completed turns');
      for (const x of [
        level.latency.p50,
        level.added.p99,
        level.relay.cpuMs,
        level.relay.rssMaxMb,
        level.relay.eld.p99,
        level.upstream.cpuMs,
        level.loadgen.cpuMs,
      ])
        assert.ok(finite(x), `finite: ${x}`);
      assert.equal(level.uplinkLostTurns, 0);
      // The relay and the reference relay both completed every turn of their quick level.
      for (const run of r.ratio.runs)
        assert.ok(run.turns > 0 && run.failed === 0, JSON.stringify(run));
      assert.deepEqual(r.ratio.runs.map((run: { variant: string }) => run.variant).sort(), [
        'reference',
        'relay',
      ]);
      const ratio = r.ratio.levels[0].ratio;
      assert.ok(finite(ratio.cpuMsPerTurn) && finite(ratio.rssMaxMb), JSON.stringify(ratio));
      assert.ok(finite(r.ttfa.direct.firstAudio.p50) && finite(r.ttfa.sequential.complete.p50));
      assert.ok(r.bundles.firstDownload.total.gzip > 0 && r.bundles.lazyChunks.length > 0);
      const browser = r.browser.configs[0];
      assert.ok(
        finite(browser.taskMsPerS) && browser.framesCaptured > 0,
        'the browser captured audio',
      );

      // barge-in: one interruption, every stage of it seen, in the page and at the relay
      const barge = r.bargein.configs[0];
      assert.equal(barge.name, 'energy');
      assert.ok(barge.interruptions.length >= 1, 'an interruption was measured');
      const cut = barge.interruptions[0];
      assert.ok(
        finite(cut.onsetToSilentMs) && cut.onsetToSilentMs > 0,
        `onset → silent ${cut.onsetToSilentMs}`,
      );
      assert.ok(
        finite(cut.windowMs) && cut.windowMs > 150 && cut.windowMs < 600,
        `the minimum-interruption window is in the figure: ${cut.windowMs}`,
      );
      assert.ok(cut.onsetToSilentMs >= cut.windowMs, 'onset → silent includes the window');
      // Typically 0.2–1 ms, stamped on the audio thread against a main-thread time: the two clocks
      // can disagree by a fraction of a millisecond, so a tiny negative value is jitter, not an error.
      assert.ok(
        finite(cut.decisionToSilentMs) &&
          cut.decisionToSilentMs > -5 &&
          finite(cut.decisionToReplyMs),
        `decision → silent ${cut.decisionToSilentMs}`,
      );
      assert.ok(barge.relay.interrupts.length >= 1, 'the relay logged the interrupt');
      const aborts = barge.relay.interrupts[0].aborts as { kind: string; ms: number }[];
      assert.ok(
        aborts.some((a) => a.kind === 'speech') && aborts.some((a) => a.kind === 'chat'),
        `the LLM stream and TTS were in flight and aborted: ${JSON.stringify(aborts)}`,
      );
      assert.ok(aborts.every((a) => finite(a.ms) && a.ms >= 0));
      assert.ok(
        r.bargein.relayAlone.interrupts.length >= 1 &&
          r.bargein.relayAlone.interrupts[0].aborts.length > 0,
        'the control without a browser aborted upstream too',
      );
      assert.ok(
        finite(r.bargein.relayAlone.fetchFloor.p50),
        'and the plain fetch-abort floor was measured',
      );

      // in-browser Whisper: the test model loaded, and an utterance went end of speech → transcript
      const whisper = r.whisper.models[0];
      assert.equal(whisper.model, 'tiny-whisper');
      assert.equal(whisper.device, 'wasm');
      assert.ok(finite(whisper.loadMs) && whisper.loadMs > 0, `load + warm-up ${whisper.loadMs}`);
      assert.ok(
        whisper.utterances.length >= 1,
        `an utterance was transcribed once the model was ready: ${whisper.error ?? ''}`,
      );
      const utterance = whisper.utterances[0];
      assert.ok(
        utterance.audioS > 1 && utterance.audioS < 12,
        `the utterance's audio reached the worker (${utterance.audioS} s)`,
      );
      assert.ok(
        finite(utterance.inferenceMs) &&
          utterance.endOfSpeechToTranscriptMs >= utterance.inferenceMs - 1,
        'end of speech → transcript includes the inference',
      );
      assert.ok(finite(whisper.clientRtf.p50) && whisper.clientRtf.p50 > 0);

      // mouth to ear: one utterance with an inner pause per case; speculation on confirmed a
      // speculative turn, off sent no pause; the audio-clock figure agrees with its wall-clock stages
      const mouthCase = (speculation: boolean) =>
        r.mouth.cases.find((c: { speculation: boolean }) => c.speculation === speculation);
      for (const speculation of [true, false]) {
        const c = mouthCase(speculation);
        assert.ok(c && c.mouthToEar.n >= 1, `mouth to ear measured (speculation ${speculation})`);
        const u = c.utterances.find((x: { mouthToEarMs?: number }) => finite(x.mouthToEarMs));
        const stages = u.endOfTurnWaitMs + u.commitToFirstAudioMs + u.firstAudioToRenderedMs;
        assert.ok(
          u.mouthToEarMs > 600 && Math.abs(stages - u.mouthToEarMs) < 40,
          `last speech → rendered ${u.mouthToEarMs} ms = wait + relay and wire + playback start ${stages} ms`,
        );
      }
      assert.ok(mouthCase(true).offered && mouthCase(true).speculativeTurns >= 1);
      assert.equal(mouthCase(false).pauses, 0, 'speculation: false sends no pause');

      // install size: the packed SDK installed into an empty folder (the peer needs the registry,
      // which a run may not reach: not checked here)
      const sdkInstall = r.install.ours.find((m: { name: string }) => m.name === '@voice-bot/sdk');
      assert.ok(
        !sdkInstall.error && sdkInstall.diskKb > 0 && sdkInstall.files > 0,
        `the SDK's install was measured: ${JSON.stringify(sdkInstall).slice(0, 300)}`,
      );

      // exposure: the relay's queue towards a client that stops reading stays at its bound, the
      // provider stops being read, and the relay closes the socket; oversized bodies get a 413
      // without the relay reading them or growing
      const ex = r.exposure;
      const nonReading = ex.sockets.find((p: { variant: string }) => p.variant === 'non-reading');
      const reading = ex.sockets.find((p: { variant: string }) => p.variant === 'reading');
      assert.equal(nonReading.opened, ex.options.sessions, 'every non-reading session opened');
      const queued = Math.max(
        ...nonReading.samples.map((s: { relayQueuedMax: number }) => s.relayQueuedMax),
      );
      assert.ok(
        queued > 0 && queued <= ex.maxBufferedBytes + 64 * 1024,
        `the relay's queue per socket reached its bound and no more: ${queued} (bound ${ex.maxBufferedBytes})`,
      );
      assert.equal(
        nonReading.slowClientTotal,
        nonReading.opened,
        'the relay closed every non-reading socket with slow_client',
      );
      assert.equal(nonReading.sessionsActiveEnd, 0, 'no non-reading session was left open');
      assert.ok(
        nonReading.providerPerSession.max < 0.9 * nonReading.replyAudioBytes,
        `the provider stopped being read: ${nonReading.providerPerSession.max} of ${nonReading.replyAudioBytes} bytes`,
      );
      assert.equal(reading.repliesDone, reading.opened, 'the reading reference got every reply');
      assert.ok(
        reading.providerPerSession.min >= reading.replyAudioBytes,
        'and the provider streamed all of them',
      );
      for (const b of ex.bodies) {
        if (b.mode === 'normal') {
          assert.equal(b.statuses['201'], b.n, `normal requests: ${JSON.stringify(b.statuses)}`);
          continue;
        }
        assert.ok(
          (b.statuses['413'] ?? 0) >= 1 &&
            Object.keys(b.statuses).every((k) => k === '413' || k === 'none'),
          `${b.mode} bodies got 413: ${JSON.stringify(b.statuses)}`,
        );
        assert.ok(
          b.writtenTotal.max < 64 * 2 ** 20,
          `the relay did not read the ${b.mode} upload: ${b.writtenTotal.max} bytes taken`,
        );
        assert.ok(
          b.rssPeakMb - b.rssBeforeMb < 50,
          `relay RSS ${b.rssBeforeMb} → ${b.rssPeakMb} MB`,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'npm run bench -- --relay-workers=2 measures the relay as a cluster',
  { timeout: 120_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'voicebot-bench-cluster-'));
    try {
      const out = join(dir, 'benchmarks.md');
      const json = join(dir, 'results.json');
      await runBench([
        '--quick',
        '--only=latency',
        '--relay-workers=2',
        '--no-build',
        `--out=${out}`,
        `--json=${json}`,
      ]);
      const r = JSON.parse(await readFile(json, 'utf8'));
      const level = r.latency.levels[0];
      assert.equal(level.relayWorkers, 2);
      assert.ok(level.turns > 0 && level.failedTurns === 0, 'turns went through the cluster');
      assert.equal(level.uplinkLostTurns, 0, 'every uplink byte reached the STT provider');
      // Summed over the primary and both workers: more than one process's baseline memory.
      assert.ok(
        finite(level.relay.cpuMs) && level.relay.cpuMs > 0 && level.relay.rssMaxMb > 150,
        `cluster figures: ${JSON.stringify(level.relay)}`,
      );
      assert.match(await readFile(out, 'utf8'), /relay as a cluster \(primary \+ 2 workers/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
