import { css, html, nothing, type TemplateResult } from 'lit';
import type { Bot, ClientKey, DayUsage } from './api.js';
import { Screen, forgetWhenClosed, formatDate, lines } from './screen.js';
import { base } from './styles.js';

/** Per-key limits the console edits (the rest stay as the relay's defaults or the API sets them). */
export const EDITABLE_LIMITS = [
  ['maxConcurrentSessionsPerKey', 'Open sessions at once'],
  ['sessionsPerMinutePerKey', 'New sessions per minute'],
  ['turnsPerMinute', 'Turns per minute per session'],
  ['audioMinutesPerKeyPerDay', 'Audio minutes per day'],
  ['llmTokensPerKeyPerDay', 'LLM tokens per day'],
  ['ttsCharsPerKeyPerDay', 'Speech characters per day'],
] as const;

/** The snippet a site owner pastes into their page. */
export function scriptTag(relay: string, key: string, bot: string | undefined): string {
  const botAttr = bot ? ` bot="${bot}"` : '';
  return `<script src="${relay}/widget/voice-bot.js" async></script>\n<voice-bot relay="${relay}" key="${key}"${botAttr}></voice-bot>`;
}

interface Created {
  key: ClientKey;
  secret: string;
}

/** What is wrong with the key form: per field (`origins`, `bots`, `label`, a limit), or in general. */
export interface Problems {
  fields: Record<string, string>;
  general: string[];
}

const NO_PROBLEMS: Problems = { fields: {}, general: [] };

/** The field a message of the relay's key validation is about (it names the field first). */
export function fieldOf(message: string): string | undefined {
  if (/^(not an origin|origins)\b/.test(message)) return 'origins';
  if (/^(there is no bot|bots)\b/.test(message)) return 'bots';
  if (/^label\b/.test(message)) return 'label';
  const limit = /^limits\.(\w+)/.exec(message)?.[1];
  return EDITABLE_LIMITS.some(([field]) => field === limit) ? limit : undefined;
}

/** Reads the key form. Only what the browser can tell is checked here; the relay checks the rest. */
function readForm(
  form: HTMLFormElement,
  creating: boolean,
): {
  value?: {
    label: string;
    origins: string[];
    bots: string[];
    limits: Record<string, number | null>;
  };
  problems: Problems;
} {
  const data = new FormData(form);
  const fields: Record<string, string> = {};
  const origins = lines(String(data.get('origins') ?? ''));
  if (origins.length === 0)
    fields.origins = 'Give at least one origin, e.g. https://www.example.com';
  const limits: Record<string, number | null> = {};
  for (const [field] of EDITABLE_LIMITS) {
    const raw = String(data.get(field) ?? '').trim();
    if (raw === '') {
      if (!creating) limits[field] = null;
      continue;
    }
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0)
      fields[field] = "Must be a number ≥ 0 (empty = the relay's default)";
    else limits[field] = n;
  }
  const label = String(data.get('label') ?? '').trim();
  if (label.length > 200) fields.label = 'At most 200 characters';
  const problems = { fields, general: [] };
  return Object.keys(fields).length
    ? { problems }
    : { value: { label, origins, bots: data.getAll('bots').map(String), limits }, problems };
}

