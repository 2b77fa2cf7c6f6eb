import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_FIRST_CLAUSE,
  SentenceChunker,
  stripMarkdown,
  stripMarkup,
  type ChunkerOptions,
} from './chunker.js';
import { mulberry32 } from '@voice-bot/fake-provider';

/** Feed `deltas` then flush; returns every chunk in order. */
function feed(deltas: readonly string[], options?: ChunkerOptions): string[] {
  const chunker = new SentenceChunker(options);
  const out: string[] = [];
  for (const delta of deltas) out.push(...chunker.push(delta));
  out.push(...chunker.flush());
  return out;
}

function whole(text: string, options?: ChunkerOptions): string[] {
  return feed([text], options);
}

/** Every sentence boundary counts: no merging of short sentences. */
const EACH = { minChars: 0 } satisfies ChunkerOptions;

function randomSplit(text: string, random: () => number, maxPiece: number): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length;) {
    const n = 1 + Math.floor(random() * maxPiece);
    pieces.push(text.slice(i, i + n));
    i += n;
  }
  return pieces;
}

const noSpace = (s: string): string => s.replace(/\s+/g, '');

describe('SentenceChunker: sentence ends', () => {
  it('splits multiple sentences that arrive in one delta', () => {
    assert.deepEqual(whole('First one here. Second one! Third one? Fourth.', EACH), [
      'First one here.',
      'Second one!',
      'Third one?',
      'Fourth.',
    ]);
  });

  it('returns complete sentences from push() as soon as the next word starts', () => {
    const chunker = new SentenceChunker(EACH);
    assert.deepEqual(chunker.push('Is it ready? Yes'), ['Is it ready?']);
    assert.deepEqual(chunker.push('!'), []);
    assert.deepEqual(chunker.push(' Great'), ['Yes!']);
    assert.deepEqual(chunker.flush(), ['Great']);
  });

  it('waits for lookahead when a sentence end is split across deltas', () => {
    const chunker = new SentenceChunker(EACH);
    assert.deepEqual(chunker.push('Hello there'), []);
    assert.deepEqual(chunker.push('.'), [], 'cannot decide without the next character');
    assert.deepEqual(chunker.push(' '), [], 'still cannot: the next word may be lowercase');
    assert.deepEqual(chunker.push('Next'), ['Hello there.']);
    assert.deepEqual(chunker.push(' one'), []);
    assert.deepEqual(chunker.flush(), ['Next one']);
  });

  it('handles question and exclamation marks, including runs', () => {
    assert.deepEqual(whole('Really?! Yes!!! Why?? Because.', EACH), [
      'Really?!',
      'Yes!!!',
      'Why??',
      'Because.',
    ]);
  });

  it('keeps closing quotes and brackets with the sentence', () => {
    assert.deepEqual(whole('He said "hi." Then he left.', EACH), [
      'He said "hi."',
      'Then he left.',
    ]);
    assert.deepEqual(whole("She said 'no way!' Then (she left.) After that, silence.", EACH), [
      "She said 'no way!'",
      'Then (she left.)',
      'After that, silence.',
    ]);
    assert.deepEqual(whole('“Ready?” he asked. «Oui.» Fine.', EACH), [
      '“Ready?” he asked.',
      '«Oui.»',
      'Fine.',
    ]);
    assert.deepEqual(whole('This is **important.** Next line.', EACH), [
      'This is **important.**',
      'Next line.',
    ]);
  });

  it('does not split when the next word is lowercase on the same line', () => {
    assert.deepEqual(whole('"Wait!" she said. Fine.', EACH), ['"Wait!" she said.', 'Fine.']);
    assert.deepEqual(whole('Well... maybe not. I think… perhaps. Then… Later.', EACH), [
      'Well... maybe not.',
      'I think… perhaps.',
      'Then…',
      'Later.',
    ]);
  });

  it('does not split a terminator glued to the next character', () => {
    assert.deepEqual(whole('What?No way.Yes', EACH), ['What?No way.Yes']);
  });
});

