// Benchmark-only AudioWorklet module. The benchmark pages (cost.html, timeline.html) add it to the
// AudioWorkletGlobalScope before the SDK's own worklets, so it shares their global scope: it stamps
// every `{ type: 'audio' }` frame the capture processor posts and every `{ type: 'stopped' }` reply
// of the playback processor with the time it was posted (epoch ms, `t`) and the render quantum it
// was posted in (`frame`: the scope's `currentFrame`), without touching the SDK's files.
const hasPerformance = typeof performance !== 'undefined' && typeof performance.now === 'function';
const now = hasPerformance ? () => performance.timeOrigin + performance.now() : () => Date.now();
const post = MessagePort.prototype.postMessage;
MessagePort.prototype.postMessage = function (message, transfer) {
  if (
    message &&
    typeof message === 'object' &&
    (message.type === 'audio' || message.type === 'stopped')
  ) {
    message.t = now();
    message.clock = hasPerformance ? 'performance' : 'date';
    message.frame = currentFrame;
  }
  return post.call(this, message, transfer);
};
