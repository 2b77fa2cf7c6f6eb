import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EchoGate } from './echo-gate.js';

/** Deterministic pseudo-random levels around a mean, like frame RMS of real audio. */
function* levels(mean: number, spread: number, seed = 1): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    yield mean * (1 + spread * ((x / 2 ** 31) * 2 - 1));
  }
}

test('the bot alone, heard back through the speakers, is gated once the coupling is learnt', () => {
  const gate = new EchoGate();
  const reference = levels(0.1, 0.15);
  let admitted = 0;
  for (let i = 0; i < 200; i++) {
    const ref = reference.next().value as number;
    if (gate.admit(ref * 0.5, ref, false)) admitted++;
  }
  assert.equal(admitted, 0, 'an echo at -6 dB never passes');
  assert.ok(Math.abs(gate.estimatedCoupling - 0.5) < 0.05, `coupling ${gate.estimatedCoupling}`);
});

test('an echo louder than the speaker (coupling above 1) is learnt too', () => {
  const gate = new EchoGate();
  let admitted = 0;
  for (let i = 0; i < 200; i++) if (gate.admit(0.15, 0.1, false)) admitted++;
  assert.equal(
    admitted,
    0,
    `${admitted} echo frames passed while the gate learnt a +3.5 dB coupling`,
  );
  for (let i = 0; i < 100; i++) assert.equal(gate.admit(0.15, 0.1, false), false);
});

test('the visitor talking over the echo passes', () => {
  const gate = new EchoGate();
  for (let i = 0; i < 100; i++) gate.admit(0.05, 0.1, false); // learn coupling 0.5
  const echo = 0.05;
  const speech = 0.1; // as loud as the playback itself: 6 dB above its echo
  const mic = Math.sqrt(echo * echo + speech * speech);
  let passed = 0;
  for (let i = 0; i < 50; i++) if (gate.admit(mic, 0.1, i > 10)) passed++;
  assert.equal(passed, 50);
  assert.ok(gate.estimatedCoupling < 0.6, 'speech did not teach the gate that speech is echo');
});

test('nothing is gated while the bot is silent', () => {
  const gate = new EchoGate();
  assert.equal(gate.admit(0.0001, 0, false), true);
  assert.equal(gate.admit(0.2, 0.001, false), true);
});
