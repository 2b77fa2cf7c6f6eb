// Browser-side helpers for test/browser/audio-worklets.test.ts. Loaded as a module by index.html;
// exposes window.harness. Plain JS on purpose (no transpilation, evaluated as served).
const WORKLETS = '/worklets';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Collect 'audio' frames from a capture node into one Int16 array. */
function collector(node) {
  const frames = [];
  const lengths = [];
  const levels = [];
  let last = performance.now();
  node.port.onmessage = (ev) => {
    const m = ev.data;
    if (m.type === 'audio') {
      const pcm = new Int16Array(m.pcm);
      frames.push(pcm);
      lengths.push(pcm.length);
      levels.push(m.level);
      last = performance.now();
    }
  };
  return {
    frames,
    lengths,
    levels,
    idleFor: () => performance.now() - last,
    samples() {
      const n = frames.reduce((a, f) => a + f.length, 0);
      const all = new Int16Array(n);
      let o = 0;
      for (const f of frames) {
        all.set(f, o);
        o += f.length;
      }
      return Array.from(all);
    },
  };
}

async function waitIdle(col, idleMs = 150, maxMs = 3000) {
  const t0 = performance.now();
  while (col.idleFor() < idleMs && performance.now() - t0 < maxMs) await sleep(20);
}

/**
 * Render a source through the capture worklet in an OfflineAudioContext.
 * source: { kind: 'osc', freq, amplitude } | { kind: 'buffer', samples: number[] }
 * channels: 1, or 2 to feed the source on the left channel only (right = silence) to test downmixing.
 */
async function captureOffline({ rate, seconds, source, channels = 1, frameMs }) {
  const length = source.kind === 'buffer' ? source.samples.length : Math.round(rate * seconds);
  const ctx = new OfflineAudioContext({ numberOfChannels: 1, length, sampleRate: rate });
  await ctx.audioWorklet.addModule(`${WORKLETS}/capture-processor.js`);
  const node = new AudioWorkletNode(ctx, 'voicebot-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: frameMs ? { frameMs } : {},
  });
  const col = collector(node);
  let src;
  if (source.kind === 'osc') {
    const osc = new OscillatorNode(ctx, { type: 'sine', frequency: source.freq });
    const gain = new GainNode(ctx, { gain: source.amplitude });
    osc.connect(gain);
    osc.start(0);
    src = gain;
  } else {
    const buf = new AudioBuffer({ length, numberOfChannels: 1, sampleRate: rate });
    buf.copyToChannel(Float32Array.from(source.samples), 0);
    const bs = new AudioBufferSourceNode(ctx, { buffer: buf });
    bs.start(0);
    src = bs;
  }
  if (channels === 2) {
    const merger = new ChannelMergerNode(ctx, { numberOfInputs: 2 });
    src.connect(merger, 0, 0);
    merger.connect(node);
  } else {
    src.connect(node);
  }
  node.connect(ctx.destination);
  await ctx.startRendering();
  await waitIdle(col);
  return {
    sampleRate: ctx.sampleRate,
    lengths: col.lengths,
    levels: col.levels,
    samples: col.samples(),
  };
}

/** Fake-mic capture: getUserMedia → MediaStreamSource → capture worklet for `seconds`. */
async function captureMic({ seconds }) {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(`${WORKLETS}/capture-processor.js`);
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const track = stream.getAudioTracks()[0];
  const src = new MediaStreamAudioSourceNode(ctx, { mediaStream: stream });
  // no outputs: the node is not connected to the destination and must still be pulled
  const node = new AudioWorkletNode(ctx, 'voicebot-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 0,
  });
  const col = collector(node);
  const t0 = performance.now();
  src.connect(node);
  await sleep(seconds * 1000);
  const elapsedMs = performance.now() - t0;
  track.stop();
  await ctx.close();
  return {
    contextRate: ctx.sampleRate,
    settings: track.getSettings(),
    label: track.label,
    elapsedMs,
    lengths: col.lengths,
    levels: col.levels,
    samples: col.samples(),
  };
}

/** Realtime capture of a tone with mute/unmute/flush: returns the message log with timestamps. */
async function captureControls() {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(`${WORKLETS}/capture-processor.js`);
  if (ctx.state !== 'running') await ctx.resume();
  const node = new AudioWorkletNode(ctx, 'voicebot-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 0,
  });
  const log = [];
  const t0 = performance.now();
  node.port.onmessage = (ev) => {
    const m = ev.data;
    log.push({
      type: m.type,
      t: performance.now() - t0,
      level: m.level,
      frames: m.frames,
      samples: m.pcm ? m.pcm.byteLength / 2 : 0,
    });
  };
  const osc = new OscillatorNode(ctx, { frequency: 1000 });
  const gain = new GainNode(ctx, { gain: 0.5 });
  osc.connect(gain).connect(node);
  osc.start();
  const marks = {};
  await sleep(300);
  marks.mute = performance.now() - t0;
  node.port.postMessage({ type: 'mute', muted: true });
  await sleep(300);
  marks.unmute = performance.now() - t0;
  node.port.postMessage({ type: 'mute', muted: false });
  await sleep(310);
  marks.flush = performance.now() - t0;
  node.port.postMessage({ type: 'flush' });
  await sleep(100);
  await ctx.close();
  return { log, marks };
}

