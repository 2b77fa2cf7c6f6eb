import { LitElement, css, html, nothing, type TemplateResult } from 'lit';
import { ApiError, ConsoleApi, type SessionInfo } from './api.js';
import { base } from './styles.js';
import './keys.js';

export const SCREENS = [
  { id: 'keys', title: 'Keys' },
  { id: 'usage', title: 'Usage' },
  { id: 'conversations', title: 'Conversations' },
  { id: 'knowledge', title: 'Knowledge' },
  { id: 'try', title: 'Try the bot' },
  { id: 'audit', title: 'Audit log' },
  { id: 'webhooks', title: 'Webhooks' },
] as const;
export type ScreenId = (typeof SCREENS)[number]['id'];

/** Screens in lazy chunks (console.js holds the sign-in and Keys): rendered once defined. */
const LAZY: Partial<Record<ScreenId, () => Promise<unknown>>> = {
  usage: () => import('./usage.js'),
  conversations: () => import('./conversations.js'),
  knowledge: () => import('./knowledge.js'),
  try: () => import('./try.js'),
  audit: () => import('./audit.js'),
  webhooks: () => import('./webhooks.js'),
};

type Status = 'loading' | 'signed-out' | 'signing-in' | 'ready' | 'error';

/** `<vb-console>`: sign-in, navigation, and the screen the hash names (`#keys`, `#usage`, …). */
export class ConsoleApp extends LitElement {
  static override styles = [
    base,
    css`
      :host {
        min-height: 100vh;
        background: var(--bg);
      }
      header {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem 1rem;
        padding: 0.6rem 1rem;
        border-bottom: 1px solid var(--line);
        background: var(--panel);
      }
      header h1 {
        font-size: 1.1rem;
        margin: 0;
        flex: 1 1 auto;
      }
      nav ul {
        display: flex;
        flex-wrap: wrap;
        gap: 0.25rem;
        list-style: none;
        margin: 0;
        padding: 0;
      }
      nav a {
        display: inline-block;
        padding: 0.35rem 0.7rem;
        border-radius: var(--radius);
        color: var(--fg);
        text-decoration: none;
      }
      nav a[aria-current='page'] {
        background: var(--accent);
        color: #fff;
      }
      main {
        padding: 1rem;
        max-width: 72rem;
        margin: 0 auto;
      }
      .sign-in {
        max-width: 24rem;
        margin: 12vh auto 0;
      }
      .sign-in input {
        width: 100%;
      }
      @media (max-width: 600px) {
        header {
          padding: 0.5rem;
        }
        nav {
          order: 3;
          width: 100%;
        }
        nav a {
          padding: 0.3rem 0.5rem;
        }
        main {
          padding: 0.75rem 0.5rem;
        }
      }
    `,
  ];

  static override properties = {
    status: { state: true },
    error: { state: true },
    session: { state: true },
    screen: { state: true },
    loaded: { state: true },
  };

  declare status: Status;
  declare error: string;
  declare session: SessionInfo | undefined;
  declare screen: ScreenId;
  declare loaded: ReadonlySet<ScreenId>;
  readonly api = new ConsoleApi();
  private readonly onHash = () => {
    const next = screenOf(location.hash);
    if (next === this.screen) return;
    this.screen = next;
    void this.focusHeading();
  };

  constructor() {
    super();
    this.status = 'loading';
    this.error = '';
    this.session = undefined;
    this.screen = screenOf(location.hash);
    this.loaded = new Set();
  }

  /** After a change of screen, focus goes to its heading (screen readers announce where you are). */
  private async focusHeading(): Promise<void> {
    await this.ensureLoaded(this.screen);
    await this.updateComplete;
    const screen = this.renderRoot.querySelector<
      HTMLElement & { updateComplete?: Promise<unknown> }
    >('main > *');
    await screen?.updateComplete;
    screen?.shadowRoot?.querySelector<HTMLElement>('h2')?.focus();
  }

  private async ensureLoaded(id: ScreenId): Promise<void> {
    const load = LAZY[id];
    if (!load || this.loaded.has(id)) return;
    try {
      await load();
      this.loaded = new Set([...this.loaded, id]);
    } catch (error) {
      this.status = 'error';
      this.error = `the ${id} screen did not load (${error instanceof Error ? error.message : String(error)})`;
    }
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('hashchange', this.onHash);
    // Any screen whose request finds the session gone brings the sign-in form back.
    this.addEventListener('vb-signed-out', () =>
      this.signedOut('Your session ended: sign in again.'),
    );
    void this.resume();
  }

  override disconnectedCallback(): void {
    window.removeEventListener('hashchange', this.onHash);
    super.disconnectedCallback();
  }

