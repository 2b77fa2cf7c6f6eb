/**
 * Documents → titled sections of plain text, each under its heading path. Markdown by its
 * headings; HTML by its main content only (`<main>`/`<article>` when the page marks it, else
 * Readability's guess, else the body), never the navigation, header, footer or scripts around it;
 * plain text as it is; PDF page by page. The parsers (linkedom and Readability for HTML, unpdf
 * for PDF) are loaded by the first document that needs them.
 */
import { MissingDependencyError, importOptional } from '../dependencies.js';
import { KnowledgeError } from './errors.js';

/** A parser of a document format, loaded on first use; not installed → KnowledgeError `unsupported`. */
async function parser<T>(packageName: string, format: string, load: () => Promise<T>): Promise<T> {
  try {
    return await importOptional(packageName, `Reading ${format}`, load);
  } catch (error) {
    if (error instanceof MissingDependencyError)
      throw new KnowledgeError('unsupported', error.message);
    throw error;
  }
}

export const loadLinkedom = () => parser('linkedom', 'HTML', () => import('linkedom'));
const loadReadability = () =>
  parser('@mozilla/readability', 'HTML', () => import('@mozilla/readability'));

export type DocumentFormat = 'markdown' | 'html' | 'text' | 'pdf';

export interface Section {
  /** Heading path, outermost first (may be empty). */
  headings: string[];
  /** Paragraphs separated by blank lines. */
  text: string;
}

export interface ExtractedDocument {
  title: string;
  sections: Section[];
}

/** Extracted text kept per document, at most (a 300-page manual is ≈ 1 M characters). */
export const MAX_DOCUMENT_CHARS = 2_000_000;

const EXTENSIONS: Record<string, DocumentFormat> = {
  md: 'markdown',
  markdown: 'markdown',
  mdx: 'markdown',
  html: 'html',
  htm: 'html',
  txt: 'text',
  text: 'text',
  pdf: 'pdf',
};