describe('SentenceChunker: things that are not sentence ends', () => {
  it('abbreviations', () => {
    const text =
      'Mr. and Mrs. Smith met Ms. Jones, Dr. Who, Prof. X, Sr. Y and Jr. Z on Main St. near the gate. ' +
      'Apples vs. pears etc. are fruit, e.g. these, i.e. those. ' +
      'We meet at 9 a.m. or 5 p.m. in the U.S. with approx. ten people. ' +
      'Acme Inc. and Foo Ltd. and Bar Co. agree. See No. 5 please.';
    assert.deepEqual(whole(text, EACH), [
      'Mr. and Mrs. Smith met Ms. Jones, Dr. Who, Prof. X, Sr. Y and Jr. Z on Main St. near the gate.',
      'Apples vs. pears etc. are fruit, e.g. these, i.e. those.',
      'We meet at 9 a.m. or 5 p.m. in the U.S. with approx. ten people.',
      'Acme Inc. and Foo Ltd. and Bar Co. agree.',
      'See No. 5 please.',
    ]);
  });

  it('abbreviations are case-insensitive and may follow an opening bracket', () => {
    assert.deepEqual(whole('Fruit (E.G. Apples) is good. (Dr. Who) too.', EACH), [
      'Fruit (E.G. Apples) is good.',
      '(Dr. Who) too.',
    ]);
  });

  it('"no" is only an abbreviation before a number', () => {
    assert.deepEqual(whole('The answer is no. Nothing changes. Try no. 7 next.', EACH), [
      'The answer is no.',
      'Nothing changes.',
      'Try no. 7 next.',
    ]);
  });

  it('single capital initials', () => {
    assert.deepEqual(whole('J. R. R. Tolkien wrote it. So did C.S. Lewis. Done.', EACH), [
      'J. R. R. Tolkien wrote it.',
      'So did C.S. Lewis.',
      'Done.',
    ]);
  });

  it('decimals, prices and versions', () => {
    assert.deepEqual(
      whole('Pi is 3.14 roughly. It costs $4.50. Update to version 2.0.1 today. It is 42.', EACH),
      ['Pi is 3.14 roughly.', 'It costs $4.50.', 'Update to version 2.0.1 today.', 'It is 42.'],
    );
    // Split mid-number: "3." alone must not end the sentence.
    assert.deepEqual(feed(['Pi is 3', '.', '14 roughly. Ok'], EACH), ['Pi is 3.14 roughly.', 'Ok']);
  });

  it('URLs and email addresses', () => {
    assert.deepEqual(
      whole(
        'Visit example.com or https://docs.example.org/a.b?c=d.e for info. Mail a.b@c.io. Thanks.',
        EACH,
      ),
      [
        'Visit example.com or https://docs.example.org/a.b?c=d.e for info.',
        'Mail a.b@c.io.',
        'Thanks.',
      ],
    );
  });
});

describe('SentenceChunker: line structure', () => {
  it('paragraph breaks are boundaries even without punctuation', () => {
    assert.deepEqual(whole('Title line\n\nFirst paragraph text\n \n\nSecond paragraph', EACH), [
      'Title line',
      'First paragraph text',
      'Second paragraph',
    ]);
  });

  it('a single line break is not a boundary unless a list item follows', () => {
    assert.deepEqual(whole('Roses are red\nviolets are blue', EACH), [
      'Roses are red\nviolets are blue',
    ]);
    assert.deepEqual(
      whole('Steps:\n1. Open it\n2) Close it\n- Bullet\n* Star\n# Heading\nText', EACH),
      ['Steps:', '1. Open it', '2) Close it', '- Bullet', '* Star', '# Heading\nText'],
    );
  });

  it('a list number at line start is not a sentence end', () => {
    assert.deepEqual(whole('1. First item here\n2. Second item', EACH), [
      '1. First item here',
      '2. Second item',
    ]);
  });

  it('a line break after a sentence end splits even before lowercase', () => {
    assert.deepEqual(whole('First line.\nsecond line', EACH), ['First line.', 'second line']);
  });

  it('keeps a fenced code block whole in one chunk', () => {
    const text =
      'Run this.\n```js\nconst a = 1. B = 2. Done\n\nfoo();\n```\nThen you are done. Bye.';
    assert.deepEqual(whole(text, EACH), [
      'Run this.',
      '```js\nconst a = 1. B = 2. Done\n\nfoo();\n```',
      'Then you are done.',
      'Bye.',
    ]);
    // Never force-split inside the fence either.
    const code = `\`\`\`\n${'x = 1; '.repeat(30)}\n\`\`\`\n`;
    assert.deepEqual(whole(`${code}After.`, { minChars: 0, maxChars: 20 }), [
      code.trim(),
      'After.',
    ]);
  });
});