/**
 * Playback: push `toneMs` of a 24 kHz sine in `chunks` pushes, stop after `stopAfterMs`
 * (or never, if null), and tap the output with a recorder worklet.
 */
async function playback({
  toneMs = 1000,
  freq = 440,
  amplitude = 0.5,
  chunks = 10,
  stopAfterMs = 300,
  waitMs = 1500,
  contextRate,
}) {
  const ctx = contextRate ? new AudioContext({ sampleRate: contextRate }) : new AudioContext();
  await ctx.audioWorklet.addModule(`${WORKLETS}/playback-processor.js`);
  await ctx.audioWorklet.addModule('/pages/recorder-processor.js');
  if (ctx.state !== 'running') await ctx.resume();
  const node = new AudioWorkletNode(ctx, 'voicebot-playback', {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
  });
  const rec = new AudioWorkletNode(ctx, 'test-recorder', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    outputChannelCount: [1],
  });
  node.connect(rec).connect(ctx.destination);
  const messages = [];
  const t0 = performance.now();
  let stopped = null;
  let drained = null;
  node.port.onmessage = (ev) => {
    messages.push({ ...ev.data, t: performance.now() - t0 });
    if (ev.data.type === 'stopped') stopped = ev.data;
    if (ev.data.type === 'drained') drained = ev.data;
  };
  await sleep(100); // let the graph settle so the first quanta are not part of the measurement
  const total = Math.round((24000 * toneMs) / 1000);
  const per = Math.ceil(total / chunks);
  const pushAt = performance.now();
  for (let s = 0; s < total; s += per) {
    const n = Math.min(per, total - s);
    const pcm = new Int16Array(n);
    for (let i = 0; i < n; i++)
      pcm[i] = Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * freq * (s + i)) / 24000));
    node.port.postMessage({ type: 'push', pcm: pcm.buffer, turnId: 7 }, [pcm.buffer]);
  }
  if (stopAfterMs !== null) {
    // stop once the worklet reports ~stopAfterMs played (progress comes every 100 ms), so that a
    // loaded machine delaying timers does not let the whole tone run out first
    const tw = performance.now();
    const reached = () =>
      messages.some((m) => m.type === 'played' && m.playedMs >= stopAfterMs - 60);
    while (!reached() && performance.now() - tw < 5000) await sleep(2);
    node.port.postMessage({ type: 'stop' });
    const ts = performance.now();
    while (!stopped && performance.now() - ts < 2000) await sleep(5);
  }
  const sentStopAfterMs = performance.now() - pushAt;
  await sleep(waitMs);
  const blocks = await new Promise((resolve) => {
    rec.port.onmessage = (ev) => resolve(ev.data);
    rec.port.postMessage({ type: 'collect' });
  });
  const sampleRate = ctx.sampleRate;
  await ctx.close();
  return {
    sampleRate,
    messages,
    stopped,
    drained,
    sentStopAfterMs,
    frames: blocks.frames,
    peaks: blocks.peaks,
  };
}

/**
 * Two turns back to back (200 ms each) into a 1 s ring buffer, then a 1.5 s push that overflows it.
 * Returns the processor's messages.
 */
async function playbackTurns() {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(`${WORKLETS}/playback-processor.js`);
  if (ctx.state !== 'running') await ctx.resume();
  const node = new AudioWorkletNode(ctx, 'voicebot-playback', {
    numberOfInputs: 0,
    outputChannelCount: [1],
    processorOptions: { capacitySeconds: 1, progressMs: 50 },
  });
  node.connect(ctx.destination);
  const messages = [];
  let drained = 0;
  node.port.onmessage = (ev) => {
    messages.push(ev.data);
    if (ev.data.type === 'drained') drained++;
  };
  const tone = (ms) => {
    const n = (24000 * ms) / 1000;
    const pcm = new Int16Array(n);
    for (let i = 0; i < n; i++)
      pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 300 * i) / 24000));
    return pcm.buffer;
  };
  node.port.postMessage({ type: 'push', pcm: tone(200), turnId: 1 });
  node.port.postMessage({ type: 'push', pcm: tone(200), turnId: 2 });
  const t0 = performance.now();
  while (drained < 1 && performance.now() - t0 < 2000) await sleep(10);
  node.port.postMessage({ type: 'push', pcm: tone(1500), turnId: 3 });
  await sleep(100);
  node.port.postMessage({ type: 'stop' });
  await sleep(50);
  await ctx.close();
  return messages;
}

window.harness = { captureOffline, captureMic, captureControls, playback, playbackTurns };
window.harnessReady = true;