/** The format of a file name or URL path (by extension), or of a `Content-Type`; undefined: not one we read. */
export function formatOf(name: string, contentType?: string): DocumentFormat | undefined {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'text/html' || type === 'application/xhtml+xml') return 'html';
  if (type === 'application/pdf') return 'pdf';
  if (type === 'text/markdown' || type === 'text/x-markdown') return 'markdown';
  const extension = /\.([a-z0-9]+)$/i.exec(name.replace(/[?#].*$/, ''))?.[1]?.toLowerCase();
  if (extension && EXTENSIONS[extension]) return EXTENSIONS[extension];
  if (type === 'text/plain') return 'text';
  return undefined;
}

const collapse = (text: string) => text.replace(/\s+/g, ' ').trim();

/** A title from a file name: `parking-and-access.md` → `parking and access`. */
export function titleFromName(name: string): string {
  const base =
    name
      .replace(/[?#].*$/, '')
      .replace(/\/+$/, '')
      .split('/')
      .pop() ?? name;
  return collapse(decodeURIComponentSafe(base.replace(/\.[a-z0-9]+$/i, '')).replace(/[-_]+/g, ' '));
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Sections built up paragraph by paragraph, a new one at each heading. */
class SectionBuilder {
  readonly sections: Section[] = [];
  private headings: (string | undefined)[] = [];
  private paragraphs: string[] = [];
  private line = '';
  private chars = 0;

  text(piece: string): void {
    this.line += piece;
  }

  /** Ends the paragraph being built. */
  breakParagraph(): void {
    const paragraph = collapse(this.line);
    this.line = '';
    if (!paragraph || this.chars >= MAX_DOCUMENT_CHARS) return;
    this.paragraphs.push(paragraph);
    this.chars += paragraph.length;
  }

  /** Adds a whole paragraph (its line breaks kept as spaces). */
  paragraph(text: string): void {
    this.breakParagraph();
    this.line = text;
    this.breakParagraph();
  }

  heading(level: number, text: string): void {
    this.flushSection();
    const title = collapse(text);
    this.headings = this.headings.slice(0, level - 1);
    this.headings[level - 1] = title || undefined;
  }

  flushSection(): void {
    this.breakParagraph();
    if (this.paragraphs.length > 0)
      this.sections.push({
        headings: this.headings.filter((h): h is string => h !== undefined),
        text: this.paragraphs.join('\n\n'),
      });
    this.paragraphs = [];
  }

  done(): Section[] {
    this.flushSection();
    return this.sections;
  }
}

// ——— Markdown ———

/** Inline Markdown → its text. */
function markdownInline(text: string): string {
  return text
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(^|[^\w*])[*_]([^*_\s][^*_]*?)[*_](?=[^\w*]|$)/g, '$1$2')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/~~(.+?)~~/g, '$1');
}

export function extractMarkdown(source: string, fallbackTitle: string): ExtractedDocument {
  let text = source.replace(/\r\n?/g, '\n').replace(/<!--[\s\S]*?-->/g, '');
  let title: string | undefined;
  const front = /^---\n([\s\S]*?)\n---\n/.exec(text);
  if (front) {
    const line = /^title:\s*(.+)$/m.exec(front[1] ?? '')?.[1];
    if (line) title = collapse(line.replace(/^["']|["']$/g, ''));
    text = text.slice(front[0].length);
  }
  const lines = text.split('\n');
  const out = new SectionBuilder();
  let fence: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const fenceMark = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence !== undefined) {
      if (fenceMark && fenceMark[0] === fence[0] && fenceMark.length >= fence.length) {
        fence = undefined;
        out.breakParagraph();
      } else out.text(`${line}\n`);
      continue;
    }
    if (fenceMark) {
      out.breakParagraph();
      fence = fenceMark;
      continue;
    }
    const atx = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (atx) {
      const heading = markdownInline(atx[2] ?? '');
      const level = atx[1]?.length ?? 1;
      if (level === 1) title ??= collapse(heading);
      out.heading(level, heading);
      continue;
    }
    const next = lines[i + 1] ?? '';
    if (line.trim() && /^\s{0,3}(=+|-+)\s*$/.test(next) && !/^\s*([-*+]|\d+[.)])\s/.test(line)) {
      const level = next.trim().startsWith('=') ? 1 : 2;
      const heading = markdownInline(line);
      if (level === 1) title ??= collapse(heading);
      out.heading(level, heading);
      i++;
      continue;
    }
    if (!line.trim() || /^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.breakParagraph();
      continue;
    }
    if (/^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(line)) continue; // table rule
    const item = /^\s*(?:[-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (item || /^\s*\|/.test(line)) {
      out.breakParagraph();
      const body = item
        ? (item[1] ?? '')
        : line
            .trim()
            .replace(/^\||\|$/g, '')
            .replace(/\|/g, ' | ');
      out.text(markdownInline(body));
      out.breakParagraph();
      continue;
    }
    out.text(` ${markdownInline(line.replace(/^\s{0,3}>\s?/, ''))}`);
  }
  return { title: title || fallbackTitle, sections: out.done() };
}

// ——— HTML ———

/** Never content: what pages wrap around it, and what is not text. */
const CHROME =
  'script, style, noscript, template, svg, canvas, iframe, nav, header, footer, aside, form, button, select, [role=navigation], [role=banner], [role=contentinfo], [aria-hidden=true], [hidden]';

const BLOCKS = new Set([
  'address',
  'article',
  'blockquote',
  'br',
  'dd',
  'details',
  'div',
  'dl',
  'dt',
  'figcaption',
  'figure',
  'hr',
  'li',
  'main',
  'ol',
  'p',
  'pre',
  'section',
  'summary',
  'table',
  'tbody',
  'td',
  'th',
  'thead',
  'tr',
  'ul',
]);

interface DomNode {
  nodeType: number;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
  localName?: string;
}

function walk(node: DomNode, out: SectionBuilder): void {
  if (node.nodeType === 3) {
    out.text(node.textContent ?? '');
    return;
  }
  if (node.nodeType !== 1) return;
  const name = node.localName ?? '';
  const heading = /^h([1-6])$/.exec(name);
  if (heading) {
    out.heading(Number(heading[1]), node.textContent ?? '');
    return;
  }
  const block = BLOCKS.has(name);
  if (block) out.breakParagraph();
  else if (name === 'td' || name === 'th') out.text(' ');
  for (let i = 0; i < node.childNodes.length; i++) {
    const child = node.childNodes[i];
    if (child) walk(child, out);
  }
  if (block) out.breakParagraph();
  else if (name === 'td' || name === 'th') out.text(' | ');
}

function sectionsOf(root: DomNode): Section[] {
  const out = new SectionBuilder();
  walk(root, out);
  return out.done();
}

interface HtmlDocument {
  title: string;
  querySelector(selector: string): (DomNode & ElementLike) | null;
  querySelectorAll(selector: string): ArrayLike<DomNode & ElementLike>;
  body: (DomNode & ElementLike) | null;
}
interface ElementLike {
  remove(): void;
  querySelectorAll(selector: string): ArrayLike<ElementLike>;
}

function stripChrome(root: ElementLike): void {
  const found = root.querySelectorAll(CHROME);
  for (let i = found.length - 1; i >= 0; i--) found[i]?.remove();
}

const textLength = (sections: Section[]) => sections.reduce((n, s) => n + s.text.length, 0);

export async function extractHtml(html: string, fallbackTitle: string): Promise<ExtractedDocument> {
  const [{ parseHTML }, { Readability }] = await Promise.all([loadLinkedom(), loadReadability()]);
  const parse = () => parseHTML(html).document as unknown as HtmlDocument;
  const document = parse();
  const h1 = collapse(document.querySelector('h1')?.textContent ?? '');
  const title = h1 || collapse(document.title ?? '') || fallbackTitle;
  // The page says where its content is: trust it over a heuristic.
  const marked =
    document.querySelector('main') ??
    document.querySelector('[role=main]') ??
    (document.querySelectorAll('article').length === 1 ? document.querySelector('article') : null);
  if (marked) {
    stripChrome(marked);
    return { title, sections: sectionsOf(marked) };
  }
  const readable = new Readability(
    parse() as unknown as ConstructorParameters<typeof Readability>[0],
    { charThreshold: 200 },
  ).parse();
  if (readable?.content) {
    const article = parseHTML(`<!doctype html><html><body>${readable.content}</body></html>`)
      .document as unknown as HtmlDocument;
    const sections = article.body ? sectionsOf(article.body) : [];
    if (textLength(sections) > 0) return { title, sections };
  }
  const body = document.body;
  if (!body) return { title, sections: [] };
  stripChrome(body);
  return { title, sections: sectionsOf(body) };
}

// ——— plain text and PDF ———

export function extractText(text: string, fallbackTitle: string): ExtractedDocument {
  const out = new SectionBuilder();
  for (const paragraph of text.replace(/\r\n?/g, '\n').split(/\n\s*\n/)) out.paragraph(paragraph);
  return { title: fallbackTitle, sections: out.done() };
}

export async function extractPdf(
  bytes: Uint8Array,
  fallbackTitle: string,
): Promise<ExtractedDocument> {
  const {
    getDocumentProxy,
    extractText: pdfText,
    getMeta,
  } = await parser('unpdf', 'PDF', () => import('unpdf'));
  let pages: string[];
  let metaTitle: unknown;
  try {
    // pdf.js takes the buffer over: give it a copy.
    const pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
    pages = (await pdfText(pdf, { mergePages: false })).text;
    metaTitle = ((await getMeta(pdf)).info as Record<string, unknown> | undefined)?.['Title'];
    await pdf.destroy();
  } catch (error) {
    throw new KnowledgeError('unreadable', `not a readable PDF: ${(error as Error).message}`);
  }
  const sections: Section[] = [];
  let chars = 0;
  pages.forEach((page, i) => {
    if (chars >= MAX_DOCUMENT_CHARS) return;
    const paragraphs = page
      .replace(/-\n(?=\p{Ll})/gu, '')
      .split(/\n\s*\n/)
      .map(collapse)
      .filter(Boolean);
    const text = paragraphs.join('\n\n');
    if (!text) return;
    chars += text.length;
    sections.push({ headings: pages.length > 1 ? [`Page ${i + 1}`] : [], text });
  });
  const title =
    typeof metaTitle === 'string' && metaTitle.trim() ? collapse(metaTitle) : fallbackTitle;
  return { title, sections };
}

/** Bytes of a document → its sections. Text formats are read as UTF-8. */
export async function extract(
  bytes: Uint8Array,
  format: DocumentFormat,
  fallbackTitle: string,
): Promise<ExtractedDocument> {
  if (format === 'pdf') return extractPdf(bytes, fallbackTitle);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (format === 'html') return extractHtml(text, fallbackTitle);
  if (format === 'markdown') return extractMarkdown(text, fallbackTitle);
  return extractText(text, fallbackTitle);
}