describe('SentenceChunker: CJK', () => {
  it('splits after 。！？ without whitespace', () => {
    assert.deepEqual(whole('你好。我很好！你呢？好的', EACH), [
      '你好。',
      '我很好！',
      '你呢？',
      '好的',
    ]);
    assert.deepEqual(whole('「こんにちは。」元気です。', EACH), ['「こんにちは。」', '元気です。']);
  });
});

describe('SentenceChunker: minChars / maxChars', () => {
  it('merges sentences shorter than minChars into the next one', () => {
    assert.deepEqual(whole('Hi. How are you today, my friend? Fine.'), [
      'Hi. How are you today, my friend?',
      'Fine.',
    ]);
    assert.deepEqual(whole('Yes. No. Maybe. Perhaps so, friend. Ok.', { minChars: 10 }), [
      'Yes. No. Maybe.',
      'Perhaps so, friend.',
      'Ok.',
    ]);
  });

  it('a short last chunk still comes out at flush', () => {
    const chunker = new SentenceChunker();
    assert.deepEqual(chunker.push('Ok. '), []);
    assert.deepEqual(chunker.flush(), ['Ok.']);
  });

  it('text without punctuation only comes out at maxChars or flush', () => {
    const chunker = new SentenceChunker({ maxChars: 30 });
    const out: string[] = [];
    for (const word of 'one two three four five six seven eight nine ten eleven twelve'.split(
      ' ',
    )) {
      out.push(...chunker.push(`${word} `));
    }
    assert.deepEqual(out, ['one two three four five six', 'seven eight nine ten eleven']);
    assert.deepEqual(chunker.flush(), ['twelve']);
    assert.ok(out.every((c) => c.length <= 30));
  });

  it('prefers a clause boundary when forcing a split', () => {
    assert.deepEqual(
      whole('This goes on and on, and it keeps going without a stop anywhere near', {
        maxChars: 40,
        minChars: 5,
      }),
      ['This goes on and on,', 'and it keeps going without a stop', 'anywhere near'],
    );
    // A clause boundary that would leave less than minChars loses to a later space.
    assert.deepEqual(
      whole('Yes, this goes on and on without a stop', { maxChars: 20, minChars: 10 }),
      ['Yes, this goes on', 'and on without a', 'stop'],
    );
  });

  it('hard-splits a word longer than maxChars without breaking surrogate pairs', () => {
    assert.deepEqual(whole('abcdefghijklmnopqrstuvwxyz', { maxChars: 10 }), [
      'abcdefghij',
      'klmnopqrst',
      'uvwxyz',
    ]);
    const emoji = '😀'.repeat(8); // 16 UTF-16 units
    const chunks = whole(emoji, { maxChars: 5 });
    assert.deepEqual(chunks, ['😀😀', '😀😀', '😀😀', '😀😀']);
  });

  it('only trailing sentence punctuation may run over maxChars', () => {
    assert.deepEqual(whole('a ...w', { minChars: 0, maxChars: 1 }), ['a', '...', 'w']);
    assert.deepEqual(whole('Stop it!!!" Now', { minChars: 0, maxChars: 7 }), [
      'Stop it!!!"',
      'Now',
    ]);
  });

  it('validates options', () => {
    assert.throws(() => new SentenceChunker({ maxChars: 0 }), RangeError);
    assert.throws(() => new SentenceChunker({ minChars: -1 }), RangeError);
    assert.throws(() => new SentenceChunker({ minChars: Number.NaN }), RangeError);
    assert.doesNotThrow(() => new SentenceChunker({ maxChars: Number.POSITIVE_INFINITY }));
  });
});

describe('SentenceChunker: output hygiene', () => {
  it('never emits whitespace-only chunks and trims chunks', () => {
    assert.deepEqual(feed(['  ', '\n\n', ' \t'], EACH), []);
    assert.deepEqual(whole('\n\n  Hello there.   \n\n\n  Bye now.  \n', EACH), [
      'Hello there.',
      'Bye now.',
    ]);
  });

  it('is reusable after flush', () => {
    const chunker = new SentenceChunker(EACH);
    assert.deepEqual([...chunker.push('One. Two'), ...chunker.flush()], ['One.', 'Two']);
    assert.deepEqual(
      [...chunker.push('1. Three. Four'), ...chunker.flush()],
      ['1. Three.', 'Four'],
    );
  });
});

