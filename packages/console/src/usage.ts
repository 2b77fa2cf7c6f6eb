import { css, html, nothing, type TemplateResult } from 'lit';
import type uPlot from 'uplot';
import type { LatencyReport, LiveFigures, UsageReport } from './api.js';
import { Screen } from './screen.js';
import { base } from './styles.js';
import { uplotStyles } from './uplot-css.js';

const COLORS = ['#3158d4', '#d4513a', '#1e8a4c', '#a05fd0', '#c99400', '#2b9db0', '#777'];
const LIVE_POLL_MS = 10_000;

export interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  series: { label: string; values: (number | null)[] }[];
}

/** The charts of a usage report (and the latency one): one per figure the issue asks for. */
export function chartSpecs(usage: UsageReport, latency: LatencyReport | undefined): ChartSpec[] {
  const days = usage.totals;
  const codes = [...new Set(days.flatMap((d) => Object.keys(d.errors)))].sort();
  const specs: ChartSpec[] = [
    {
      id: 'sessions',
      title: 'Sessions and turns',
      unit: 'per day',
      series: [
        { label: 'Sessions', values: days.map((d) => d.sessions) },
        { label: 'Turns', values: days.map((d) => d.turns) },
      ],
    },
    {
      id: 'audio',
      title: 'Audio minutes',
      unit: 'minutes per day',
      series: [
        { label: 'In (visitors)', values: days.map((d) => d.audio_in_minutes) },
        { label: 'Out (bot)', values: days.map((d) => d.audio_out_minutes) },
      ],
    },
    {
      id: 'tokens',
      title: 'LLM tokens',
      unit: 'per day',
      series: [{ label: 'Tokens', values: days.map((d) => d.llm_tokens) }],
    },
    {
      id: 'errors',
      title: 'Errors by code',
      unit: 'per day',
      series: codes.length
        ? codes.map((code) => ({ label: code, values: days.map((d) => d.errors[code] ?? 0) }))
        : [{ label: 'errors', values: days.map(() => 0) }],
    },
  ];
  if (latency)
    specs.push({
      id: 'latency',
      title: 'Turn latency (median and p90)',
      unit: 'ms',
      series: [
        { label: 'STT p50', values: latency.series.map((d) => d.stt_ms.p50) },
        { label: 'First token p50', values: latency.series.map((d) => d.llm_ttft_ms.p50) },
        { label: 'First audio p50', values: latency.series.map((d) => d.first_audio_ms.p50) },
        { label: 'First audio p90', values: latency.series.map((d) => d.first_audio_ms.p90) },
      ],
    });
  return specs;
}

