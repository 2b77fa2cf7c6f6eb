import { css, html, nothing, type TemplateResult } from 'lit';
import type { SessionInfo } from './api.js';
import { Screen } from './screen.js';
import { base } from './styles.js';

/**
 * `<vb-try>`: the relay's own `<voice-bot>` on this page, talking to a chosen bot through a key
 * made for this console's origin (label "console try-out"; revoked at sign-out).
 */
export class TryScreen extends Screen {
  static override styles = [
    base,
    css`
      .stage {
        min-height: 28rem;
      }
    `,
  ];

  static override properties = {
    ...Screen.properties,
    session: { attribute: false },
    bot: { state: true },
    key: { state: true },
  };

  declare session: SessionInfo;
  declare bot: string;
  declare key: string;

  constructor() {
    super();
    this.bot = '';
    this.key = '';
  }

  private start(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const bot = String(new FormData(event.target as HTMLFormElement).get('bot') ?? '');
    this.key = '';
    return this.load(async () => {
      const url = this.session.widget_url;
      if (!url)
        throw new Error('this relay does not serve the widget (start it with widget: true)');
      await import(/* @vite-ignore */ url);
      const made = await this.api.tryKey(bot);
      this.bot = made.bot;
      this.key = made.key;
    });
  }

  override render(): TemplateResult {
    const bots = this.session?.bots ?? [];
    return html`<section aria-labelledby="try-title">
      <h2 id="try-title" tabindex="-1">Try the bot</h2>
      <p class="hint">
        Talk to a bot as a visitor would, with the relay's current settings. The console makes a key
        for this page's origin (labelled "console try-out"); it is revoked when you sign out.
      </p>
      <form class="row panel" @submit=${this.start} aria-label="Choose a bot">
        <label class="inline"
          >Bot
          <select name="bot">
            ${bots.map((b) => html`<option value=${b.id}>${b.name ?? b.id}</option>`)}
          </select></label
        >
        <button type="submit" ?disabled=${this.status === 'loading'}>
          ${this.key ? 'Restart' : 'Start'}
        </button>
      </form>
      ${this.status === 'loading' ? html`<p role="status">Starting…</p>` : nothing}
      ${this.error ? html`<p role="alert" class="error">${this.error}</p>` : nothing}
      <div class="stage">
        ${
          this.key
            ? html`<voice-bot
                mode="inline"
                relay=${location.origin}
                key=${this.key}
                bot=${this.bot}
                greeting="Console try-out of ${this.bot}: say or type something."
              ></voice-bot>`
            : nothing
        }
      </div>
    </section>`;
  }
}

customElements.define('vb-try', TryScreen);
