import { css, html, nothing, type TemplateResult } from 'lit';
import {
  MAX_KNOWLEDGE_BODY_BYTES,
  MAX_UPLOAD_BYTES,
  type Collection,
  type IngestReport,
  type KnowledgeDocument,
  type SearchResult,
} from './api.js';
import { Screen, forgetWhenClosed, formatDate, lines } from './screen.js';
import { base } from './styles.js';

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
/** A limit in MB, rounded down (a file of the shown size must pass). */
const mbLimit = (bytes: number) => `${(Math.floor((bytes / 1024 / 1024) * 10) / 10).toFixed(1)} MB`;

/** What is wrong with the chosen files (nothing is read yet), or undefined when they may go. */
export function uploadProblem(files: readonly { size: number }[]): string | undefined {
  if (files.length === 0) return 'choose a file (PDF, HTML, Markdown or text).';
  const size = files.reduce((n, f) => n + f.size, 0);
  if (size > MAX_UPLOAD_BYTES)
    return `${files.length > 1 ? 'the chosen files come to' : 'the chosen file is'} ${mb(size)}; one upload takes at most ${mbLimit(MAX_UPLOAD_BYTES)} (the relay's ${mbLimit(MAX_KNOWLEDGE_BODY_BYTES)} request limit, with files sent base64). Upload fewer or smaller files, or add them by URL.`;
  return undefined;
}

/** A search hit's heading without the document title it repeats (`Parking › Bicycles` → `Bicycles`). */
export function sectionOf(title: string, heading: string): string {
  if (heading === title) return '';
  return heading.startsWith(`${title} › `) ? heading.slice(title.length + 3) : heading;
}

/** A failed document's error without the source the relay puts in front of it. */
function failure(error: string | null | undefined, ...sources: (string | null | undefined)[]) {
  const prefix = sources.find((s) => s && error?.startsWith(`${s}: `));
  return prefix && error ? error.slice(prefix.length + 2) : (error ?? 'failed');
}

function base64(bytes: ArrayBuffer): string {
  const view = new Uint8Array(bytes);
  let text = '';
  for (let i = 0; i < view.length; i += 0x8000)
    text += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(text);
}

