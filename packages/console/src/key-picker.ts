import { html, nothing, type TemplateResult } from 'lit';
import type { Bot, ClientKey } from './api.js';

/** A key in a table: its label with the id small under it, or the id alone when it has no label. */
export function keyName(keys: readonly ClientKey[], id: string | null): TemplateResult | string {
  if (!id) return '—';
  const key = keys.find((k) => k.id === id);
  return key?.label ? html`${key.label}<br /><code>${id}</code>` : html`<code>${id}</code>`;
}

/** A bot by its name when the relay has it configured (a record may name a bot since removed). */
export function botName(bots: readonly Bot[], id: string): string {
  return bots.find((b) => b.id === id)?.name ?? id;
}

/**
 * The options of a key picker (`<select>`): "All keys", then each key by label (revoked ones
 * marked); a chosen id the list does not hold (a deleted key, a hand-written URL) stays chosen.
 */
export function keyOptions(keys: readonly ClientKey[], chosen: string): TemplateResult {
  return html`<option value="">All keys</option>
    ${keys.map(
      (k) =>
        html`<option value=${k.id} ?selected=${k.id === chosen}>
          ${k.label || k.id}${k.revoked_at ? ' (revoked)' : ''}
        </option>`,
    )}
    ${
      chosen && !keys.some((k) => k.id === chosen)
        ? html`<option value=${chosen} selected>${chosen}</option>`
        : nothing
    }`;
}
