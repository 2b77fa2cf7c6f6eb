// Benchmark-only AudioWorklet module for mouth.html (bench/mouth-to-ear.ts). Added to the
// AudioWorkletGlobalScope before the SDK's own worklets, so it shares their global scope: every
// `audio` frame the capture processor posts and every `played`, `drained` and `stopped` report of
// the playback processor gets the render quantum it was posted in (`frame`: the scope's
// `currentFrame`) and the time (epoch ms, `t`), without touching the SDK's files.
const hasPerformance = typeof performance !== 'undefined' && typeof performance.now === 'function';
const now = hasPerformance ? () => performance.timeOrigin + performance.now() : () => Date.now();
const STAMPED = new Set(['audio', 'played', 'drained', 'stopped']);
const post = MessagePort.prototype.postMessage;
MessagePort.prototype.postMessage = function (message, transfer) {
  if (message && typeof message === 'object' && STAMPED.has(message.type)) {
    message.t = now();
    message.clock = hasPerformance ? 'performance' : 'date';
    message.frame = currentFrame;
  }
  return post.call(this, message, transfer);
};
