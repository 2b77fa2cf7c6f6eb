import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  BrowserTts,
  lastSentenceEnd,
  speechSynthesisOutput,
  type SpeechOutput,
} from './browser-tts.js';

/** A voice that records what it is asked to say (and `cancel`s). */
function voice(): SpeechOutput & { said: string[] } {
  const said: string[] = [];
  return {
    said,
    speak: (sentence) => void said.push(sentence),
    cancel: () => void said.push('<cancel>'),
  };
}

describe('BrowserTts', () => {
  it('speaks each sentence once it is complete in the streamed text, and the rest when the reply is done', () => {
    const out = voice();
    const tts = new BrowserTts(() => out);
    tts.reply(1, 'Hello from Acme', false);
    tts.reply(1, 'Hello from Acme Dental! We open at 9.30 tomorrow', false);
    tts.reply(1, 'Hello from Acme Dental! We open at 9.30 tomorrow, for cleanings.', false);
    assert.deepEqual(
      out.said,
      ['Hello from Acme Dental!'],
      '"9.30" is not a sentence end, the last one waits for what follows',
    );
    tts.reply(1, 'Hello from Acme Dental! We open at 9.30 tomorrow, for cleanings. Bye', true);
    assert.deepEqual(out.said, [
      'Hello from Acme Dental!',
      'We open at 9.30 tomorrow, for cleanings. Bye',
    ]);
    tts.reply(1, 'Hello from Acme Dental! We open at 9.30 tomorrow, for cleanings. Bye', true);
    assert.equal(out.said.length, 2, 'nothing twice');
  });

  it('cancel() stops speaking and the rest of that reply stays unspoken; the next turn speaks', () => {
    const out = voice();
    const tts = new BrowserTts(() => out);
    tts.reply(1, 'One. Two ', false);
    tts.cancel();
    tts.reply(1, 'One. Two. Three.', true);
    tts.reply(2, 'Next. ', false);
    assert.deepEqual(out.said, ['One.', '<cancel>', 'Next.']);
  });

  it('reset() (a new socket) lets the new turn 1 speak even though the old turn 1 was cut', () => {
    const out = voice();
    const tts = new BrowserTts(() => out);
    tts.reply(1, 'Old. ', false);
    tts.cancel();
    tts.reset();
    tts.reply(1, 'New.', true);
    assert.deepEqual(out.said, ['Old.', '<cancel>', 'New.']);
  });

  it('without speech synthesis nothing happens', () => {
    const tts = new BrowserTts(() => undefined);
    tts.reply(1, 'Hello. ', false);
    tts.cancel();
  });

  it('lastSentenceEnd: just past the last ., !, ?, । or … followed by whitespace', () => {
    assert.equal(lastSentenceEnd('No end'), 0);
    assert.equal(lastSentenceEnd('Hi! How are you? Fine'), 16);
    assert.equal(lastSentenceEnd('नमस्ते। आप'), 7);
    assert.equal(lastSentenceEnd('Costs 3.5 euros'), 0);
  });
});

describe('speechSynthesisOutput', () => {
  const globals = globalThis as { speechSynthesis?: unknown; SpeechSynthesisUtterance?: unknown };
  afterEach(() => {
    delete globals.speechSynthesis;
    delete globals.SpeechSynthesisUtterance;
  });

  it('speaks through the page’s speechSynthesis in the given language; none where there is none', () => {
    assert.equal(speechSynthesisOutput('es-ES'), undefined);
    const spoken: string[] = [];
    globals.SpeechSynthesisUtterance = class {
      lang = '';
      constructor(readonly text: string) {}
    };
    globals.speechSynthesis = {
      speak: (u: { text: string; lang: string }) => spoken.push(`${u.lang}|${u.text}`),
      cancel: () => spoken.push('cancel'),
    };
    const es = speechSynthesisOutput('es-ES');
    es?.speak('Hola.');
    es?.cancel();
    speechSynthesisOutput(undefined)?.speak('Default voice.');
    assert.deepEqual(spoken, ['es-ES|Hola.', 'cancel', '|Default voice.']);
  });
});