/** `<vb-keys>`: list, create (secret shown once), edit, revoke. */
export class KeysScreen extends Screen {
  static override styles = [
    base,
    css`
      .secret {
        border: 2px solid var(--accent);
      }
      .secret input {
        width: 100%;
        font-family: ui-monospace, monospace;
      }
      .actions {
        display: flex;
        gap: 0.25rem;
        flex-wrap: wrap;
      }
      form.key-form {
        background: var(--bg);
      }
      .spacer {
        flex: 1;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    bots: { attribute: false },
    keys: { state: true },
    today: { state: true },
    editing: { state: true },
    creating: { state: true },
    created: { state: true },
    problems: { state: true },
    notice: { state: true },
    revoking: { state: true },
    copied: { state: true },
  };

  declare bots: Bot[];
  declare keys: ClientKey[];
  declare today: Map<string, DayUsage>;
  declare editing: string | undefined;
  declare creating: boolean;
  declare created: Created | undefined;
  declare problems: Problems;
  declare notice: string;
  declare revoking: ClientKey | undefined;
  declare copied: string;

  constructor() {
    super();
    this.bots = [];
    this.keys = [];
    this.today = new Map();
    this.editing = undefined;
    this.creating = false;
    this.created = undefined;
    this.problems = NO_PROBLEMS;
    this.notice = '';
    this.revoking = undefined;
    this.copied = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
  }

  private refresh(): Promise<void> {
    return this.load(async () => {
      const [keys, usage] = await Promise.all([this.api.keys(), this.api.usage(1)]);
      this.keys = keys.sort((a, b) => Number(!!a.revoked_at) - Number(!!b.revoked_at));
      this.today = new Map(
        usage.keys.flatMap((k) => (k.days[0] ? [[k.key_id, k.days[0]] as const] : [])),
      );
    });
  }

  private async create(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const { value, problems } = readForm(form, true);
    this.problems = problems;
    if (!value) return this.focusProblem();
    try {
      const { key: secret, ...key } = await this.api.createKey({
        label: value.label,
        origins: value.origins,
        bots: value.bots,
        ...(Object.keys(value.limits).length
          ? { limits: value.limits as Record<string, number> }
          : {}),
      });
      this.created = { key, secret };
      this.creating = false;
      this.notice = '';
      await this.refresh();
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLElement>('#created-title')?.focus();
    } catch (error) {
      await this.refused(error);
    }
  }

  /** A refusal of the relay: next to the field it names, or under the form. */
  private async refused(error: unknown): Promise<void> {
    const message = this.describe(error);
    const field = fieldOf(message);
    this.problems = field
      ? { fields: { [field]: message }, general: [] }
      : { fields: {}, general: [message] };
    await this.focusProblem();
  }

  /** Focus goes to the first field with a problem (its message is its description). */
  private async focusProblem(): Promise<void> {
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLElement>('form.key-form [aria-invalid="true"]')?.focus();
  }

  private async openForm(key: ClientKey | undefined): Promise<void> {
    this.problems = NO_PROBLEMS;
    if (key) this.editing = key.id;
    else this.creating = true;
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLElement>(`#label-${key?.id ?? 'new'}`)?.focus();
  }

  private async closeForm(): Promise<void> {
    const editing = this.editing;
    this.editing = undefined;
    this.creating = false;
    this.problems = NO_PROBLEMS;
    await this.updateComplete;
    this.renderRoot
      .querySelector<HTMLElement>(
        editing ? `tr[data-key="${editing}"] button.secondary` : '#new-key',
      )
      ?.focus();
  }

  private async save(event: SubmitEvent, key: ClientKey): Promise<void> {
    event.preventDefault();
    const { value, problems } = readForm(event.target as HTMLFormElement, false);
    this.problems = problems;
    if (!value) return this.focusProblem();
    try {
      const saved = await this.api.updateKey(key.id, value);
      this.notice = `Saved ${saved.label || saved.id}.`;
      await this.refresh();
      await this.closeForm();
    } catch (error) {
      await this.refused(error);
    }
  }

  private async askRevoke(key: ClientKey): Promise<void> {
    // Fresh figures: the dialog says how many sessions close.
    this.revoking = await this.api.key(key.id).catch(() => key);
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#revoke')?.showModal();
  }

  private async revoke(): Promise<void> {
    const key = this.revoking;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#revoke')?.close();
    this.revoking = undefined;
    if (!key) return;
    try {
      const result = await this.api.revokeKey(key.id);
      this.notice = `Revoked ${key.label || key.id}: ${result.closed_sessions} open session(s) closed.`;
      if (this.created?.key.id === key.id) this.created = undefined;
      await this.refresh();
    } catch (error) {
      this.notice = '';
      this.error = this.describe(error);
    }
    // The key's buttons are gone: focus goes to the heading, the outcome is announced.
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLElement>('#keys-title')?.focus();
  }

  private async copy(text: string, what: string): Promise<void> {
    try {
      await navigator.clipboard.writeText(text);
      this.copied = `${what} copied to the clipboard.`;
    } catch {
      this.copied = `Could not copy: select the ${what.toLowerCase()} and copy it yourself.`;
    }
  }

