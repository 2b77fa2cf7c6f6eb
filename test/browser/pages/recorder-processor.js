// Test-only AudioWorklet: taps its input and reports, per render quantum, the context frame and the
// peak absolute sample, so a test can tell exactly from which quantum a signal went silent.
class TestRecorderProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frames = [];
    this.peaks = [];
    this.port.onmessage = (ev) => {
      if (ev.data && ev.data.type === 'collect') {
        this.port.postMessage({ type: 'blocks', frames: this.frames, peaks: this.peaks });
        this.frames = [];
        this.peaks = [];
      }
    };
  }

  process(inputs, outputs) {
    const input = inputs[0];
    let peak = 0;
    if (input && input.length > 0) {
      for (const ch of input)
        for (let i = 0; i < ch.length; i++) peak = Math.max(peak, Math.abs(ch[i]));
      const out = outputs[0];
      if (out)
        for (let c = 0; c < out.length; c++) out[c].set(input[Math.min(c, input.length - 1)]);
    }
    this.frames.push(currentFrame);
    this.peaks.push(peak);
    return true;
  }
}
registerProcessor('test-recorder', TestRecorderProcessor);