const CORPUS = [
  '# Getting started\n\nHi! Mr. Smith paid $4.50 for version 2.0.1 at 9 a.m. in the U.S. today.',
  'J. R. R. Tolkien wrote e.g. this, i.e. that… and then… Well. He said "hi." Then left (quietly.) Ok?',
  'Visit example.com or mail a.b@c.io. Pi is 3.14159. The answer is no. No. 5 is fine.',
  'Steps:\n1. Install it\n2. Run `npm test`\n- a bullet\n* another\n\n',
  '```ts\nconst x = 1. Not a sentence. y();\n\nz();\n```\nAfter the code. 你好。我很好！你呢？好的，谢谢。',
  'A very long run on sentence without any terminal punctuation that just keeps going, and going; and going: ' +
    'until it is well past the limit so the chunker has to force a split somewhere sensible for the speech engine',
  ' Emoji 😀😀😀 and **bold.** And “quotes.” Wait!? What... no!!! Really?! Yes. Done',
].join(' ');

const OPTION_SETS: ChunkerOptions[] = [
  {},
  { minChars: 0 },
  { minChars: 0, maxChars: 15 },
  { minChars: 8, maxChars: 40 },
  { minChars: 30, maxChars: 60 },
  { maxChars: Number.POSITIVE_INFINITY },
  { firstClause: DEFAULT_FIRST_CLAUSE },
  { minChars: 0, maxChars: 40, firstClause: { minChars: 5, minWords: 2 } },
];

describe('SentenceChunker: split invariance', () => {
  for (const options of OPTION_SETS) {
    const label = JSON.stringify(options);
    const expected = whole(CORPUS, options);

    it(`keeps every character and emits clean chunks ${label}`, () => {
      assert.ok(expected.length > 1);
      assert.equal(noSpace(expected.join('')), noSpace(CORPUS));
      for (const chunk of expected) {
        assert.equal(chunk, chunk.trim());
        assert.notEqual(chunk, '');
      }
    });

    it(`gives the same chunks for every two-way split ${label}`, () => {
      for (let i = 0; i <= CORPUS.length; i++) {
        const got = feed([CORPUS.slice(0, i), CORPUS.slice(i)], options);
        assert.deepEqual(
          got,
          expected,
          `split at ${i}: ${JSON.stringify(CORPUS.slice(Math.max(0, i - 10), i + 10))}`,
        );
      }
    });

    it(`gives the same chunks for random and single-char splits ${label}`, () => {
      assert.deepEqual(feed([...CORPUS], options), expected, 'one UTF-16 unit per push');
      const random = mulberry32(0xc0ffee);
      for (let round = 0; round < 200; round++) {
        const pieces = randomSplit(CORPUS, random, round % 2 === 0 ? 4 : 40);
        assert.deepEqual(
          feed(pieces, options),
          expected,
          `round ${round}: ${JSON.stringify(pieces)}`,
        );
      }
    });
  }

  it('holds on random generated texts too', () => {
    const random = mulberry32(42);
    const atoms = [
      'word',
      'Word',
      ' ',
      ' ',
      ' ',
      '.',
      '. ',
      '! ',
      '? ',
      '…',
      '...',
      ', ',
      '\n',
      '\n\n',
      '"',
      ')',
      'Dr.',
      'e.g.',
      '3.14',
      'J.',
      '1. ',
      '- ',
      '```',
      '。',
      'x',
      'no.',
      ' 5',
      'a.b@c.io',
      '😀',
      ' - ',
      '—',
      ' – ',
      '1,000',
      'e.g., ',
      ': ',
      '; ',
    ];
    for (let round = 0; round < 300; round++) {
      let text = '';
      const n = 5 + Math.floor(random() * 80);
      for (let i = 0; i < n; i++) text += atoms[Math.floor(random() * atoms.length)] ?? '';
      const options = OPTION_SETS[round % OPTION_SETS.length];
      const expected = whole(text, options);
      assert.equal(noSpace(expected.join('')), noSpace(text), JSON.stringify(text));
      for (let split = 0; split < 5; split++) {
        const pieces = randomSplit(text, random, 1 + Math.floor(random() * 8));
        assert.deepEqual(feed(pieces, options), expected, JSON.stringify(pieces));
      }
    }
  });
});