  private renderForm(key: ClientKey | undefined): TemplateResult {
    const id = key?.id ?? 'new';
    const { fields, general } = this.problems;
    /** `aria-invalid` and the error's id among the field's descriptions, when it has a problem. */
    const invalid = (field: string) => (fields[field] ? 'true' : nothing);
    const described = (field: string, ...others: string[]) =>
      [...others, ...(fields[field] ? [`${field}-error-${id}`] : [])].join(' ') || nothing;
    const error = (field: string) =>
      fields[field]
        ? html`<p id="${field}-error-${id}" class="error field-error">${fields[field]}</p>`
        : nothing;
    return html`<form
      class="panel key-form"
      aria-label=${key ? `Edit ${key.label || key.id}` : 'New key'}
      @submit=${(e: SubmitEvent) => (key ? this.save(e, key) : this.create(e))}
      novalidate
    >
      <label for="label-${id}">Label</label>
      <input
        id="label-${id}"
        name="label"
        .value=${key?.label ?? ''}
        maxlength="200"
        aria-invalid=${invalid('label')}
        aria-describedby=${described('label')}
      />
      ${error('label')}
      <label for="origins-${id}">Origins (one a line)</label>
      <textarea
        id="origins-${id}"
        name="origins"
        placeholder="https://www.example.com"
        aria-invalid=${invalid('origins')}
        aria-describedby=${described('origins', `origins-hint-${id}`)}
        .value=${key?.origins.join('\n') ?? ''}
      ></textarea>
      ${error('origins')}
      <p id="origins-hint-${id}" class="hint">
        The sites that may use the key: scheme and host, e.g. https://www.example.com or
        https://*.example.com.
      </p>
      <fieldset aria-describedby=${described('bots')}>
        <legend>Bots (none ticked = every bot)</legend>
        ${this.bots.map(
          (bot) =>
            html`<label class="inline"
              ><input
                type="checkbox"
                name="bots"
                value=${bot.id}
                aria-invalid=${invalid('bots')}
                ?checked=${key?.bots.includes(bot.id) ?? false}
              />${bot.name ?? bot.id}</label
            >`,
        )}
        ${error('bots')}
      </fieldset>
      <details ?open=${EDITABLE_LIMITS.some(([field]) => fields[field])}>
        <summary>Limits for this key (empty = the relay's default)</summary>
        ${EDITABLE_LIMITS.map(
          ([field, title]) =>
            html`<label for="${field}-${id}">${title}</label>
              <input
                id="${field}-${id}"
                name=${field}
                inputmode="decimal"
                aria-invalid=${invalid(field)}
                aria-describedby=${described(field)}
                .value=${key?.limits[field] === undefined ? '' : String(key.limits[field])}
                placeholder=${
                  key?.effective_limits[field] === undefined
                    ? ''
                    : `default ${key.effective_limits[field]}`
                }
              />
              ${error(field)}`,
        )}
      </details>
      <div role="alert" class="error">
        ${
          general.length || Object.keys(fields).length
            ? html`<ul>
                ${general.map((p) => html`<li>${p}</li>`)}
                ${
                  Object.keys(fields).length
                    ? html`<li>
                        Check the marked field${Object.keys(fields).length > 1 ? 's' : ''}.
                      </li>`
                    : nothing
                }
              </ul>`
            : nothing
        }
      </div>
      <div class="row">
        <button type="submit">${key ? 'Save' : 'Create key'}</button>
        <button type="button" class="secondary" @click=${() => this.closeForm()}>Cancel</button>
      </div>
    </form>`;
  }

  private renderCreated(created: Created): TemplateResult {
    const relay = location.origin;
    const bot = created.key.bots.length === 1 ? created.key.bots[0] : undefined;
    return html`<section class="panel secret" aria-labelledby="created-title">
      <h3 id="created-title" tabindex="-1">Key created: copy it now</h3>
      <p>
        This is the only time the key is shown. It is public (it goes in your page) but only works
        on the origins you listed.
      </p>
      <label for="secret">Key</label>
      <div class="row">
        <input
          id="secret"
          readonly
          .value=${created.secret}
          @focus=${(e: Event) => (e.target as HTMLInputElement).select()}
        />
        <button type="button" data-copy="key" @click=${() => this.copy(created.secret, 'Key')}>
          Copy key
        </button>
      </div>
      <h3>Script tag</h3>
      ${created.key.origins.map(
        (origin) =>
          html`<p>For pages on <strong>${origin}</strong>:</p>
            <pre>${scriptTag(relay, created.secret, bot)}</pre>
            <button
              type="button"
              class="secondary"
              @click=${() => this.copy(scriptTag(relay, created.secret, bot), 'Script tag')}
            >
              Copy script tag
            </button>`,
      )}
      <p role="status">${this.copied}</p>
      <button type="button" class="link" @click=${() => (this.created = undefined)}>
        I have copied it
      </button>
    </section>`;
  }

