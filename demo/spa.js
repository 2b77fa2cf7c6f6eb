// The SDK used directly in a single-page app with a custom UI.
import { VoiceBotClient } from '/sdk/voice-bot-sdk.js';

const { key, offline } = await (await fetch('/demo-config.json')).json();
if (offline) document.getElementById('offline-note').hidden = false;

const client = new VoiceBotClient({
  relayUrl: location.origin,
  clientKey: key,
  assetBaseUrl: '/sdk/',
});
const orb = document.getElementById('orb');
const log = document.getElementById('log');
let botItem;

function add(role, text) {
  const item = document.createElement('li');
  item.className = role;
  item.textContent = text;
  log.append(item);
  item.scrollIntoView({ block: 'end' });
  return item;
}

client.on('history', (messages) => {
  if (log.childElementCount === 0) for (const m of messages) add(m.role, m.text);
});
client.on('state', (state) => {
  document.getElementById('state').textContent = state;
  orb.dataset.state = state;
});
client.on('level', ({ input, output }) =>
  orb.style.setProperty('--level', String(Math.min(1, Math.max(input, output) * 4))),
);
client.on('transcript', ({ text, final }) => final && text && add('user', text));
client.on('text-delta', ({ text }) => ((botItem ??= add('assistant', '')).textContent = text));
client.on('message', ({ text, interrupted }) => {
  (botItem ??= add('assistant', '')).textContent = text + (interrupted ? ' —' : '');
  botItem = undefined;
});
client.on('metrics', (m) => {
  if (m.end_of_speech_to_first_audio_ms)
    document.getElementById('latency').textContent =
      `end of speech → first audio: ${m.end_of_speech_to_first_audio_ms} ms`;
});
client.on('error', (error) => add('error', `⚠ ${error.message}`));

orb.addEventListener('click', () => {
  const talking = orb.getAttribute('aria-pressed') === 'true';
  orb.setAttribute('aria-pressed', String(!talking));
  orb.setAttribute('aria-label', talking ? 'Start talking' : 'Stop talking');
  document.getElementById('orb-label').textContent = talking ? 'Talk' : 'Stop';
  if (talking) void client.stop();
  else client.start().catch(() => orb.setAttribute('aria-pressed', 'false'));
});
document.getElementById('ask').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('text');
  void client.sendText(input.value);
  input.value = '';
});