describe('SentenceChunker: a first chunk that is a clause (firstClause)', () => {
  const FIRST = { firstClause: DEFAULT_FIRST_CLAUSE } satisfies ChunkerOptions;

  it('cuts the first chunk at a comma once it has 24 chars and 4 words; later chunks are sentences', () => {
    assert.deepEqual(
      whole(
        'Sure, we are open from nine to five on weekdays, and from ten to two on Saturday. After that, we close for the day, and the phones go quiet too. Anything else?',
        FIRST,
      ),
      [
        'Sure, we are open from nine to five on weekdays,',
        'and from ten to two on Saturday.',
        'After that, we close for the day, and the phones go quiet too.',
        'Anything else?',
      ],
    );
  });

  it('without the option, the same reply is chunked by sentences', () => {
    assert.deepEqual(
      whole('Sure, we are open from nine to five on weekdays, and from ten to two on Saturday.'),
      ['Sure, we are open from nine to five on weekdays, and from ten to two on Saturday.'],
    );
  });

  it('a clause that is too short (chars or words) is not cut', () => {
    assert.deepEqual(
      whole('Yes, of course, that works perfectly well for us on Monday.', FIRST),
      ['Yes, of course, that works perfectly well for us on Monday.'],
      '"Yes, of course," has 15 chars',
    );
    assert.deepEqual(
      whole('Unfortunately, notwithstanding everything, we cannot do that on Monday.', FIRST),
      ['Unfortunately, notwithstanding everything, we cannot do that on Monday.'],
      '"Unfortunately, notwithstanding everything," has 42 chars but 3 words',
    );
  });

  it('semicolons, colons and dashes end a first clause too', () => {
    assert.deepEqual(
      whole('The clinic on Main Street is closed today; the one on Oak Road is open.', FIRST),
      ['The clinic on Main Street is closed today;', 'the one on Oak Road is open.'],
    );
    assert.deepEqual(
      whole('Here is what you need to bring along: your card and a photo ID.', FIRST),
      ['Here is what you need to bring along:', 'your card and a photo ID.'],
    );
    assert.deepEqual(
      whole('I checked the calendar for you - Tuesday at noon is still free.', FIRST),
      ['I checked the calendar for you -', 'Tuesday at noon is still free.'],
    );
    assert.deepEqual(
      whole('I checked the calendar for you—Tuesday at noon is still free.', FIRST),
      ['I checked the calendar for you—', 'Tuesday at noon is still free.'],
    );
  });

  it('never cuts inside a number, a time or a range, nor after an abbreviation', () => {
    assert.deepEqual(
      whole('The membership costs 1,000 dollars a year, 9–5 support included.', FIRST),
      ['The membership costs 1,000 dollars a year,', '9–5 support included.'],
    );
    assert.deepEqual(whole('Our opening hours are 10:30 to 14:00 on Saturday and Sunday.', FIRST), [
      'Our opening hours are 10:30 to 14:00 on Saturday and Sunday.',
    ]);
    assert.deepEqual(
      whole('Bring anything that proves your address, e.g., a utility bill or a lease.', FIRST),
      ['Bring anything that proves your address,', 'e.g., a utility bill or a lease.'],
      'the first comma cuts; the one after "e.g." would not',
    );
    assert.deepEqual(
      whole('You can bring documents such as a passport etc., and we will check them.', FIRST),
      ['You can bring documents such as a passport etc., and we will check them.'],
    );
    assert.deepEqual(
      whole('The fee for children aged 1990—2000 rules apply here as usual.', FIRST),
      ['The fee for children aged 1990—2000 rules apply here as usual.'],
      'an em dash after a digit is a range',
    );
  });

  it('a short first sentence is merged forward and the clause counts from its start', () => {
    assert.deepEqual(
      whole('Hi there. I can look that up for you, one moment please. Done.', FIRST),
      ['Hi there. I can look that up for you,', 'one moment please. Done.'],
    );
  });

  it('only the first chunk: after a sentence, commas do not cut, also across flush()', () => {
    const chunker = new SentenceChunker(FIRST);
    const out = [
      ...chunker.push('Let me check the schedule for you. '),
      ...chunker.flush(),
      ...chunker.push('Okay, it looks like Tuesday at noon is free, and so is Wednesday.'),
      ...chunker.flush(),
    ];
    assert.deepEqual(out, [
      'Let me check the schedule for you.',
      'Okay, it looks like Tuesday at noon is free, and so is Wednesday.',
    ]);
  });

  it('a comma after a word cuts as it arrives, before the next token brings the space', () => {
    const chunker = new SentenceChunker(FIRST);
    const tokens = ["We're", ' open', ' until', ' six', ' on', ' Saturday', ','];
    assert.deepEqual(
      tokens.flatMap((t) => chunker.push(t)),
      ["We're open until six on Saturday,"],
    );
    assert.deepEqual([...chunker.push(' see you then.'), ...chunker.flush()], ['see you then.']);
    const number = new SentenceChunker(FIRST);
    assert.deepEqual(
      ['The membership costs 1', ','].flatMap((t) => number.push(t)),
      [],
      'a comma after a digit waits: "1,000"',
    );
  });

  it('not inside a code fence', () => {
    assert.deepEqual(whole('```\nconst a = 1, b = 2, c = 3, d = 4;\n```', FIRST), [
      '```\nconst a = 1, b = 2, c = 3, d = 4;\n```',
    ]);
  });

  it('rejects bad lengths', () => {
    assert.throws(
      () => new SentenceChunker({ firstClause: { minChars: -1, minWords: 2 } }),
      RangeError,
    );
  });
});