/** `<vb-usage>`: usage per day (all keys or one) over 7/30/90 days, live figures, latency. */
export class UsageScreen extends Screen {
  static override styles = [
    base,
    uplotStyles,
    css`
      .figures {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr));
        gap: 0.75rem;
        margin-bottom: 1rem;
      }
      .figure {
        background: var(--panel);
        border: 1px solid var(--line);
        border-radius: var(--radius);
        padding: 0.6rem 0.8rem;
      }
      .figure strong {
        display: block;
        font-size: 1.5rem;
      }
      .charts {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 30rem), 1fr));
        gap: 1rem;
      }
      figure {
        margin: 0;
        background: var(--bg);
        border: 1px solid var(--line);
        border-radius: var(--radius);
        padding: 0.5rem;
        min-width: 0;
      }
      figcaption {
        font-weight: 600;
      }
      .chart {
        min-height: 220px;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    days: { state: true },
    key: { state: true },
    report: { state: true },
    latency: { state: true },
    live: { state: true },
  };

  declare days: number;
  declare key: string;
  declare report: UsageReport | undefined;
  declare latency: LatencyReport | undefined;
  declare live: LiveFigures | undefined;
  private charts: uPlot[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly resize = new ResizeObserver(() => this.fit());

  constructor() {
    super();
    this.days = 7;
    this.key = '';
    this.report = undefined;
    this.latency = undefined;
    this.live = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
    void this.poll();
    this.timer = setInterval(() => void this.poll(), LIVE_POLL_MS);
  }

  override disconnectedCallback(): void {
    clearInterval(this.timer);
    this.resize.disconnect();
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
    super.disconnectedCallback();
  }

  private async poll(): Promise<void> {
    try {
      this.live = await this.api.live();
    } catch (error) {
      this.describe(error);
    }
  }

  private refresh(): Promise<void> {
    return this.load(async () => {
      const [report, latency] = await Promise.all([
        this.api.usage(this.days, this.key || undefined),
        this.api.latency(this.days),
      ]);
      this.report = report;
      this.latency = latency;
      await this.updateComplete;
      await this.draw();
    });
  }

  private async draw(): Promise<void> {
    const { default: UPlot } = await import('uplot');
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
    if (!this.report) return;
    const x = this.report.totals.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
    const width = this.chartWidth();
    for (const spec of chartSpecs(this.report, this.latency)) {
      const target = this.renderRoot.querySelector<HTMLElement>(`#chart-${spec.id}`);
      if (!target) continue;
      target.replaceChildren();
      const chart = new UPlot(
        {
          width,
          height: 200,
          scales: { x: { time: true } },
          axes: [{}, { size: 56 }],
          series: [
            { label: 'Day' },
            ...spec.series.map((s, i) => ({
              label: s.label,
              stroke: COLORS[i % COLORS.length] ?? '#333',
              width: 2,
              points: { show: x.length <= 31 },
            })),
          ],
        },
        [x, ...spec.series.map((s) => s.values)],
        target,
      );
      this.charts.push(chart);
      this.resize.observe(target);
    }
  }

  private chartWidth(): number {
    const probe = this.renderRoot.querySelector<HTMLElement>('.chart');
    return Math.max(260, Math.floor((probe?.clientWidth ?? 480) - 4));
  }

  private fit(): void {
    const width = this.chartWidth();
    for (const chart of this.charts)
      if (Math.abs(chart.width - width) > 8) chart.setSize({ width, height: 200 });
  }

  private renderLive(): TemplateResult {
    const live = this.live;
    const total = (field: 'sessions' | 'turns') =>
      this.report?.totals.reduce((n, d) => n + d[field], 0) ?? 0;
    return html`<div class="figures" aria-live="polite">
      <div class="figure">
        <span>Open sessions now</span
        ><strong data-figure="open">${live?.open_sessions ?? '—'}</strong>
      </div>
      <div class="figure">
        <span>Turns per minute</span
        ><strong data-figure="tpm">${live?.turns_per_minute ?? '—'}</strong>
      </div>
      <div class="figure"><span>Turns today</span><strong>${live?.turns_today ?? '—'}</strong></div>
      <div class="figure">
        <span>Sessions, ${this.days} days</span
        ><strong data-figure="sessions">${total('sessions')}</strong>
      </div>
      <div class="figure">
        <span>Turns, ${this.days} days</span><strong data-figure="turns">${total('turns')}</strong>
      </div>
    </div>`;
  }

  override render(): TemplateResult {
    const specs = this.report ? chartSpecs(this.report, this.latency) : [];
    const recordedTurns = this.latency?.series.reduce((n, d) => n + d.turns, 0) ?? 0;
    return html`<section aria-labelledby="usage-title">
      <h2 id="usage-title" tabindex="-1">Usage</h2>
      ${this.renderLive()}
      <div class="row">
        <label class="inline"
          >Period
          <select
            @change=${(e: Event) => {
              this.days = Number((e.target as HTMLSelectElement).value);
              void this.refresh();
            }}
          >
            ${[7, 30, 90].map(
              (d) => html`<option value=${d} ?selected=${d === this.days}>${d} days</option>`,
            )}
          </select></label
        >
        <label class="inline"
          >Key
          <select
            @change=${(e: Event) => {
              this.key = (e.target as HTMLSelectElement).value;
              void this.refresh();
            }}
          >
            <option value="">All keys</option>
            ${this.report?.keys.map(
              (k) =>
                html`<option value=${k.key_id} ?selected=${k.key_id === this.key}>
                  ${k.label || k.key_id}${k.revoked ? ' (revoked)' : ''}
                </option>`,
            )}
          </select></label
        >
      </div>
      ${this.status === 'loading' ? html`<p role="status">Loading usage…</p>` : nothing}
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      <div class="charts">
        ${specs.map(
          (spec) =>
            html`<figure>
              <figcaption>${spec.title} <span class="hint">(${spec.unit})</span></figcaption>
              <div
                class="chart"
                id="chart-${spec.id}"
                role="img"
                aria-label=${describeChart(spec)}
              ></div>
            </figure>`,
        )}
      </div>
      ${
        this.latency && recordedTurns === 0
          ? html`<p class="hint">
              Latency comes from conversation records: turn on <code>records</code> for a bot to see
              it.
            </p>`
          : nothing
      }
    </section>`;
  }
}

/** A text summary of a chart for screen readers: each series' total (or last value). */
function describeChart(spec: ChartSpec): string {
  const parts = spec.series.map((s) => {
    const values = s.values.filter((v): v is number => v !== null);
    const figure =
      spec.unit === 'ms'
        ? `latest ${values[values.length - 1] ?? 'none'}`
        : `total ${Math.round(values.reduce((a, b) => a + b, 0) * 100) / 100}`;
    return `${s.label}: ${figure}`;
  });
  return `${spec.title}, ${spec.unit}. ${parts.join('; ')}`;
}

customElements.define('vb-usage', UsageScreen);