  private renderKey(key: ClientKey): TemplateResult {
    const day = this.today.get(key.id);
    const revoked = !!key.revoked_at;
    return html`<tr data-key=${key.id}>
        <td data-label="Label">
          <strong>${key.label || '(no label)'}</strong><br /><code>${key.id}</code>
          ${
            Object.keys(key.limits).length
              ? html`<br /><span class="hint" data-limits
                    >${EDITABLE_LIMITS.filter(([field]) => key.limits[field] !== undefined)
                      .map(([field, title]) => `${title}: ${key.limits[field]}`)
                      .join(', ')}</span
                  >`
              : nothing
          }
        </td>
        <td data-label="Origins">${key.origins.join(', ')}</td>
        <td data-label="Bots">${key.bots.length ? key.bots.join(', ') : 'every bot'}</td>
        <td data-label="Status">
          <span class="badge ${revoked ? 'revoked' : 'active'}"
            >${revoked ? 'revoked' : 'active'}</span
          >
          ${revoked ? html`<br /><span class="hint">${formatDate(key.revoked_at)}</span>` : nothing}
          ${key.open_sessions ? html`<br /><span class="hint">${key.open_sessions} open</span>` : nothing}
        </td>
        <td data-label="Today">
          ${
            day
              ? html`${day.sessions} sessions, ${day.turns} turns,
                ${Math.round(day.audio_in_minutes * 10) / 10} min audio`
              : '—'
          }
        </td>
        <td data-label="Actions">
          ${
            revoked
              ? nothing
              : html`<div class="actions">
                  <button
                    class="secondary"
                    aria-label="Edit ${key.label || key.id}"
                    @click=${() => this.openForm(key)}
                  >
                    Edit
                  </button>
                  <button
                    class="danger"
                    aria-label="Revoke ${key.label || key.id}"
                    @click=${() => this.askRevoke(key)}
                  >
                    Revoke
                  </button>
                </div>`
          }
        </td>
      </tr>
      ${
        this.editing === key.id
          ? html`<tr>
              <td colspan="6">${this.renderForm(key)}</td>
            </tr>`
          : nothing
      }`;
  }

  override render(): TemplateResult {
    return html`<section aria-labelledby="keys-title">
      <div class="row">
        <h2 id="keys-title" tabindex="-1">Keys</h2>
        <span class="spacer"></span>
        ${
          this.creating
            ? nothing
            : html`<button id="new-key" @click=${() => this.openForm(undefined)}>New key</button>`
        }
      </div>
      <p class="hint">A key lets the widget on your sites talk to this relay.</p>
      ${this.created ? this.renderCreated(this.created) : nothing}
      ${this.creating ? this.renderForm(undefined) : nothing}
      <p role="status" class="ok">${this.notice}</p>
      ${
        this.status === 'loading' && this.keys.length === 0
          ? html`<p role="status">Loading keys…</p>`
          : nothing
      }
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      ${
        this.status !== 'loading' && this.keys.length === 0 && !this.error
          ? html`<p>No keys yet. Create one to embed the widget on a site.</p>`
          : nothing
      }
      ${
        this.keys.length
          ? html`<div class="table-wrap">
              <table class="cards">
                <thead>
                  <tr>
                    <th scope="col">Label</th>
                    <th scope="col">Origins</th>
                    <th scope="col">Bots</th>
                    <th scope="col">Status</th>
                    <th scope="col">Today</th>
                    <th scope="col"><span class="sr-only">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  ${this.keys.map((k) => this.renderKey(k))}
                </tbody>
              </table>
            </div>`
          : nothing
      }
      <dialog
        id="revoke"
        aria-labelledby="revoke-title"
        @close=${forgetWhenClosed(() => (this.revoking = undefined))}
      >
        <h2 id="revoke-title">Revoke ${this.revoking?.label || this.revoking?.id}?</h2>
        <p>
          The key stops working at once: sites using it lose the widget, and its open sessions
          (${this.revoking?.open_sessions ?? 0} now) close immediately. This cannot be undone.
        </p>
        <div class="row">
          <button class="danger" @click=${this.revoke}>Revoke key</button>
          <button
            class="secondary"
            autofocus
            @click=${() => this.renderRoot.querySelector<HTMLDialogElement>('dialog#revoke')?.close()}
          >
            Keep it
          </button>
        </div>
      </dialog>
    </section>`;
  }
}

customElements.define('vb-keys', KeysScreen);
