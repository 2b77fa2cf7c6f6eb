// A stand-in for stt-worker.js that speaks the same protocol (packages/sdk/src/stt/protocol.ts)
// without a model: `load` → progress → ready (or a failure, by model id: fake/hang never answers,
// fake/broken fails, fake/slow stops at 50 % until told to go on); `transcribe` → text.
// It answers `concurrent` if a second transcription arrives while one runs.
let busy = false;
let model = '';
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

self.addEventListener('message', async (event) => {
  const message = event.data;
  if (message.type === 'load') {
    model = message.model;
    if (model === 'fake/hang') return; // never answers: the SDK must time out
    if (model === 'fake/broken') {
      self.postMessage({
        type: 'load-error',
        message: 'Could not locate file: "/models/fake/broken/config.json".',
      });
      return;
    }
    if (model === 'fake/slow') {
      // A download that stops halfway until the page posts 'continue' on the `fake-stt`
      // BroadcastChannel, so a test can look at it; the file names what the SDK asked for.
      const file = `${message.modelBaseUrl}${model}/onnx/encoder_model_${message.dtype ?? 'default'}.onnx`;
      const halfway = new Promise(
        (resolve) =>
          (new BroadcastChannel('fake-stt').onmessage = (e) => e.data === 'continue' && resolve()),
      );
      for (let percent = 0; percent <= 100; percent += 10) {
        if (percent === 60) await halfway;
        await wait(100);
        self.postMessage({ type: 'progress', file, loaded: percent * 100, total: 10_000, percent });
      }
      self.postMessage({ type: 'ready', device: 'wasm', loadMs: 1100 });
      return;
    }
    const total = 3000;
    for (const loaded of [0, 1000, 2000, 3000]) {
      await wait(30);
      self.postMessage({
        type: 'progress',
        file: 'onnx/encoder_model.onnx',
        loaded,
        total,
        percent: Math.round((loaded / total) * 100),
      });
    }
    self.postMessage({
      type: 'ready',
      device: 'wasm',
      loadMs: 120,
      echo: {
        modelBaseUrl: message.modelBaseUrl,
        cache: message.cache,
        wasmPaths: message.wasmPaths,
        device: message.device,
      },
    });
    return;
  }
  if (message.type === 'transcribe') {
    if (busy) {
      self.postMessage({ type: 'transcribe-error', id: message.id, message: 'concurrent' });
      return;
    }
    busy = true;
    await wait(200);
    busy = false;
    const audio = message.audio;
    let peak = 0;
    for (let i = 0; i < audio.length; i++) peak = Math.max(peak, Math.abs(audio[i]));
    self.postMessage({
      type: 'result',
      id: message.id,
      text: `fake transcript ${message.id}: ${audio.length} samples, peak ${peak.toFixed(2)}`,
      ms: 200,
    });
  }
});
