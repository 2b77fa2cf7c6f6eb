import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chunkDocument, HEADING_SEPARATOR, MAX_CHUNK_CHARS } from './chunk.js';
import { extract, extractHtml, extractMarkdown, formatOf } from './extract.js';
import { makePdf } from './pdf.fixture.js';

const allText = (doc: { sections: { headings: string[]; text: string }[] }) =>
  doc.sections.map((s) => `${s.headings.join('/')}: ${s.text}`).join('\n');

describe('extract', () => {
  test('Markdown: title, heading paths, inline markup and code kept as text', () => {
    const doc = extractMarkdown(
      [
        '---',
        'title: "Parking & access"',
        '---',
        '# Parking',
        '',
        'There are **twelve** free spaces behind the [clinic](https://x.test/).',
        'Ask at the desk.',
        '',
        '## Bicycles',
        '',
        '- Racks by the *front* door',
        '- Covered racks at the back',
        '',
        '```',
        '# not a heading',
        '```',
        '',
        'Other',
        '-----',
        'Setext body.',
      ].join('\n'),
      'fallback',
    );
    assert.equal(doc.title, 'Parking & access');
    assert.deepEqual(
      doc.sections.map((s) => s.headings),
      [['Parking'], ['Parking', 'Bicycles'], ['Parking', 'Other']],
    );
    assert.equal(
      doc.sections[0]?.text,
      'There are twelve free spaces behind the clinic. Ask at the desk.',
    );
    assert.equal(
      doc.sections[1]?.text,
      'Racks by the front door\n\nCovered racks at the back\n\n# not a heading',
    );
  });

  test('HTML: the main content only, never navigation, header, footer or scripts', async () => {
    const html = `<!doctype html><html><head><title>Insurance | Acme Dental</title><style>.x{}</style></head>
      <body><header><a href="/">Acme Dental</a> HEADERCHROME</header>
      <nav><a href="/services">Services</a> NAVCHROME</nav>
      <main><h1>Insurance</h1><p>We accept BlueCross and Delta plans.</p>
        <h2>Claims</h2><p>We file claims for you.</p><script>var SCRIPTCHROME = 1;</script>
        <aside>ASIDECHROME</aside></main>
      <footer>FOOTERCHROME © Acme</footer></body></html>`;
    const doc = await extractHtml(html, 'fallback');
    assert.equal(doc.title, 'Insurance');
    assert.deepEqual(doc.sections, [
      { headings: ['Insurance'], text: 'We accept BlueCross and Delta plans.' },
      { headings: ['Insurance', 'Claims'], text: 'We file claims for you.' },
    ]);
    assert.doesNotMatch(allText(doc), /CHROME/);
  });

  test('HTML without <main>: Readability finds the article; the chrome stays out', async () => {
    const para = (n: number) =>
      `<p>Paragraph ${n} about root canal treatment at the clinic, what happens before, during and after it, and how long recovery takes for most patients.</p>`;
    const html = `<html><head><title>Root canals</title></head><body>
      <div class="menu"><a href="/a">Home</a> | <a href="/b">About</a> | <a href="/c">Contact</a></div>
      <div class="content"><h2>What to expect</h2>${[1, 2, 3, 4].map(para).join('')}</div>
      <div class="footer"><a href="/privacy">Privacy</a> | <a href="/terms">Terms</a></div></body></html>`;
    const doc = await extractHtml(html, 'fallback');
    assert.equal(doc.title, 'Root canals');
    const text = allText(doc);
    assert.match(text, /Paragraph 4 about root canal/);
    assert.doesNotMatch(text, /Privacy|Contact/);
  });

  test('PDF: text page by page, the title from its metadata', async () => {
    const pdf = makePdf(
      [['Warranty', 'Crowns are guaranteed for five years.'], ['Second page text.']],
      'Patient handbook',
    );
    const doc = await extract(pdf, 'pdf', 'handbook');
    assert.equal(doc.title, 'Patient handbook');
    assert.deepEqual(
      doc.sections.map((s) => s.headings),
      [['Page 1'], ['Page 2']],
    );
    assert.match(doc.sections[0]?.text ?? '', /Crowns are guaranteed for five years\./);
    await assert.rejects(extract(Buffer.from('not a pdf'), 'pdf', 'x'), /not a readable PDF/);
  });

  test('formats by extension and content type', () => {
    assert.equal(formatOf('notes/Parking.MD'), 'markdown');
    assert.equal(formatOf('https://x.test/prices', 'text/html; charset=utf-8'), 'html');
    assert.equal(formatOf('/brochure', 'application/pdf'), 'pdf');
    assert.equal(formatOf('readme.txt'), 'text');
    assert.equal(formatOf('photo.jpg', 'image/jpeg'), undefined);
  });
});

describe('chunk', () => {
  test('chunks follow headings, stay under the bound, and split long paragraphs between sentences', () => {
    const sentence = 'This sentence is about dental implants and what they cost. ';
    const long = sentence.repeat(60).trim();
    const chunks = chunkDocument({
      title: 'T',
      sections: [
        { headings: ['Implants'], text: `Short intro.\n\n${long}` },
        { headings: ['Implants', 'Costs'], text: 'One line.' },
      ],
    });
    assert.ok(chunks.length >= 4);
    for (const chunk of chunks)
      assert.ok(chunk.text.length <= MAX_CHUNK_CHARS, `${chunk.text.length}`);
    const implants = chunks.filter((c) => c.heading === 'Implants');
    assert.ok(
      implants.every((c) => /\.$/.test(c.text)),
      'cut between sentences',
    );
    assert.equal(
      implants
        .map((c) => c.text)
        .join(' ')
        .replace(/\n\n/g, ' '),
      `Short intro. ${long}`,
    );
    assert.deepEqual(chunks.at(-1), {
      position: chunks.length - 1,
      heading: `Implants${HEADING_SEPARATOR}Costs`,
      text: 'One line.',
    });
    assert.deepEqual(
      chunks.map((c) => c.position),
      chunks.map((_c, i) => i),
    );
  });
});
