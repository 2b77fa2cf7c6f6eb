import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  END_OF_TURN_DEFAULTS,
  TURN_WORDS,
  classifyTurnEnding,
  rulesEndOfTurnPolicy,
  type TurnEnding,
} from './end-of-turn.js';

const cases: Record<string, Record<TurnEnding, string[]>> = {
  en: {
    complete: [
      'What are your opening hours on Saturday?',
      'Hi there. What are your opening hours on Saturday?',
      'I would like to book an appointment for next Tuesday at ten in the morning, please.',
      'Stop.',
      'What are you waiting for?',
      'I think so.',
      'That is all I wanted to ask about.',
      'Is it open on Sunday, or?',
      '"Can I bring my dog?"',
      'Yes!',
    ],
    incomplete: [
      'I would like to book a table for Friday and',
      'I would like to book a table for Friday, and',
      'Can I get the, um',
      'Can I get the, um.',
      'I need eggs, milk, bread,',
      'I need eggs, milk and',
      'So I was wondering if',
      'My question is about the...',
      'My question is about the…',
      'We want to come because',
      'Could you tell me the price of',
      'It was like',
      'It was, you know',
      'I want the.',
      'Uh.',
      'I want to go to',
    ],
    open: ['Hi there.', 'Hello.', 'Good morning!', 'Excuse me.'],
    unknown: ['', '   ', 'what are your opening hours', 'book a table for four people'],
  },
  de: {
    complete: [
      'Wann haben Sie am Samstag geöffnet?',
      'Ich möchte einen Termin am Dienstag um zehn Uhr.',
      'Das ist richtig, oder?',
      'Ich nehme die.',
    ],
    incomplete: [
      'Ich hätte gern einen Tisch für Freitag und',
      'Ich möchte gern, ähm',
      'Das kostet, äh.',
      'Wir kommen später, weil',
      'Ich brauche Eier, Milch,',
      'Ich nehme das mit',
    ],
    open: ['Hallo.', 'Guten Tag!'],
    unknown: ['wann haben sie geöffnet'],
  },
  fr: {
    complete: [
      'Quels sont vos horaires le samedi ?',
      'Je voudrais réserver une table pour quatre personnes.',
      "C'est bien, hein ?",
    ],
    incomplete: [
      'Je voudrais réserver une table pour vendredi et',
      "Je viens parce qu'",
      'Je voudrais, euh',
      'Il me faut du pain, du lait,',
      'Je cherche le',
      'Alors, donc',
    ],
    open: ['Bonjour.', 'Bonjour madame !'],
    unknown: ['je voudrais un rendez vous'],
  },
  es: {
    complete: [
      '¿Cuál es su horario el sábado?',
      'Quiero reservar una mesa para cuatro personas.',
      'Creo que sí.',
    ],
    incomplete: [
      'Quiero reservar una mesa para el viernes y',
      'Quisiera, eh',
      'Necesito huevos, leche,',
      'Vamos más tarde porque',
      'Quiero pedir una',
      'O sea',
    ],
    open: ['Hola.', 'Buenos días.'],
    unknown: ['quiero reservar una mesa'],
  },
  hi: {
    complete: ['शनिवार को आप कब खुलते हैं?', 'मुझे मंगलवार को दस बजे का समय चाहिए।'],
    incomplete: ['मुझे एक टेबल चाहिए और', 'मुझे, उम्म', 'हम देर से आएंगे क्योंकि', 'दूध, ब्रेड,'],
    open: ['नमस्ते।', 'हेलो!'],
    unknown: ['मुझे एक टेबल चाहिए'],
  },
};

describe('classifyTurnEnding: real sentences', () => {
  for (const [language, byEnding] of Object.entries(cases)) {
    for (const [ending, sentences] of Object.entries(byEnding)) {
      it(`${language}: ${ending}`, () => {
        for (const sentence of sentences)
          assert.equal(
            classifyTurnEnding(sentence, language),
            ending,
            `${JSON.stringify(sentence)} (${language})`,
          );
      });
    }
  }

  it('every language the widget’s strings cover, and de/fr, has word lists', () => {
    for (const language of ['en', 'es', 'hi', 'de', 'fr'])
      assert.ok(TURN_WORDS[language], language);
  });

  it('a region subtag picks its language; unknown languages fall back to English', () => {
    assert.equal(classifyTurnEnding('Ich komme morgen und', 'de-CH'), 'incomplete');
    assert.equal(classifyTurnEnding('Ich komme morgen und', 'en'), 'unknown');
    assert.equal(classifyTurnEnding('I will come tomorrow and', 'it'), 'incomplete');
    assert.equal(classifyTurnEnding('I will come tomorrow and', undefined), 'incomplete');
  });

  it('the language decides: the same word ends a clause in one language and not in another', () => {
    // "die" is an article (or pronoun) in German, a verb in English
    assert.equal(classifyTurnEnding('I do not want the plant to die.', 'en'), 'complete');
    // Spanish "y" (and) leaves the clause open; in English it means nothing
    assert.equal(classifyTurnEnding('Quiero pan y', 'es'), 'incomplete');
    assert.equal(classifyTurnEnding('Quiero pan y', 'en'), 'unknown');
  });
});

describe('rulesEndOfTurnPolicy', () => {
  const policy = rulesEndOfTurnPolicy();
  const needed = (transcript: string | undefined, language = 'en'): number =>
    policy.silenceNeededMs({ transcript, pauseMs: 220, language });

  it('short after a complete question, long after a trailing conjunction, the fallback without a transcript', () => {
    assert.equal(needed('What is the weather like in Paris today?'), 350);
    assert.equal(needed('I would like to book an appointment and'), 1200);
    assert.equal(needed('Can I get the, um'), 1200);
    assert.equal(needed(undefined), 700);
    assert.equal(needed('  '), 700);
    assert.equal(needed('Hi there.'), 700, 'a greeting is usually followed by the question');
    assert.deepEqual(END_OF_TURN_DEFAULTS, {
      completeMs: 350,
      incompleteMs: 1200,
      fallbackMs: 700,
    });
  });

  it('takes its timings and extra languages as options', () => {
    const custom = rulesEndOfTurnPolicy({
      completeMs: 300,
      incompleteMs: 1000,
      fallbackMs: 600,
      words: {
        it: { fillers: ['ehm'], continuations: ['e', 'ma', 'perché'], soft: [], openers: ['ciao'] },
      },
    });
    const it = (transcript: string): number =>
      custom.silenceNeededMs({ transcript, pauseMs: 220, language: 'it-IT' });
    assert.equal(it('A che ora aprite sabato?'), 300);
    assert.equal(it('Vorrei un tavolo per venerdì e'), 1000);
    assert.equal(it('Ciao.'), 600);
  });

  it('a classifier (a learned model) can give the verdict: a class or the probability of a complete turn', () => {
    const model = rulesEndOfTurnPolicy({
      classify: (transcript) =>
        transcript.includes('maybe') ? 0.5 : transcript.length > 5 ? 1 : 'incomplete',
    });
    const at = (transcript: string): number =>
      model.silenceNeededMs({ transcript, pauseMs: 220, language: 'en' });
    assert.equal(at('maybe tomorrow'), 775, 'halfway between 1200 and 350');
    assert.equal(at('Book it for me'), 350);
    assert.equal(at('and'), 1200);
  });

  it('refuses timings that are not durations', () => {
    assert.throws(() => rulesEndOfTurnPolicy({ completeMs: -1 }), RangeError);
    assert.throws(() => rulesEndOfTurnPolicy({ incompleteMs: Number.NaN }), RangeError);
  });
});
