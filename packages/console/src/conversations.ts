import { css, html, nothing, svg, type TemplateResult } from 'lit';
import type {
  Bot,
  ClientKey,
  Conversation,
  ConversationFilter,
  ConversationSummary,
  ConversationTurn,
  TurnMetrics,
} from './api.js';
import { botName, keyName, keyOptions } from './key-picker.js';
import { Screen, forgetWhenClosed, formatDate } from './screen.js';
import { base } from './styles.js';

export interface TimingSegment {
  label: string;
  from: number;
  to: number;
}

/**
 * A turn's timing bar: end of speech → transcript (STT), → first token (LLM), → first audio
 * (speech synthesis), from the relay's per-turn metrics. Text turns have no STT segment.
 */
export function timingSegments(metrics: TurnMetrics | null): TimingSegment[] {
  if (!metrics) return [];
  const out: TimingSegment[] = [];
  const stt = metrics.stt_ms ?? 0;
  if (metrics.stt_ms !== undefined) out.push({ label: 'Transcript', from: 0, to: stt });
  const token = metrics.llm_ttft_ms !== undefined ? stt + metrics.llm_ttft_ms : undefined;
  if (token !== undefined) out.push({ label: 'First token', from: stt, to: token });
  if (metrics.first_audio_ms !== undefined)
    out.push({ label: 'First audio', from: token ?? stt, to: metrics.first_audio_ms });
  return out.filter((s) => s.to >= s.from);
}

const SEGMENT_COLORS = ['#2b9db0', '#3158d4', '#1e8a4c'];

function timingBar(metrics: TurnMetrics | null, scale: number): TemplateResult | typeof nothing {
  const segments = timingSegments(metrics);
  if (segments.length === 0) return nothing;
  const summary = segments.map((s) => `${s.label} at ${Math.round(s.to)} ms`).join(', ');
  return html`<div class="timing">
    <svg viewBox="0 0 ${scale} 10" preserveAspectRatio="none" role="img" aria-label=${summary}>
      ${segments.map(
        (s, i) =>
          svg`<rect x=${s.from} y="0" width=${Math.max(1, s.to - s.from)} height="10" fill=${SEGMENT_COLORS[i % 3] ?? '#999'}><title>${s.label}: ${Math.round(s.to - s.from)} ms</title></rect>`,
      )}
    </svg>
    <span class="hint"
      >${summary}${metrics ? `; total ${Math.round(metrics.total_ms)} ms` : ''}</span
    >
  </div>`;
}

const FILTERS: { field: keyof ConversationFilter; label: string; options?: string[] }[] = [
  { field: 'sentiment', label: 'Sentiment', options: ['positive', 'neutral', 'negative'] },
  { field: 'urgency', label: 'Urgency', options: ['low', 'normal', 'high'] },
  { field: 'handoff', label: 'Handoff', options: ['true', 'false'] },
  { field: 'feedback', label: 'Feedback', options: ['up', 'down', 'any'] },
];

