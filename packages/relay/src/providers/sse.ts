/** A server-sent event whose data and name were longer than this is refused (the provider is broken). */
const MAX_EVENT_CHARS = 4 * 2 ** 20;

export class SseTooLarge extends Error {
  constructor() {
    super(`a server-sent event exceeded ${MAX_EVENT_CHARS} characters`);
  }
}

/**
 * Splits a `text/event-stream` body (pushed as decoded text, in pieces cut anywhere) into events,
 * as the HTML standard parses them: lines end in CRLF, LF or CR; `data:` lines join with LF; an
 * empty line dispatches; comments and unknown fields are skipped. An event left unfinished at the
 * end of the body is dropped (the SDK did the same).
 */
export class SseParser {
  private partial = '';
  private data: string | undefined;
  private event: string | undefined;
  /** The last piece ended in CR: a LF at the start of the next one belongs to it. */
  private afterCr = false;

  constructor(private readonly onEvent: (data: string, event: string | undefined) => void) {}

  push(text: string): void {
    let start = 0;
    if (this.afterCr && text.charCodeAt(0) === 10) start = 1;
    this.afterCr = false;
    const length = text.length;
    for (let i = start; i < length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.partial ? this.partial + text.slice(start, i) : text.slice(start, i);
      this.partial = '';
      if (c === 13) {
        if (i + 1 === length) this.afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
      this.line(line);
    }
    if (start < length) {
      this.partial += text.slice(start);
      if (this.partial.length + (this.data?.length ?? 0) > MAX_EVENT_CHARS) throw new SseTooLarge();
    }
  }

  private line(line: string): void {
    if (line === '') {
      const { data, event } = this;
      this.data = undefined;
      this.event = undefined;
      if (data !== undefined) this.onEvent(data, event);
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    // `data:` (nearly every line of a chat stream): its value in one slice.
    if (line.startsWith('data:')) {
      const value = line.slice(line.charCodeAt(5) === 32 ? 6 : 5);
      this.data = this.data === undefined ? value : `${this.data}\n${value}`;
      if (this.data.length > MAX_EVENT_CHARS) throw new SseTooLarge();
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.data = this.data === undefined ? value : `${this.data}\n${value}`;
      if (this.data.length > MAX_EVENT_CHARS) throw new SseTooLarge();
    } else if (field === 'event') this.event = value;
  }
}
