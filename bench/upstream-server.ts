/**
 * Child process: the fake OpenAI-compatible upstream with the scripted latencies of issue 9.
 * - STT answers `bytes <N>` where N is the PCM size of the uploaded WAV, so the load generator can
 *   check that no uplink audio frame was lost between it and the provider.
 * - Chat streams {@link REPLY} (or argv[2] `{reply}`) at 40 tokens/s after a 300 ms TTFT.
 * - TTS sends the default tone for the text (cached per sentence: the tone is deterministic and
 *   computing it is the fake's cost, not the relay's), 150 ms TTFB, paced at real time.
 * - Idle keep-alive connections stay open for 60 s (see below).
 * IPC: sends `{type:'ready', url}`; answers `{type:'stats'}` with `{type:'stats', stats}`.
 */
import { createFakeUpstream, synthesizeTone } from '@voice-bot/fake-provider';
import { LATENCY, ProcessProbe, REPLY, type IpcMessage } from './common.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { reply?: string };
const reply = config.reply ?? REPLY;
const tones = new Map<string, Uint8Array>();
const upstream = createFakeUpstream({
  latency: LATENCY,
  // Node's default 5 s idle timeout would make the relay's HTTP client (undici: the announced
  // timeout minus 1 s) drop and reopen hundreds of connections under bursty load, and race the
  // server's close when its event loop lags; hosted providers keep idle connections far longer.
  keepAliveTimeoutMs: 60_000,
  transcribe: (req) => `bytes ${req.wav.dataBytes}`,
  chat: () => ({ content: reply }),
  speech: (req) => {
    let pcm = tones.get(req.input);
    if (!pcm) {
      pcm = synthesizeTone(req.input);
      if (tones.size < 64) tones.set(req.input, pcm);
    }
    return { pcm };
  },
});
const served = await upstream.listen(0); // closed by process exit
// The fake records every request for tests; a benchmark only needs the recent ones.
const trim = setInterval(
  () => upstream.requests.splice(0, Math.max(0, upstream.requests.length - 1000)),
  2000,
);
trim.unref();

const probe = new ProcessProbe();
probe.start();
process.on('message', (m: IpcMessage) => {
  if (m.type === 'window-start') probe.start();
  else if (m.type === 'stats') process.send?.({ type: 'stats', stats: probe.stop() });
  else if (m.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', url: served.url });