/** `<vb-conversations>`: the filterable list, and one conversation (`#conversations/conv_…`). */
export class ConversationsScreen extends Screen {
  static override styles = [
    base,
    css`
      .filters {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr));
        gap: 0.25rem 0.75rem;
        align-items: end;
      }
      .filters label {
        margin: 0;
      }
      .filters .row {
        grid-column: 1 / -1;
        align-items: center;
        gap: 1rem;
        margin-top: 0.5rem;
      }
      .filters select,
      .filters input {
        width: 100%;
      }
      tr.open-row {
        cursor: pointer;
      }
      .turn {
        border-left: 3px solid var(--line);
        padding: 0.25rem 0 0.25rem 0.75rem;
        margin: 0.75rem 0;
      }
      .said {
        margin: 0.2rem 0;
      }
      .who {
        font-weight: 600;
        margin-right: 0.4rem;
      }
      .interrupted {
        color: var(--danger);
        font-size: 0.85rem;
        margin-left: 0.4rem;
      }
      .tool {
        background: var(--panel);
        border-radius: var(--radius);
        padding: 0.3rem 0.5rem;
        margin: 0.3rem 0;
        font-size: 0.9rem;
      }
      .timing svg {
        display: block;
        width: 100%;
        height: 10px;
        margin-top: 0.3rem;
        border-radius: 3px;
        background: var(--panel);
      }
      dl {
        display: grid;
        grid-template-columns: max-content 1fr;
        gap: 0.2rem 0.8rem;
      }
      dt {
        font-weight: 600;
      }
      dd {
        margin: 0;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    bots: { attribute: false },
    keys: { state: true },
    filter: { state: true },
    list: { state: true },
    next: { state: true },
    open: { state: true },
    openStatus: { state: true },
    openError: { state: true },
    erasing: { state: true },
    notice: { state: true },
  };

  declare bots: Bot[];
  /** For the Key column and the key picker (labels instead of bare ids). */
  declare keys: ClientKey[];
  declare filter: ConversationFilter;
  declare list: ConversationSummary[];
  declare next: string | null;
  declare open: Conversation | undefined;
  declare openStatus: 'idle' | 'loading' | 'ready' | 'error';
  declare openError: string;
  declare erasing: Conversation | undefined;
  /** The outcome of the last deletion, announced on the list. */
  declare notice: string;
  private readonly onHash = () => void this.follow();

  constructor() {
    super();
    this.bots = [];
    this.keys = [];
    this.filter = {};
    this.list = [];
    this.next = null;
    this.open = undefined;
    this.openStatus = 'idle';
    this.openError = '';
    this.erasing = undefined;
    this.notice = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('hashchange', this.onHash);
    void this.follow();
    this.api.keys().then(
      (keys) => (this.keys = keys),
      (error: unknown) => this.describe(error),
    );
  }

  override disconnectedCallback(): void {
    window.removeEventListener('hashchange', this.onHash);
    super.disconnectedCallback();
  }

  /** Shows what the hash names: a conversation, or the list. */
  private async follow(): Promise<void> {
    const id = /^#conversations\/(conv_[\w-]+)$/.exec(location.hash)?.[1];
    if (id) {
      await this.show(id);
      return;
    }
    this.open = undefined;
    this.openStatus = 'idle';
    if (this.status === 'idle') await this.search();
  }

  private search(more = false): Promise<void> {
    return this.load(async () => {
      const page = await this.api.conversations(
        this.filter,
        more ? (this.next ?? undefined) : undefined,
      );
      this.list = more ? [...this.list, ...page.conversations] : page.conversations;
      this.next = page.next_cursor;
    });
  }

  private async show(id: string): Promise<void> {
    this.notice = '';
    this.openStatus = 'loading';
    this.openError = '';
    try {
      this.open = await this.api.conversation(id);
      this.openStatus = 'ready';
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLElement>('#conversation-title')?.focus();
    } catch (error) {
      this.openError = this.describe(error);
      this.openStatus = 'error';
    }
  }

  private applyFilters(event: SubmitEvent): void {
    event.preventDefault();
    const data = new FormData(event.target as HTMLFormElement);
    const filter: ConversationFilter = {};
    for (const [name, value] of data.entries())
      if (typeof value === 'string' && value) filter[name as keyof ConversationFilter] = value;
    this.filter = filter;
    void this.search();
  }

  private async askErase(conversation: Conversation): Promise<void> {
    this.erasing = conversation;
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#delete-conversation')?.showModal();
  }

  private async erase(): Promise<void> {
    const conversation = this.erasing;
    this.renderRoot.querySelector<HTMLDialogElement>('dialog#delete-conversation')?.close();
    if (!conversation) return;
    try {
      await this.api.deleteConversation(conversation.id);
      this.list = this.list.filter((c) => c.id !== conversation.id);
      this.notice = `Conversation ${conversation.id} deleted.`;
      location.hash = '#conversations';
      await this.follow();
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLElement>('#conversations-title')?.focus();
    } catch (error) {
      this.openError = this.describe(error);
    }
  }

  private renderFilters(): TemplateResult {
    return html`<form
      class="panel filters"
      @submit=${this.applyFilters}
      aria-label="Filter conversations"
    >
      <div>
        <label for="f-key">Key</label>
        <select id="f-key" name="key">
          ${keyOptions(this.keys, this.filter.key ?? '')}
        </select>
      </div>
      <div>
        <label for="f-bot">Bot</label>
        <select id="f-bot" name="bot">
          <option value="">Any</option>
          ${this.bots.map(
            (b) =>
              html`<option value=${b.id} ?selected=${this.filter.bot === b.id}>
                ${b.name ?? b.id}
              </option>`,
          )}
        </select>
      </div>
      <div>
        <label for="f-from">From</label>
        <input id="f-from" name="from" type="date" .value=${this.filter.from ?? ''} />
      </div>
      <div>
        <label for="f-to">To</label>
        <input id="f-to" name="to" type="date" .value=${this.filter.to ?? ''} />
      </div>
      ${FILTERS.map(
        (f) =>
          html`<div>
            <label for="f-${f.field}">${f.label}</label>
            <select id="f-${f.field}" name=${f.field}>
              <option value="">Any</option>
              ${f.options?.map(
                (o) =>
                  html`<option value=${o} ?selected=${this.filter[f.field] === o}>${o}</option>`,
              )}
            </select>
          </div>`,
      )}
      <div class="row">
        <button type="submit">Filter</button>
        <a href=${this.api.exportUrl(this.filter)} download="conversations.jsonl"
          >Export (JSON Lines)</a
        >
      </div>
    </form>`;
  }

  private renderList(): TemplateResult {
    return html`<section aria-labelledby="conversations-title">
      <h2 id="conversations-title" tabindex="-1">Conversations</h2>
      ${this.renderFilters()}
      ${this.status === 'loading' ? html`<p role="status">Loading conversations…</p>` : nothing}
      <p role="status" class="ok">${this.notice}</p>
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      ${
        this.status === 'ready' && this.list.length === 0
          ? html`<p>
              No conversations match. Records are kept for bots with <code>records</code> on.
            </p>`
          : nothing
      }
      ${
        this.list.length
          ? html`<div class="table-wrap">
              <table class="cards">
                <thead>
                  <tr>
                    <th scope="col">Started</th>
                    <th scope="col">Bot</th>
                    <th scope="col">Key</th>
                    <th scope="col">Turns</th>
                    <th scope="col">Summary</th>
                    <th scope="col">Flags</th>
                  </tr>
                </thead>
                <tbody>
                  ${this.list.map(
                    (c) =>
                      html`<tr data-conversation=${c.id}>
                        <td data-label="Started">
                          <a href="#conversations/${c.id}">${formatDate(c.started_at)}</a>
                        </td>
                        <td data-label="Bot">${botName(this.bots, c.bot)}</td>
                        <td data-label="Key">${keyName(this.keys, c.key_id)}</td>
                        <td data-label="Turns">${c.turn_count}</td>
                        <td data-label="Summary">
                          ${c.summary ?? html`<span class="hint">${pending(c.status)}</span>`}
                        </td>
                        <td data-label="Flags">${flags(c)}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
          : nothing
      }
      ${
        this.next
          ? html`<button class="secondary" @click=${() => this.search(true)}>More</button>`
          : nothing
      }
    </section>`;
  }

  private renderTurn(turn: ConversationTurn, scale: number): TemplateResult {
    return html`<li class="turn">
      ${
        turn.user !== null
          ? html`<p class="said"><span class="who">Visitor</span>${turn.user}</p>`
          : nothing
      }
      ${turn.tools.map(
        (tool) =>
          html`<div class="tool">
            <strong>Tool ${tool.name}</strong
            >${tool.ok ? ' (ok)' : html` <span class="error">failed</span>`} <br /><code
              >${JSON.stringify(tool.args)}</code
            >
            ${tool.result !== undefined ? html`<br />→ <code>${JSON.stringify(tool.result)}</code>` : nothing}
            ${tool.error ? html`<br /><span class="error">${tool.error}</span>` : nothing}
          </div>`,
      )}
      ${
        turn.assistant !== null
          ? html`<p class="said">
              <span class="who">Bot</span>${turn.assistant}${
                turn.interrupted
                  ? html`<span class="interrupted" data-interrupted>(interrupted)</span>`
                  : nothing
              }
            </p>`
          : nothing
      }
      ${turn.error ? html`<p class="error">Error: ${turn.error}</p>` : nothing}
      ${
        turn.feedback
          ? html`<p class="hint">
              Feedback:
              ${turn.feedback.rating === 'up' ? 'up' : 'down'}${turn.feedback.comment ? `, “${turn.feedback.comment}”` : ''}
            </p>`
          : nothing
      }
      ${timingBar(turn.metrics, scale)}
    </li>`;
  }

  private renderConversation(c: Conversation): TemplateResult {
    const scale = Math.max(
      1,
      ...c.turns.map((t) =>
        Math.max(t.metrics?.first_audio_ms ?? 0, ...timingSegments(t.metrics).map((s) => s.to)),
      ),
    );
    return html`<article aria-labelledby="conversation-title">
      <p><a href="#conversations">← All conversations</a></p>
      <h2 id="conversation-title" tabindex="-1">Conversation ${c.id}</h2>
      <dl class="panel">
        <dt>Started</dt>
        <dd>${formatDate(c.started_at)}</dd>
        <dt>Bot</dt>
        <dd>${botName(this.bots, c.bot)}</dd>
        <dt>Key</dt>
        <dd>${keyName(this.keys, c.key_id)}</dd>
        <dt>Status</dt>
        <dd>${c.status}</dd>
        <dt>Summary</dt>
        <dd>${c.summary ?? '—'}</dd>
        <dt>Sentiment</dt>
        <dd>${c.sentiment ?? '—'}</dd>
        <dt>Urgency</dt>
        <dd>${c.urgency ?? '—'}</dd>
        <dt>Handoff</dt>
        <dd>
          ${
            c.handoff
              ? `requested${c.handoff_detail?.reason ? `: ${c.handoff_detail.reason}` : ''}${c.handoff_detail?.urgency ? ` (${c.handoff_detail.urgency})` : ''}`
              : 'no'
          }
        </dd>
        <dt>Feedback</dt>
        <dd>${c.feedback.up} up, ${c.feedback.down} down</dd>
        ${
          c.extracted
            ? Object.entries(c.extracted).map(
                ([name, value]) =>
                  html`<dt>${name}</dt>
                    <dd>${typeof value === 'string' ? value : JSON.stringify(value)}</dd>`,
              )
            : nothing
        }
        ${
          c.analysis_error
            ? html`<dt>Analysis</dt>
                <dd class="error">${c.analysis_error}</dd>`
            : nothing
        }
      </dl>
      <h3>Transcript</h3>
      <p class="hint">Timing bars: end of speech → transcript → first token → first audio.</p>
      <ol class="transcript">
        ${c.turns.map((t) => this.renderTurn(t, scale))}
      </ol>
      ${this.openError ? html`<p role="alert" class="error">${this.openError}</p>` : nothing}
      <div class="row">
        <a href=${`/admin/conversations/${encodeURIComponent(c.id)}`} download="${c.id}.json"
          >Download as JSON</a
        >
        <button class="danger" @click=${() => this.askErase(c)}>Delete conversation</button>
      </div>
      <dialog
        id="delete-conversation"
        aria-labelledby="delete-conversation-title"
        @close=${forgetWhenClosed(() => (this.erasing = undefined))}
      >
        <h2 id="delete-conversation-title">Delete conversation ${this.erasing?.id}?</h2>
        <p>
          Its transcript (${this.erasing?.turns.length ?? 0} turn(s)), timing, summary, feedback and
          webhook deliveries go; the daily usage figures stay, and copies already downloaded or
          exported are not touched. This cannot be undone.
        </p>
        <div class="row">
          <button class="danger" @click=${this.erase}>Delete conversation</button>
          <button
            class="secondary"
            autofocus
            @click=${() =>
              this.renderRoot
                .querySelector<HTMLDialogElement>('dialog#delete-conversation')
                ?.close()}
          >
            Keep it
          </button>
        </div>
      </dialog>
    </article>`;
  }

  override render(): TemplateResult {
    if (this.openStatus === 'loading') return html`<p role="status">Loading the conversation…</p>`;
    if (this.openStatus === 'error')
      return html`<p><a href="#conversations">← All conversations</a></p>
        <p role="alert" class="error">${this.openError}</p>`;
    if (this.open) return this.renderConversation(this.open);
    return this.renderList();
  }
}

/** What a conversation without a summary is waiting for. */
function pending(status: string): string {
  if (status === 'open') return 'in progress: summarised when it ends';
  if (status === 'analysing') return 'being summarised';
  return 'no summary';
}

function flags(c: ConversationSummary): TemplateResult {
  return html`${c.sentiment ? html`<span class="badge ${c.sentiment}">${c.sentiment}</span> ` : nothing}
  ${c.urgency ? html`<span class="badge ${c.urgency}">${c.urgency}</span> ` : nothing}
  ${c.handoff ? html`<span class="badge high">handoff</span> ` : nothing}
  ${c.feedback.up ? html`<span class="badge positive">${c.feedback.up} up</span> ` : nothing}
  ${c.feedback.down ? html`<span class="badge negative">${c.feedback.down} down</span>` : nothing}`;
}

customElements.define('vb-conversations', ConversationsScreen);
