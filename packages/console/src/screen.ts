import { LitElement } from 'lit';
import { ApiError, type ConsoleApi } from './api.js';

export type ViewStatus = 'idle' | 'loading' | 'ready' | 'error';

/** What every screen shares: the API client, one status field for its main view, its error text. */
export class Screen extends LitElement {
  static override properties = {
    api: { attribute: false },
    status: { state: true },
    error: { state: true },
  };

  declare api: ConsoleApi;
  declare status: ViewStatus;
  declare error: string;

  constructor() {
    super();
    this.status = 'idle';
    this.error = '';
  }

  /** The message to show for a failed request; a lost session sends the console back to sign-in. */
  protected describe(error: unknown): string {
    if (error instanceof ApiError && error.signedOut)
      this.dispatchEvent(new CustomEvent('vb-signed-out', { bubbles: true, composed: true }));
    return error instanceof Error ? error.message : String(error);
  }

  /** Loads the screen's main view: status goes loading → ready, or error with the message. */
  protected async load(task: () => Promise<void>): Promise<void> {
    this.status = 'loading';
    this.error = '';
    try {
      await task();
      this.status = 'ready';
    } catch (error) {
      this.error = this.describe(error);
      this.status = 'error';
    }
  }
}

export const formatDate = (iso: string | null | undefined): string =>
  iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';

export const lines = (text: string): string[] =>
  text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * A confirmation dialog's `close` handler: forgets what the dialog asked about, unless it was
 * opened again before this event ran (`close` is queued, so a quick Escape then Enter would
 * otherwise clear what the new question is about, and its confirm would do nothing).
 */
export const forgetWhenClosed =
  (forget: () => void) =>
  (event: Event): void => {
    if (!(event.target as HTMLDialogElement).open) forget();
  };
