/**
 * The shipped AudioWorklets (packages/sdk/dist/audio/worklets/, what bundlers copy as they are)
 * and the resampler they are built from, in Chromium: each worklet loads on its own, with no
 * import to resolve, and does its job in an OfflineAudioContext.
 */
import { StreamingResampler } from '../../packages/sdk/src/audio/resampler.js';
import { equal, ok, sleep } from './support.js';

const BUILT = '/packages/sdk/dist/audio/worklets';

function tone(rate: number, freq: number, seconds: number, amplitude = 0.5): Float32Array {
  return Float32Array.from(
    { length: Math.round(rate * seconds) },
    (_, i) => amplitude * Math.sin((2 * Math.PI * freq * i) / rate),
  );
}

/** Amplitude of `freq` in `x` (Goertzel), over whole periods. */
function amplitudeAt(x: Float32Array, rate: number, freq: number): number {
  const k = (2 * Math.PI * freq) / rate;
  let s1 = 0;
  let s2 = 0;
  for (const v of x) {
    const s0 = v + 2 * Math.cos(k) * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (2 * Math.sqrt(s1 * s1 + s2 * s2 - 2 * Math.cos(k) * s1 * s2)) / x.length;
}

describe('the built worklets', () => {
  it('are single files: no import statement left to resolve', async () => {
    for (const name of ['capture-processor.js', 'playback-processor.js']) {
      const code = await (await fetch(`${BUILT}/${name}`)).text();
      ok(!/^\s*import[\s{*]/m.test(code) && !/\bimport\(/.test(code), `${name} imports something`);
      ok(code.includes('registerProcessor('), name);
    }
  });

  it('capture: 48 kHz in, 20 ms frames of 16 kHz PCM16 out, the tone kept, its level reported', async () => {
    const rate = 48_000;
    const context = new OfflineAudioContext({
      numberOfChannels: 1,
      length: rate,
      sampleRate: rate,
    });
    await context.audioWorklet.addModule(`${BUILT}/capture-processor.js`);
    const node = new AudioWorkletNode(context, 'voicebot-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    const frames: Int16Array[] = [];
    const levels: number[] = [];
    node.port.onmessage = (
      event: MessageEvent<{ type: string; pcm: ArrayBuffer; level: number }>,
    ) => {
      if (event.data.type !== 'audio') return;
      frames.push(new Int16Array(event.data.pcm));
      levels.push(event.data.level);
    };
    const source = new OscillatorNode(context, { frequency: 1000 });
    const gain = new GainNode(context, { gain: 0.5 });
    source.connect(gain).connect(node).connect(context.destination);
    source.start();
    await context.startRendering();
    await sleep(100); // the last port messages
    ok(frames.length >= 45 && frames.length <= 50, `${frames.length} frames for 1 s`);
    ok(
      frames.every((f) => f.length === 320),
      'each frame is 320 samples (20 ms at 16 kHz)',
    );
    const pcm = Float32Array.from(frames.slice(5).flatMap((f) => Array.from(f, (v) => v / 32768)));
    const amplitude = amplitudeAt(pcm.subarray(0, 16_000 - 1600), 16_000, 1000);
    ok(
      Math.abs(amplitude - 0.5) < 0.02,
      `1 kHz amplitude after resampling ${amplitude.toFixed(3)}`,
    );
    const level = levels.at(-2) ?? 0;
    ok(Math.abs(level - 0.5 / Math.SQRT2) < 0.02, `RMS level ${level.toFixed(3)}`);
  });

  it('playback: 24 kHz PCM16 pushed, played at the context rate, then drained', async () => {
    const rate = 48_000;
    const context = new OfflineAudioContext({
      numberOfChannels: 1,
      length: rate,
      sampleRate: rate,
    });
    await context.audioWorklet.addModule(`${BUILT}/playback-processor.js`);
    const node = new AudioWorkletNode(context, 'voicebot-playback', {
      numberOfInputs: 0,
      outputChannelCount: [1],
      processorOptions: { inputRate: 24_000 },
    });
    const messages: { type: string; playedMs?: number }[] = [];
    node.port.onmessage = (event: MessageEvent<{ type: string; playedMs?: number }>) =>
      messages.push(event.data);
    node.connect(context.destination);
    const pcm = Int16Array.from(tone(24_000, 440, 0.5), (v) => Math.round(v * 32767));
    node.port.postMessage({ type: 'push', pcm: pcm.buffer, turnId: 1 }, [pcm.buffer]);
    await sleep(50); // the message reaches the processor before rendering starts
    const rendered = (await context.startRendering()).getChannelData(0);
    await sleep(100);
    const played = rendered.subarray(0, rate / 2);
    const amplitude = amplitudeAt(played.subarray(2400, 21_600), rate, 440);
    ok(Math.abs(amplitude - 0.5) < 0.03, `440 Hz amplitude ${amplitude.toFixed(3)}`);
    const after = rendered.subarray(rate / 2 + 480);
    ok(
      after.every((v) => Math.abs(v) < 1e-3),
      'silence once the buffer ran dry',
    );
    const drained = messages.find((m) => m.type === 'drained');
    ok(drained, JSON.stringify(messages.map((m) => m.type)));
    ok(Math.abs((drained.playedMs ?? 0) - 500) < 5, `played ${drained.playedMs} ms`);
  });
});

describe('StreamingResampler in the browser', () => {
  it('48 kHz → 16 kHz: fed in render quanta or at once, the same output; a 1 kHz tone kept, 10 kHz removed', () => {
    const input = new Float32Array(48_000);
    input.set(tone(48_000, 1000, 1, 0.4));
    const aliasing = tone(48_000, 10_000, 1, 0.4);
    for (let i = 0; i < input.length; i++) input[i] = (input[i] ?? 0) + (aliasing[i] ?? 0);
    const whole = new StreamingResampler(48_000, 16_000).process(input);
    const chunked = new StreamingResampler(48_000, 16_000);
    const parts: number[] = [];
    for (let i = 0; i < input.length; i += 128)
      parts.push(...chunked.process(input.subarray(i, i + 128)));
    equal(parts.length, whole.length);
    ok(
      parts.every((v, i) => v === whole[i]),
      'bit-identical',
    );
    const steady = whole.subarray(800, whole.length - 800);
    const kept = amplitudeAt(steady, 16_000, 1000);
    ok(Math.abs(kept - 0.4) < 0.01, `1 kHz amplitude ${kept.toFixed(4)}`);
    // 10 kHz folds to 6 kHz at 16 kHz: the low-pass must have removed it
    const folded = amplitudeAt(steady, 16_000, 6000);
    ok(
      folded < 0.4 * 10 ** (-60 / 20),
      `alias at 6 kHz: ${(20 * Math.log10(folded / 0.4)).toFixed(1)} dB`,
    );
  });
});
