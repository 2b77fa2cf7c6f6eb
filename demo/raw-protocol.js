// The wire protocol used directly, without the SDK: a text question, a streamed and spoken answer.
import { PROTOCOL_VERSION, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from '/sdk/browser/voice-bot-sdk.js';

const log = document.getElementById('log');
const { key, offline } = await (await fetch('/demo-config.json')).json();
if (offline) document.getElementById('mode').textContent = 'Offline demo: replies are scripted and spoken as a tone. Set OPENAI_API_KEY and restart for a real assistant.';

const session = await (await fetch('/v1/sessions', { method: 'POST', headers: { authorization: `Bearer ${key}` } })).json();
const ws = new WebSocket(session.ws_url, [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + session.token]);
ws.binaryType = 'arraybuffer';
let audio;
let playAt = 0;
let botLine;

function line(cls, text) {
  const p = document.createElement('p');
  p.className = cls;
  p.textContent = text;
  log.append(p);
  return p;
}

ws.onopen = () => ws.send(JSON.stringify({ type: 'start', protocol_version: PROTOCOL_VERSION, input: 'text', output: 'audio' }));
ws.onmessage = ({ data }) => {
  if (data instanceof ArrayBuffer) {
    const pcm = new Int16Array(data);
    const buffer = audio.createBuffer(1, pcm.length, 24000);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    const source = audio.createBufferSource();
    source.buffer = buffer;
    source.connect(audio.destination);
    playAt = Math.max(playAt, audio.currentTime);
    source.start(playAt);
    playAt += buffer.duration;
    return;
  }
  const message = JSON.parse(data);
  if (message.type === 'text_delta') (botLine ??= line('bot', '')).textContent += message.delta;
  if (message.type === 'done') botLine = undefined;
  if (message.type === 'error') line('error', `⚠ ${message.message}`);
};

document.getElementById('ask').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('text');
  if (!input.value.trim()) return;
  audio ??= new AudioContext();
  line('user', input.value);
  ws.send(JSON.stringify({ type: 'text', text: input.value }));
  input.value = '';
});
