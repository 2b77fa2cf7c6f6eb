// Shared instrumentation of the benchmark pages (cost.html, timeline.html), loaded by a classic
// <script> before each page's own: it adds probe-worklet.js to every AudioWorklet before the SDK's
// own modules, and offers the pages an epoch clock and hooks on the SDK's worklet nodes and on
// WebSocket sends. The SDK itself is loaded unmodified from the relay's /sdk/.
(() => {
  const addModule = AudioWorklet.prototype.addModule;
  const probes = new WeakMap();
  AudioWorklet.prototype.addModule = function (url, options) {
    let probe = probes.get(this);
    if (!probe) {
      probe = addModule.call(this, new URL('/probe-worklet.js', location.href).href);
      probes.set(this, probe);
    }
    return probe.then(() => addModule.call(this, url, options));
  };

  window.__instrument = {
    /** Epoch ms, as the probe worklet stamps them where `performance` exists. */
    now: () => performance.timeOrigin + performance.now(),
    /** Calls `hook(node, name, context)` for every AudioWorkletNode the page creates. */
    onWorkletNode(hook) {
      const NativeNode = window.AudioWorkletNode;
      window.AudioWorkletNode = class extends NativeNode {
        constructor(context, name, options) {
          super(context, name, options);
          hook(this, name, context);
        }
      };
    },
    /** Calls `hook(data)` before every WebSocket message is sent. */
    onSocketSend(hook) {
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function (data) {
        hook(data);
        return send.call(this, data);
      };
    },
  };
})();
