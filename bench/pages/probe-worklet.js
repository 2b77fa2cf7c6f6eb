// Benchmark-only AudioWorklet module. cost.html adds it to the AudioWorkletGlobalScope before the
// SDK's own worklets, so it shares their global scope: it stamps every `{ type: 'audio' }` frame the
// capture processor posts with the time it was posted (epoch ms), without touching the SDK's files.
const hasPerformance = typeof performance !== 'undefined' && typeof performance.now === 'function';
const now = hasPerformance ? () => performance.timeOrigin + performance.now() : () => Date.now();
const post = MessagePort.prototype.postMessage;
MessagePort.prototype.postMessage = function (message, transfer) {
  if (message && typeof message === 'object' && message.type === 'audio') {
    message.t = now();
    message.clock = hasPerformance ? 'performance' : 'date';
  }
  return post.call(this, message, transfer);
};
