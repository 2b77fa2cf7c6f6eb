import { css, html, nothing, type TemplateResult } from 'lit';
import type { AuditActor, AuditEntry, ClientKey } from './api.js';
import { keyName, keyOptions } from './key-picker.js';
import { Screen, formatDate } from './screen.js';
import { base } from './styles.js';

const PAGE = 100;
/** The relay's cap on `GET /admin/audit?limit=`. */
const MAX_ENTRIES = 500;

/** Who made the change, in words: "console (127.0.0.1)", "admin token (10.0.0.2)", "CLI (ana)". */
export function actorLabel(actor: AuditActor): string {
  switch (actor.kind) {
    case 'console':
      return `console (${actor.ip})`;
    case 'admin-api':
      return `admin token (${actor.ip})`;
    case 'cli':
      return `CLI (${actor.user})`;
    case 'import':
      return `import (${actor.file})`;
    default:
      return actor.name ? `code (${actor.name})` : 'code';
  }
}

function value(v: unknown): string {
  if (Array.isArray(v)) return v.length ? v.map(value).join(', ') : 'none';
  if (v === null) return 'removed';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** What changed: `label: Front desk; origins: https://a.example` (the `fields` list is implied). */
export function detailText(entry: AuditEntry): string {
  return Object.entries(entry.detail)
    .filter(([name]) => name !== 'fields')
    .map(([name, v]) => `${name}: ${value(v)}`)
    .join('; ');
}

/** `<vb-audit>`: who changed what, newest first, for all keys or one (`#audit/key_…`). */
export class AuditScreen extends Screen {
  static override styles = [
    base,
    css`
      .detail {
        overflow-wrap: anywhere;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    entries: { state: true },
    keys: { state: true },
    key: { state: true },
    limit: { state: true },
  };

  declare entries: AuditEntry[];
  declare keys: ClientKey[];
  declare key: string;
  declare limit: number;

  constructor() {
    super();
    this.entries = [];
    this.keys = [];
    this.key = /^#audit\/([\w-]+)$/.exec(location.hash)?.[1] ?? '';
    this.limit = PAGE;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
    this.api.keys().then(
      (keys) => (this.keys = keys),
      (error: unknown) => this.describe(error),
    );
  }

  private refresh(): Promise<void> {
    return this.load(async () => {
      this.entries = await this.api.audit({ limit: this.limit, key: this.key || undefined });
    });
  }

  private filter(event: Event): void {
    this.key = (event.target as HTMLSelectElement).value;
    this.limit = PAGE;
    history.replaceState(null, '', this.key ? `#audit/${this.key}` : '#audit');
    void this.refresh();
  }

  override render(): TemplateResult {
    const more = this.entries.length === this.limit && this.limit < MAX_ENTRIES;
    return html`<section aria-labelledby="audit-title">
      <h2 id="audit-title" tabindex="-1">Audit log</h2>
      <p class="hint">Every change to keys and every console change, newest first.</p>
      <div class="row">
        <label for="audit-key">Key</label>
        <select id="audit-key" @change=${this.filter}>
          ${keyOptions(this.keys, this.key)}
        </select>
      </div>
      <p role="status">
        ${
          this.status === 'loading'
            ? 'Loading the audit log…'
            : this.status === 'ready'
              ? `${this.entries.length} ${this.entries.length === 1 ? 'entry' : 'entries'}${this.key ? ' for this key' : ''}.`
              : ''
        }
      </p>
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      ${
        this.entries.length
          ? html`<div class="table-wrap">
              <table class="cards">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Action</th>
                    <th scope="col">Key</th>
                    <th scope="col">Detail</th>
                  </tr>
                </thead>
                <tbody>
                  ${this.entries.map(
                    (e) =>
                      html`<tr data-audit=${e.id}>
                        <td data-label="Time">${formatDate(e.at)}</td>
                        <td data-label="Actor" data-actor=${e.actor.kind}>
                          ${actorLabel(e.actor)}
                        </td>
                        <td data-label="Action"><code>${e.action}</code></td>
                        <td data-label="Key">${keyName(this.keys, e.key_id)}</td>
                        <td data-label="Detail" class="detail">${detailText(e) || '—'}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
          : nothing
      }
      ${
        more
          ? html`<button
              class="secondary"
              @click=${() => {
                this.limit = Math.min(MAX_ENTRIES, this.limit + PAGE);
                void this.refresh();
              }}
            >
              Show older entries
            </button>`
          : nothing
      }
    </section>`;
  }
}

customElements.define('vb-audit', AuditScreen);