/** `<vb-knowledge>`: collections, their documents, add URLs or files, re-index, try a search. */
export class KnowledgeScreen extends Screen {
  static override styles = [
    base,
    css`
      .results li {
        margin-bottom: 0.75rem;
      }
      .results blockquote {
        margin: 0.25rem 0 0;
        padding-left: 0.6rem;
        border-left: 3px solid var(--line);
        white-space: pre-wrap;
      }
      input[type='url'],
      input[type='search'] {
        flex: 1 1 16rem;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    collections: { state: true },
    selected: { state: true },
    documents: { state: true },
    docStatus: { state: true },
    busy: { state: true },
    message: { state: true },
    report: { state: true },
    results: { state: true },
    searchStatus: { state: true },
    deleting: { state: true },
    removing: { state: true },
    fileProblem: { state: true },
  };

  declare collections: Collection[];
  declare selected: string;
  declare documents: KnowledgeDocument[];
  declare docStatus: 'idle' | 'loading' | 'ready' | 'error';
  declare busy: boolean;
  declare message: string;
  declare report: IngestReport | undefined;
  declare results: SearchResult[] | undefined;
  declare searchStatus: string;
  declare deleting: Collection | undefined;
  declare removing: KnowledgeDocument | undefined;
  declare fileProblem: string;

  constructor() {
    super();
    this.collections = [];
    this.selected = '';
    this.documents = [];
    this.docStatus = 'idle';
    this.busy = false;
    this.message = '';
    this.report = undefined;
    this.results = undefined;
    this.searchStatus = '';
    this.deleting = undefined;
    this.removing = undefined;
    this.fileProblem = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
  }

  private refresh(): Promise<void> {
    return this.load(async () => {
      this.collections = await this.api.collections();
      if (!this.selected || !this.collections.some((c) => c.name === this.selected))
        this.selected = this.collections[0]?.name ?? '';
      await this.loadDocuments();
    });
  }

  private async loadDocuments(): Promise<void> {
    if (!this.selected) {
      this.documents = [];
      return;
    }
    this.docStatus = 'loading';
    try {
      this.documents = await this.api.documents(this.selected);
      this.docStatus = 'ready';
    } catch (error) {
      this.message = this.describe(error);
      this.docStatus = 'error';
    }
  }

  /** Runs a change; its outcome (or what went wrong) is announced. */
  private async change(task: () => Promise<string>): Promise<void> {
    this.busy = true;
    this.message = '';
    this.report = undefined;
    try {
      this.message = await task();
      const keep = this.selected;
      this.collections = await this.api.collections();
      this.selected = this.collections.some((c) => c.name === keep)
        ? keep
        : (this.collections[0]?.name ?? '');
      await this.loadDocuments();
    } catch (error) {
      this.message = `Failed: ${this.describe(error)}`;
    } finally {
      this.busy = false;
    }
  }

  private createCollection(event: SubmitEvent): void {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const name = String(new FormData(form).get('name') ?? '').trim();
    if (!name) {
      this.message = 'Failed: give the collection a name (letters, digits, - and _).';
      return;
    }
    void this.change(async () => {
      await this.api.createCollection(name);
      this.selected = name;
      form.reset();
      return `Collection ${name} created.`;
    });
  }

  private summarise(report: IngestReport): string {
    this.report = report;
    return `${report.added} added, ${report.updated} updated, ${report.unchanged} unchanged, ${report.failed} failed.`;
  }

  private addUrls(event: SubmitEvent): void {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const urls = lines(String(new FormData(form).get('urls') ?? ''));
    const bad = urls.find((u) => !/^https?:\/\/\S+$/i.test(u));
    if (urls.length === 0 || bad !== undefined) {
      this.message = `Failed: ${bad ? `${bad} is not an http(s) URL` : 'give a URL (https://…)'}.`;
      return;
    }
    void this.change(async () => {
      const report = await this.api.addDocuments(this.selected, { urls });
      form.reset();
      return this.summarise(report);
    });
  }

  private upload(event: SubmitEvent): void {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const input = form.elements.namedItem('files') as HTMLInputElement;
    const files = [...(input.files ?? [])];
    const problem = uploadProblem(files);
    this.fileProblem = files.length ? (problem ?? '') : '';
    if (problem) {
      this.message = `Failed: ${problem}`;
      input.focus();
      return;
    }
    void this.change(async () => {
      const payload = await Promise.all(
        files.map(async (f) => ({ filename: f.name, content: base64(await f.arrayBuffer()) })),
      );
      const report = await this.api.addDocuments(this.selected, { files: payload });
      form.reset();
      return this.summarise(report);
    });
  }

  /** Checked as soon as files are chosen, before anything is read. */
  private chosen(event: Event): void {
    const files = [...((event.target as HTMLInputElement).files ?? [])];
    this.fileProblem = files.length ? (uploadProblem(files) ?? '') : '';
  }

  private async askDelete(collection: Collection): Promise<void> {
    this.deleting = collection;
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#delete-collection')?.showModal();
  }

  private deleteCollection(): void {
    const collection = this.deleting;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#delete-collection')?.close();
    if (!collection) return;
    void this.change(async () => {
      await this.api.deleteCollection(collection.name);
      return `Collection ${collection.name} deleted with its ${collection.documents} document(s).`;
    }).then(async () => {
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLElement>('#knowledge-title')?.focus();
    });
  }

  private async askRemove(document: KnowledgeDocument): Promise<void> {
    this.removing = document;
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#remove-document')?.showModal();
  }

  private removeDocument(): void {
    const document = this.removing;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#remove-document')?.close();
    if (!document) return;
    const collection = this.selected;
    void this.change(async () => {
      await this.api.removeDocument(collection, document.id);
      return `Removed ${document.title || document.source} from ${collection}.`;
    }).then(async () => {
      // Its row (and the button that had focus) is gone: focus goes to the list's heading.
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLElement>('#documents-title')?.focus();
    });
  }

  private async search(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const q = String(new FormData(event.target as HTMLFormElement).get('q') ?? '').trim();
    if (!q) return;
    this.searchStatus = 'Searching…';
    try {
      const answer = await this.api.search(q, this.selected ? [this.selected] : undefined);
      this.results = answer.results;
      this.searchStatus = `${answer.results.length} chunk(s) in ${answer.took_ms} ms.`;
    } catch (error) {
      this.results = undefined;
      this.searchStatus = `Failed: ${this.describe(error)}`;
    }
  }

  private renderDocuments(): TemplateResult {
    if (this.docStatus === 'loading') return html`<p role="status">Loading documents…</p>`;
    if (this.documents.length === 0)
      return html`<p>No documents yet: add a URL or upload a file.</p>`;
    return html`<div class="table-wrap">
      <table class="cards">
        <thead>
          <tr>
            <th scope="col">Document</th>
            <th scope="col">Status</th>
            <th scope="col">Chunks</th>
            <th scope="col">Updated</th>
            <th scope="col"><span class="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${this.documents.map(
            (d) =>
              html`<tr>
                <td data-label="Document">
                  <strong>${d.title || d.source}</strong><br /><span class="hint"
                    >${d.url ?? d.source}</span
                  >
                </td>
                <td data-label="Status">
                  <span class="badge ${d.status}">${d.status}</span>
                  ${
                    d.error
                      ? html`<br /><span class="error">${failure(d.error, d.url, d.source)}</span>`
                      : nothing
                  }
                </td>
                <td data-label="Chunks">${d.chunk_count}</td>
                <td data-label="Updated">${formatDate(d.updated_at)}</td>
                <td>
                  <button
                    class="link"
                    aria-label="Remove ${d.title || d.source}"
                    ?disabled=${this.busy}
                    @click=${() => this.askRemove(d)}
                  >
                    Remove
                  </button>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
  }

  override render(): TemplateResult {
    const current = this.collections.find((c) => c.name === this.selected);
    return html`<section aria-labelledby="knowledge-title">
      <h2 id="knowledge-title" tabindex="-1">Knowledge</h2>
      ${this.status === 'loading' ? html`<p role="status">Loading collections…</p>` : nothing}
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      <div class="panel">
        <div class="row">
          <label class="inline"
            >Collection
            <select
              @change=${(e: Event) => {
                this.selected = (e.target as HTMLSelectElement).value;
                void this.loadDocuments();
              }}
            >
              ${this.collections.map(
                (c) =>
                  html`<option value=${c.name} ?selected=${c.name === this.selected}>
                    ${c.name} (${c.documents} documents, ${c.chunks} chunks)
                  </option>`,
              )}
            </select></label
          >
          ${
            current
              ? html`<button
                    class="secondary"
                    ?disabled=${this.busy}
                    @click=${() =>
                      this.change(async () => this.summarise(await this.api.reindex(current.name)))}
                  >
                    Re-index
                  </button>
                  <button
                    class="danger"
                    ?disabled=${this.busy}
                    aria-label="Delete collection ${current.name}"
                    @click=${() => this.askDelete(current)}
                  >
                    Delete collection
                  </button>`
              : nothing
          }
        </div>
        <form class="row" @submit=${this.createCollection} aria-label="New collection">
          <label class="inline">New collection <input name="name" pattern="[\\w-]+" /></label>
          <button type="submit" class="secondary" ?disabled=${this.busy}>Create</button>
        </form>
      </div>
      <p
        role="status"
        class=${this.message.startsWith('Failed') || this.report?.failed ? 'error' : 'ok'}
      >
        ${this.busy ? 'Working… (crawling and embedding can take a while)' : this.message}
      </p>
      ${
        this.report && this.report.failed
          ? html`<ul class="error">
              ${this.report.documents
                .filter((d) => d.status === 'failed')
                .map((d) => html`<li>${d.source}: ${failure(d.error, d.source)}</li>`)}
            </ul>`
          : nothing
      }
      ${
        current
          ? html`<h3>Add to ${current.name}</h3>
              <form class="row" @submit=${this.addUrls} aria-label="Add URLs">
                <label class="sr-only" for="urls">URLs</label>
                <input
                  id="urls"
                  name="urls"
                  type="url"
                  placeholder="https://www.example.com/help"
                />
                <button type="submit" ?disabled=${this.busy}>Add URL</button>
              </form>
              <p class="hint">
                A site's start page or sitemap.xml: its pages on the same site are read.
              </p>
              <form class="row" @submit=${this.upload} aria-label="Upload files">
                <label class="sr-only" for="files">Files</label>
                <input
                  id="files"
                  name="files"
                  type="file"
                  multiple
                  accept=".pdf,.html,.htm,.md,.txt"
                  aria-describedby="files-limit${this.fileProblem ? ' files-problem' : ''}"
                  aria-invalid=${this.fileProblem ? 'true' : nothing}
                  @change=${this.chosen}
                />
                <button type="submit" ?disabled=${this.busy || this.fileProblem !== ''}>
                  Upload
                </button>
              </form>
              <p id="files-limit" class="hint">
                PDF, HTML, Markdown or text; at most ${mbLimit(MAX_UPLOAD_BYTES)} per upload.
              </p>
              ${
                this.fileProblem
                  ? html`<p id="files-problem" role="alert" class="error">${this.fileProblem}</p>`
                  : nothing
              }
              <h3 id="documents-title" tabindex="-1">Documents</h3>
              ${this.renderDocuments()}`
          : nothing
      }
      <h3>Try a search</h3>
      <form class="row" @submit=${this.search} aria-label="Try a search">
        <label class="sr-only" for="q">Question</label>
        <input id="q" name="q" type="search" placeholder="A question a visitor might ask" />
        <button type="submit">Search</button>
      </form>
      <p role="status">${this.searchStatus}</p>
      <dialog
        id="delete-collection"
        aria-labelledby="delete-collection-title"
        @close=${forgetWhenClosed(() => (this.deleting = undefined))}
      >
        <h2 id="delete-collection-title">Delete collection ${this.deleting?.name}?</h2>
        <p>
          Its ${this.deleting?.documents ?? 0} document(s) and ${this.deleting?.chunks ?? 0}
          chunk(s) go with it; bots that search it find nothing there until you add documents again.
          This cannot be undone.
        </p>
        <div class="row">
          <button class="danger" @click=${this.deleteCollection}>Delete collection</button>
          <button
            class="secondary"
            autofocus
            @click=${() =>
              this.renderRoot.querySelector<HTMLDialogElement>('dialog#delete-collection')?.close()}
          >
            Keep it
          </button>
        </div>
      </dialog>
      <dialog
        id="remove-document"
        aria-labelledby="remove-document-title"
        @close=${forgetWhenClosed(() => (this.removing = undefined))}
      >
        <h2 id="remove-document-title">
          Remove ${this.removing?.title || this.removing?.source} from ${this.selected}?
        </h2>
        <p>
          Its ${this.removing?.chunk_count ?? 0} chunk(s) are deleted: bots no longer find it when
          they search ${this.selected}. To have it back, add the URL or upload the file again.
        </p>
        <div class="row">
          <button class="danger" @click=${this.removeDocument}>Remove document</button>
          <button
            class="secondary"
            autofocus
            @click=${() =>
              this.renderRoot.querySelector<HTMLDialogElement>('dialog#remove-document')?.close()}
          >
            Keep it
          </button>
        </div>
      </dialog>
      ${
        this.results
          ? html`<ol class="results">
              ${this.results.map(
                (r) =>
                  html`<li>
                    <strong
                      >${r.url && /^https?:\/\//i.test(r.url) ? html`<a href=${r.url} target="_blank" rel="noopener">${r.title}</a>` : r.title}</strong
                    >${sectionOf(r.title, r.heading) ? ` › ${sectionOf(r.title, r.heading)}` : ''}
                    <span class="hint">(${r.collection}, score ${r.score.toFixed(3)})</span>
                    <blockquote>${r.text}</blockquote>
                  </li>`,
              )}
            </ol>`
          : nothing
      }
    </section>`;
  }
}

customElements.define('vb-knowledge', KnowledgeScreen);