describe('SentenceChunker: cost', () => {
  it('push() does not rescan or copy the pending text (1-char deltas, unbounded chunk)', () => {
    const n = 400_000;
    for (const prefix of ['', '```\n']) {
      const chunker = new SentenceChunker({ maxChars: Number.POSITIVE_INFINITY });
      const deltas = Array.from({ length: n }, (_, i) => (i % 7 === 0 ? ' ' : 'a'));
      const started = performance.now();
      chunker.push(prefix);
      for (const delta of deltas) assert.equal(chunker.push(delta).length, 0);
      const rest = chunker.flush();
      const elapsed = performance.now() - started;
      assert.deepEqual(rest, [(prefix + deltas.join('')).trim()]);
      // Quadratic behaviour would take minutes here; linear takes well under a second.
      assert.ok(elapsed < 5000, `took ${Math.round(elapsed)} ms`);
    }
  });
});

describe('stripMarkdown', () => {
  it('removes emphasis, keeps words, apostrophes and snake_case', () => {
    assert.equal(
      stripMarkdown("**Bold** and *em* and _em_ and __strong__ and ~~gone~~ don't"),
      "Bold and em and em and strong and gone don't",
    );
    assert.equal(
      stripMarkdown('use snake_case_name and __init__ here'),
      'use snake_case_name and init here',
    );
    assert.equal(stripMarkdown('***both*** and _snake_case_'), 'both and snake_case');
    assert.equal(stripMarkdown('2 * 3 = 6 and 2*3*4'), '2 * 3 = 6 and 2*3*4');
  });

  it('removes unpaired markers left when emphasis spans two chunks', () => {
    assert.equal(stripMarkdown('**This is the first part.'), 'This is the first part.');
    assert.equal(stripMarkdown('and the rest.** Next'), 'and the rest. Next');
    assert.equal(stripMarkdown('*start of it'), 'start of it');
    assert.equal(stripMarkdown('end of it*.'), 'end of it.');
  });

  it('keeps inline code text, drops backticks', () => {
    assert.equal(
      stripMarkdown('Run `npm install` then ``a `b` c``.'),
      'Run npm install then a `b` c.',
    );
    assert.equal(stripMarkdown('Call `my_func(*args)` now'), 'Call my_func(*args) now');
  });

  it('drops fenced code blocks entirely', () => {
    assert.equal(stripMarkdown('Before:\n```python\nprint("hi")\n```\nAfter.'), 'Before: After.');
    assert.equal(stripMarkdown('Before:\n~~~\ncode\n~~~~\nAfter.'), 'Before: After.');
    assert.equal(stripMarkdown('Intro.\n```js\nunterminated(code);'), 'Intro.');
    assert.equal(stripMarkdown('```\nonly code\n```'), '');
    assert.equal(
      stripMarkdown('- Step one:\n    ```sh\n    make\n    ```\n- Step two'),
      'Step one: Step two',
    );
  });

  it('removes headings, list bullets, quotes, rules and task boxes', () => {
    assert.equal(
      stripMarkdown(
        '# Title #\n## Sub\n- one\n* two\n+ three\n1. four\n2) five\n> quoted\n---\n- [x] done\n- [ ] todo',
      ),
      'Title Sub one two three four five quoted done todo',
    );
    assert.equal(stripMarkdown('#hashtag and C# stay'), '#hashtag and C# stay');
    assert.equal(stripMarkdown('1999. A good year.'), '1999. A good year.');
  });

  it('keeps link text, drops link targets and images', () => {
    assert.equal(
      stripMarkdown(
        'See [the docs](https://x.io/a_(b) "Title") and ![logo](logo.png) and [ref][1] and <https://y.io>.',
      ),
      'See the docs and and ref and https://y.io.',
    );
    assert.equal(stripMarkdown('A note[^1] here.\n[1]: https://x.io'), 'A note here.');
  });

  it('removes HTML tags and comments, decodes entities', () => {
    assert.equal(
      stripMarkdown(
        '<p>Hello <b>world</b>,<br>next &amp; last &lt;3 &#8212; &#x41;</p><!-- hidden -->',
      ),
      'Hello world, next & last <3 — A',
    );
    assert.equal(stripMarkdown('if a < b and c > d'), 'if a < b and c > d');
  });

  it('flattens tables', () => {
    assert.equal(stripMarkdown('| Name | Age |\n|---|:---:|\n| Ann | 3 |'), 'Name, Age Ann, 3');
  });

  it('honours backslash escapes and collapses whitespace', () => {
    assert.equal(
      stripMarkdown('\\*not em\\* and \\_x\\_ \n\n\t  spaced'),
      '*not em* and _x_ spaced',
    );
  });

  it('keeps plain text as is (apart from whitespace)', () => {
    const plain =
      'It\'s 3.14, isn\'t it? Yes: "quoted" (and more)! Email a.b@c.io or visit example.com…';
    assert.equal(stripMarkdown(plain), plain);
  });

  it('gives what the full rule set gives when it skips the rules for plain text', () => {
    // Plain words and punctuation, and every piece of markup the rules know, mixed at random: text
    // without markup takes the shortcut, and a piece of markup the shortcut overlooked would differ.
    const plain = [
      ...['abc', 'XYZ', 'é', '1', '42', '3.14', 'word', 'Hello', '.', ',', ';', ':', '!', '?'],
      ...["'", '"', '(', ')', '/', '$', '%', '@', '^', '{', '}', '…', '“', '”', '🙂'],
      ...[' ', ' ', ' ', '  ', '\t', '\u00a0', '\u2028'],
    ];
    const markup = [
      ...[
        '**',
        '*',
        '_',
        '__',
        '~~',
        '`',
        '```',
        '\\*',
        '&amp;',
        '&#33;',
        '<b>',
        '<br/>',
        '<!-- c -->',
      ],
      ...['[a](http://x)', '![i](y)', '[^1]', '[x]: y', '# ', '> ', '- ', '+ ', '• ', '1. ', '2) '],
      ...[
        '| a | b |',
        '---',
        '===',
        '\n',
        '\r\n',
        '\r',
        '\ue000',
        '\ue001',
        '\ue12a',
        '\ue0000\ue001',
      ],
    ];
    const random = mulberry32(23);
    const pick = (list: string[]) => list[Math.floor(random() * list.length)] ?? '';
    let shortcuts = 0;
    for (let n = 0; n < 20_000; n++) {
      let text = '';
      const length = 1 + Math.floor(random() * 12);
      for (let i = 0; i < length; i++) text += pick(random() < 0.08 ? markup : plain);
      const full = stripMarkup(text);
      if (full === text.replace(/\s+/g, ' ').trim()) shortcuts++;
      assert.equal(stripMarkdown(text), full, JSON.stringify(text));
    }
    assert.ok(shortcuts > 5000, `${shortcuts} texts came out as plain text`);
  });
});
