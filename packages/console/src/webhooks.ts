import { css, html, nothing, type TemplateResult } from 'lit';
import { ApiError, type Delivery, type DeliveryFilter } from './api.js';
import { Screen, formatDate } from './screen.js';
import { base } from './styles.js';

/** How long the screen watches a retried delivery for its outcome (polls × interval). */
const WATCH_POLLS = 20;
const WATCH_MS = 500;

/** An attempt's outcome in words: `HTTP 500`, `HTTP 410: gone`, `connect ECONNREFUSED …`. */
function outcome(status: number | null | undefined, error: string | null | undefined): string {
  if (status && error && !error.includes(String(status))) return `HTTP ${status}: ${error}`;
  return error || (status ? `HTTP ${status}` : '—');
}

function lastProblem(d: Delivery): string {
  return d.status === 'delivered' ? '—' : outcome(d.last_status, d.last_error);
}

/** `<vb-webhooks>`: the webhook outbox (status, attempts, next attempt, last error) and retry. */
export class WebhooksScreen extends Screen {
  static override styles = [
    base,
    css`
      .filters {
        align-items: center;
      }
      .filters label {
        margin: 0;
      }
      td.problem {
        overflow-wrap: anywhere;
      }
      .badge.pending {
        color: var(--fg);
      }
      ol.log {
        margin: 0.3rem 0;
        padding-left: 1.2rem;
        font-size: 0.875rem;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    filter: { state: true },
    deliveries: { state: true },
    next: { state: true },
    configured: { state: true },
    notice: { state: true },
    retrying: { state: true },
  };

  declare filter: DeliveryFilter;
  declare deliveries: Delivery[];
  declare next: string | null;
  declare configured: boolean;
  declare notice: string;
  declare retrying: string;
  private watching = true;

  constructor() {
    super();
    this.filter = {};
    this.deliveries = [];
    this.next = null;
    this.configured = true;
    this.notice = '';
    this.retrying = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.watching = true;
    void this.refresh();
  }

  override disconnectedCallback(): void {
    this.watching = false;
    super.disconnectedCallback();
  }

  private refresh(more = false): Promise<void> {
    return this.load(async () => {
      try {
        const page = await this.api.deliveries(
          this.filter,
          more ? (this.next ?? undefined) : undefined,
        );
        this.deliveries = more ? [...this.deliveries, ...page.deliveries] : page.deliveries;
        this.next = page.next_cursor;
        this.configured = page.configured !== false || page.deliveries.length > 0;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        this.deliveries = [];
        this.next = null;
        this.configured = false;
      }
    });
  }

  private applyFilter(event: SubmitEvent): void {
    event.preventDefault();
    const data = new FormData(event.target as HTMLFormElement);
    const status = String(data.get('status') ?? '');
    const event_ = String(data.get('event') ?? '');
    this.filter = {
      ...(status ? { status: status as DeliveryFilter['status'] } : {}),
      ...(event_ ? { event: event_ as DeliveryFilter['event'] } : {}),
    };
    void this.refresh();
  }

  private replace(delivery: Delivery): void {
    this.deliveries = this.deliveries.map((d) => (d.id === delivery.id ? delivery : d));
  }

  /** Queues it again, then watches the row until the attempt's outcome is known (bounded). */
  private async retry(delivery: Delivery): Promise<void> {
    this.retrying = delivery.id;
    this.notice = `Retrying ${delivery.id}…`;
    try {
      let row = await this.api.retryDelivery(delivery.id);
      this.replace(row);
      const before = delivery.attempts;
      for (let i = 0; i < WATCH_POLLS && this.watching; i++) {
        if (row.status !== 'pending' || row.attempts > before) break;
        await new Promise((r) => setTimeout(r, WATCH_MS));
        row = await this.api.delivery(delivery.id);
        this.replace(row);
      }
      this.notice =
        row.status === 'delivered'
          ? `Retried ${row.id}: delivered (attempt ${row.attempts}).`
          : row.attempts > before
            ? `Retried ${row.id}: the attempt failed (${lastProblem(row)}); status ${row.status}.`
            : `Retried ${row.id}: queued, next attempt ${formatDate(row.next_attempt_at)}.`;
    } catch (error) {
      this.notice = `Retry of ${delivery.id} failed: ${this.describe(error)}`;
    } finally {
      this.retrying = '';
    }
  }

  private renderRow(d: Delivery): TemplateResult {
    return html`<tr data-delivery=${d.id}>
      <td data-label="Status"><span class="badge ${d.status}">${d.status}</span></td>
      <td data-label="Event">
        <code>${d.event}</code><br /><span class="hint">bot ${d.bot}</span>
        ${
          d.conversation_id
            ? html`<br /><a href="#conversations/${d.conversation_id}">${d.conversation_id}</a>`
            : nothing
        }
      </td>
      <td data-label="Attempts">${d.attempts}</td>
      <td data-label="Next attempt">
        ${
          d.status === 'delivered'
            ? html`delivered ${formatDate(d.delivered_at)}`
            : d.status === 'failed'
              ? 'none (gave up: retry it by hand)'
              : formatDate(d.next_attempt_at)
        }
      </td>
      <td data-label="Last error" class="problem">
        ${lastProblem(d)}
        ${
          d.log.length
            ? html`<details>
                <summary>${d.log.length} attempt(s)</summary>
                <ol class="log">
                  ${d.log.map(
                    (a) =>
                      html`<li>
                        ${formatDate(a.at)}: ${outcome(a.status, a.error)} in ${a.ms} ms
                      </li>`,
                  )}
                </ol>
              </details>`
            : nothing
        }
      </td>
      <td data-label="Actions">
        ${
          d.status === 'delivered'
            ? nothing
            : html`<button
                class="secondary"
                aria-label="Retry now: ${d.event} delivery ${d.id}"
                ?disabled=${this.retrying !== ''}
                @click=${() => this.retry(d)}
              >
                Retry now
              </button>`
        }
      </td>
    </tr>`;
  }

  override render(): TemplateResult {
    return html`<section aria-labelledby="webhooks-title">
      <h2 id="webhooks-title" tabindex="-1">Webhook deliveries</h2>
      ${
        !this.configured
          ? html`<p class="panel" data-not-configured>
              Webhooks are not configured on this relay: add <code>webhooks</code> endpoints to its
              configuration file to be told when a conversation ends or a visitor asks for a person.
            </p>`
          : html`<p class="hint">
                Signed events the relay sends to your endpoints, retried with backoff for a day.
              </p>
              <form
                class="row filters panel"
                @submit=${this.applyFilter}
                aria-label="Filter deliveries"
              >
                <label for="wh-status">Status</label>
                <select id="wh-status" name="status">
                  <option value="">Any</option>
                  ${['pending', 'delivered', 'failed'].map(
                    (s) =>
                      html`<option value=${s} ?selected=${this.filter.status === s}>${s}</option>`,
                  )}
                </select>
                <label for="wh-event">Event</label>
                <select id="wh-event" name="event">
                  <option value="">Any</option>
                  ${['conversation.ended', 'handoff.requested'].map(
                    (e) =>
                      html`<option value=${e} ?selected=${this.filter.event === e}>${e}</option>`,
                  )}
                </select>
                <button type="submit">Filter</button>
              </form>`
      }
      <p role="status" class="ok">
        ${this.status === 'loading' ? 'Loading deliveries…' : this.notice}
      </p>
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      ${
        this.configured && this.status === 'ready' && this.deliveries.length === 0
          ? html`<p>
              No deliveries${this.filter.status || this.filter.event ? ' match' : ' yet'}.
            </p>`
          : nothing
      }
      ${
        this.deliveries.length
          ? html`<div class="table-wrap">
              <table class="cards">
                <thead>
                  <tr>
                    <th scope="col">Status</th>
                    <th scope="col">Event</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Next attempt</th>
                    <th scope="col">Last error</th>
                    <th scope="col"><span class="sr-only">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  ${this.deliveries.map((d) => this.renderRow(d))}
                </tbody>
              </table>
            </div>`
          : nothing
      }
      ${
        this.next
          ? html`<button class="secondary" @click=${() => this.refresh(true)}>More</button>`
          : nothing
      }
    </section>`;
  }
}

customElements.define('vb-webhooks', WebhooksScreen);
