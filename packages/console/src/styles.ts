import { css } from 'lit';

/**
 * The console's shared look. Everything reads custom properties, so a page can theme it:
 * `vb-console { --vb-accent: #0a7; }`.
 */
export const base = css`
  :host {
    --accent: var(--vb-accent, #3158d4);
    --danger: var(--vb-danger, #b3261e);
    --ok: var(--vb-ok, #1e7a3c);
    --fg: var(--vb-fg, #1b1f24);
    --muted: var(--vb-muted, #5b6470);
    --bg: var(--vb-bg, #ffffff);
    --panel: var(--vb-panel, #f5f7fa);
    --line: var(--vb-line, #d8dde4);
    --radius: var(--vb-radius, 8px);
    display: block;
    color: var(--fg);
    font:
      15px/1.45 system-ui,
      -apple-system,
      'Segoe UI',
      Roboto,
      sans-serif;
  }
  *,
  *::before,
  *::after {
    box-sizing: border-box;
  }
  h2 {
    font-size: 1.25rem;
    margin: 0 0 0.75rem;
  }
  h3 {
    font-size: 1.05rem;
    margin: 1.25rem 0 0.5rem;
  }
  p {
    margin: 0.25rem 0 0.75rem;
  }
  button,
  input,
  select,
  textarea {
    font: inherit;
    color: inherit;
  }
  button {
    border: 1px solid var(--accent);
    background: var(--accent);
    color: #fff;
    border-radius: var(--radius);
    padding: 0.45rem 0.9rem;
    cursor: pointer;
    min-height: 2.25rem;
  }
  button.secondary {
    background: var(--bg);
    color: var(--accent);
  }
  button.danger {
    background: var(--danger);
    border-color: var(--danger);
  }
  button.link {
    background: none;
    border: none;
    color: var(--accent);
    padding: 0.2rem 0.3rem;
    text-decoration: underline;
    min-height: 0;
  }
  button:disabled {
    opacity: 0.55;
    cursor: default;
  }
  :focus-visible {
    outline: 3px solid color-mix(in srgb, var(--accent) 60%, transparent);
    outline-offset: 2px;
  }
  input,
  select,
  textarea {
    border: 1px solid var(--line);
    border-radius: var(--radius);
    padding: 0.4rem 0.55rem;
    background: var(--bg);
    max-width: 100%;
  }
  textarea {
    width: 100%;
    min-height: 4.5rem;
  }
  label {
    display: block;
    font-weight: 600;
    margin: 0.6rem 0 0.2rem;
  }
  label.inline {
    display: inline-flex;
    gap: 0.35rem;
    align-items: center;
    font-weight: normal;
    margin: 0.2rem 0.8rem 0.2rem 0;
  }
  .hint {
    color: var(--muted);
    font-size: 0.875rem;
  }
  .panel {
    background: var(--panel);
    border: 1px solid var(--line);
    border-radius: var(--radius);
    padding: 1rem;
    margin: 0 0 1rem;
  }
  .row {
    display: flex;
    flex-wrap: wrap;
    gap: 0.5rem;
    align-items: end;
  }
  .error {
    color: var(--danger);
    font-weight: 600;
  }
  .ok {
    color: var(--ok);
  }
  .badge {
    display: inline-block;
    border-radius: 999px;
    padding: 0 0.5rem;
    font-size: 0.8rem;
    border: 1px solid var(--line);
    background: var(--bg);
  }
  .badge.revoked,
  .badge.failed,
  .badge.negative,
  .badge.high {
    color: var(--danger);
    border-color: var(--danger);
  }
  .badge.active,
  .badge.ready,
  .badge.positive {
    color: var(--ok);
    border-color: var(--ok);
  }
  .table-wrap {
    overflow-x: auto;
  }
  table {
    border-collapse: collapse;
    width: 100%;
  }
  th,
  td {
    text-align: left;
    padding: 0.45rem 0.5rem;
    border-bottom: 1px solid var(--line);
    vertical-align: top;
  }
  th {
    font-size: 0.85rem;
    color: var(--muted);
  }
  code,
  pre {
    font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
    font-size: 0.85rem;
  }
  pre {
    white-space: pre-wrap;
    word-break: break-all;
    background: var(--bg);
    border: 1px solid var(--line);
    border-radius: var(--radius);
    padding: 0.6rem;
    margin: 0.25rem 0;
  }
  dialog {
    border: 1px solid var(--line);
    border-radius: var(--radius);
    max-width: min(32rem, 92vw);
    color: var(--fg);
  }
  dialog::backdrop {
    background: rgba(0, 0, 0, 0.35);
  }
  .sr-only {
    position: absolute;
    width: 1px;
    height: 1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
  }
  @media (max-width: 600px) {
    table.cards thead {
      display: none;
    }
    table.cards tr {
      display: block;
      border: 1px solid var(--line);
      border-radius: var(--radius);
      margin-bottom: 0.75rem;
      background: var(--bg);
    }
    table.cards td {
      display: block;
      border: none;
      padding: 0.3rem 0.6rem;
    }
    table.cards td[data-label]::before {
      content: attr(data-label) ': ';
      font-weight: 600;
      color: var(--muted);
    }
  }
`;
