// A stand-in for stt-worker.js that speaks the same protocol (packages/sdk/src/stt/protocol.ts)
// without a model: `load` → progress → ready (or a failure, by model id); `transcribe` → text.
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
      self.postMessage({ type: 'load-error', message: 'Could not locate file: "/models/fake/broken/config.json".' });
      return;
    }
    const total = 3000;
    for (const loaded of [0, 1000, 2000, 3000]) {
      await wait(30);
      self.postMessage({ type: 'progress', file: 'onnx/encoder_model.onnx', loaded, total, percent: Math.round((loaded / total) * 100) });
    }
    self.postMessage({ type: 'ready', device: 'wasm', loadMs: 120, echo: { localModelPath: message.localModelPath, wasmPaths: message.wasmPaths, device: message.device } });
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
    self.postMessage({ type: 'result', id: message.id, text: `fake transcript ${message.id}: ${audio.length} samples, peak ${peak.toFixed(2)}`, ms: 200 });
  }
});