  private async resume(): Promise<void> {
    try {
      this.session = await this.api.resume();
      this.status = this.session ? 'ready' : 'signed-out';
    } catch (error) {
      this.status = 'error';
      this.error = error instanceof Error ? error.message : String(error);
    }
  }

  private signedOut(message = ''): void {
    this.session = undefined;
    this.status = 'signed-out';
    this.error = message;
  }

  private async signIn(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const token = (form.elements.namedItem('token') as HTMLInputElement).value.trim();
    if (!token) {
      this.error = 'Enter the admin token (VOICEBOT_ADMIN_TOKEN).';
      return;
    }
    this.status = 'signing-in';
    this.error = '';
    try {
      this.session = await this.api.signIn(token);
      form.reset();
      this.status = 'ready';
      void this.focusHeading();
    } catch (error) {
      this.status = 'signed-out';
      this.error =
        error instanceof ApiError && error.status === 401
          ? 'That is not the admin token.'
          : error instanceof Error
            ? error.message
            : String(error);
    }
  }

  private async signOut(): Promise<void> {
    try {
      await this.api.signOut();
    } catch {
      // Signed out either way: the cookie is gone or was never valid.
    }
    this.signedOut('Signed out.');
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLElement>('#token')?.focus();
  }

  private renderSignIn(): TemplateResult {
    return html`<main>
      <form class="sign-in panel" @submit=${this.signIn} aria-labelledby="sign-in-title">
        <h2 id="sign-in-title">Voice bot console</h2>
        <p class="hint">Sign in with the relay's admin token (VOICEBOT_ADMIN_TOKEN).</p>
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          aria-describedby="sign-in-error"
        />
        <p
          id="sign-in-error"
          role="alert"
          class=${this.error.startsWith('Signed out') ? 'ok' : 'error'}
        >
          ${this.error}
        </p>
        <button type="submit" ?disabled=${this.status === 'signing-in'}>
          ${this.status === 'signing-in' ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>`;
  }

  private renderScreen(): TemplateResult {
    const session = this.session as SessionInfo;
    if (LAZY[this.screen] && !this.loaded.has(this.screen)) {
      void this.ensureLoaded(this.screen);
      return html`<p role="status">Loading…</p>`;
    }
    switch (this.screen) {
      case 'audit':
        return html`<vb-audit .api=${this.api}></vb-audit>`;
      case 'webhooks':
        return html`<vb-webhooks .api=${this.api}></vb-webhooks>`;
      case 'usage':
        return html`<vb-usage .api=${this.api}></vb-usage>`;
      case 'conversations':
        return html`<vb-conversations .api=${this.api} .bots=${session.bots}></vb-conversations>`;
      case 'knowledge':
        return html`<vb-knowledge .api=${this.api}></vb-knowledge>`;
      case 'try':
        return html`<vb-try .api=${this.api} .session=${session}></vb-try>`;
      default:
        return html`<vb-keys .api=${this.api} .bots=${session.bots}></vb-keys>`;
    }
  }

  /** Arrow keys (and Home/End) move between the navigation's links; Tab leaves it. */
  private navKey(event: KeyboardEvent): void {
    const links = [...this.renderRoot.querySelectorAll<HTMLAnchorElement>('nav a')];
    const at = links.indexOf(event.target as HTMLAnchorElement);
    if (at < 0) return;
    const next =
      event.key === 'ArrowRight' || event.key === 'ArrowDown'
        ? (at + 1) % links.length
        : event.key === 'ArrowLeft' || event.key === 'ArrowUp'
          ? (at - 1 + links.length) % links.length
          : event.key === 'Home'
            ? 0
            : event.key === 'End'
              ? links.length - 1
              : undefined;
    if (next === undefined) return;
    event.preventDefault();
    links[next]?.focus();
  }

  override render(): TemplateResult {
    if (this.status === 'loading') return html`<main><p role="status">Loading…</p></main>`;
    if (this.status === 'error')
      return html`<main>
        <p role="alert" class="error">The console could not start: ${this.error}</p>
      </main>`;
    if (this.status !== 'ready' || !this.session) return this.renderSignIn();
    return html`<header>
        <h1>Voice bot console</h1>
        <nav aria-label="Console sections" @keydown=${this.navKey}>
          <ul>
            ${SCREENS.map(
              (s) =>
                html`<li>
                  <a href="#${s.id}" aria-current=${this.screen === s.id ? 'page' : nothing}
                    >${s.title}</a
                  >
                </li>`,
            )}
          </ul>
        </nav>
        <button class="secondary" @click=${this.signOut}>Sign out</button>
      </header>
      <main id="main">${this.renderScreen()}</main>`;
  }
}

function screenOf(hash: string): ScreenId {
  const id = hash.replace(/^#/, '').split('/')[0];
  return SCREENS.find((s) => s.id === id)?.id ?? 'keys';
}

customElements.define('vb-console', ConsoleApp);
