import { css } from 'lit';

/**
 * Public knobs are `--voice-bot-*` custom properties (set them on `voice-bot { … }` in the page);
 * the `--_*` ones are private and resolve each public knob against the theme's default.
 */
const dark = css`
  --_accent: var(--voice-bot-accent, #8b93ff);
  --_accent-fg: var(--voice-bot-accent-fg, #0b1020);
  --_bg: var(--voice-bot-bg, #151a23);
  --_fg: var(--voice-bot-fg, #eef1f6);
  --_muted: var(--voice-bot-muted, #9aa3b2);
  --_border: var(--voice-bot-border, #2c3442);
  --_surface: var(--voice-bot-surface, #1f2632);
  --_bot-bg: var(--voice-bot-bot-bg, #252d3b);
  --_danger: var(--voice-bot-danger, #f87171);
  --_danger-fg: var(--voice-bot-danger-fg, #1b0b0b);
  --_error-bg: var(--voice-bot-error-bg, #3a1518);
  --_error-fg: var(--voice-bot-error-fg, #fecaca);
  color-scheme: dark;
`;

export const styles = css`
  :host {
    --_accent: var(--voice-bot-accent, #4f46e5);
    --_accent-fg: var(--voice-bot-accent-fg, #ffffff);
    --_bg: var(--voice-bot-bg, #ffffff);
    --_fg: var(--voice-bot-fg, #1f2430);
    --_muted: var(--voice-bot-muted, #636b7a);
    --_border: var(--voice-bot-border, #e3e6ec);
    --_surface: var(--voice-bot-surface, #f6f7f9);
    --_bot-bg: var(--voice-bot-bot-bg, #eef0f4);
    --_danger: var(--voice-bot-danger, #dc2626);
    --_danger-fg: var(--voice-bot-danger-fg, #ffffff);
    --_error-bg: var(--voice-bot-error-bg, #fdf0f0);
    --_error-fg: var(--voice-bot-error-fg, #8f1d1d);
    --_radius: var(--voice-bot-radius, 18px);
    --_offset: var(--voice-bot-offset, 20px);
    --_focus: var(--voice-bot-focus-ring, var(--_accent));
    --_user-bg: var(--voice-bot-user-bg, var(--_accent));
    --_user-fg: var(--voice-bot-user-fg, var(--_accent-fg));
    --_bot-fg: var(--voice-bot-bot-fg, var(--_fg));
    display: block;
    font-family: var(
      --voice-bot-font,
      system-ui,
      -apple-system,
      'Segoe UI',
      Roboto,
      'Noto Sans',
      'Noto Sans Devanagari',
      sans-serif
    );
    font-size: var(--voice-bot-font-size, 15px);
    line-height: 1.45;
    color: var(--_fg);
    color-scheme: light;
  }
  :host([theme='dark']) {
    ${dark}
  }
  @media (prefers-color-scheme: dark) {
    :host(:not([theme='light'])) {
      ${dark}
    }
  }
  :host([hidden]) {
    display: none;
  }
  *,
  *::before,
  *::after {
    box-sizing: border-box;
  }
  [hidden] {
    display: none !important;
  }
  button {
    font: inherit;
    color: inherit;
    cursor: pointer;
    border: 0;
    background: none;
    padding: 0;
    -webkit-tap-highlight-color: transparent;
  }
  button:focus-visible,
  input:focus-visible,
  [tabindex]:focus-visible {
    outline: 2px solid var(--_focus);
    outline-offset: 2px;
  }
  .sr-only {
    position: absolute;
    width: 1px;
    height: 1px;
    margin: -1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
  }

  /* ---------- floating: launcher + panel in a corner ---------- */
  .floating {
    position: fixed;
    z-index: var(--voice-bot-z-index, 2147483000);
    bottom: var(--_offset);
    right: var(--_offset);
    display: flex;
    flex-direction: column-reverse;
    align-items: flex-end;
    gap: 14px;
  }
  :host([position='bottom-left']) .floating,
  :host([position='top-left']) .floating {
    right: auto;
    left: var(--_offset);
    align-items: flex-start;
  }
  :host([position='top-right']) .floating,
  :host([position='top-left']) .floating {
    bottom: auto;
    top: var(--_offset);
    flex-direction: column;
  }
  .launcher {
    position: relative;
    width: var(--voice-bot-launcher-size, 60px);
    height: var(--voice-bot-launcher-size, 60px);
    border-radius: 50%;
    display: grid;
    place-items: center;
    background: var(--_accent);
    color: var(--_accent-fg);
    box-shadow: 0 6px 20px rgb(0 0 0 / 0.22);
    transition: transform 0.15s ease;
  }
  .launcher:hover {
    transform: scale(1.05);
  }
  .launcher svg {
    width: 28px;
    height: 28px;
  }
  .launcher.live::after {
    content: '';
    position: absolute;
    inset: -5px;
    border-radius: 50%;
    border: 3px solid var(--_accent);
    opacity: 0.45;
  }
  .floating .panel {
    width: min(var(--voice-bot-width, 380px), calc(100vw - 2 * var(--_offset)));
    height: min(var(--voice-bot-height, 580px), calc(100vh - 74px - 3 * var(--_offset)));
    height: min(var(--voice-bot-height, 580px), calc(100dvh - 74px - 3 * var(--_offset)));
    box-shadow: var(--voice-bot-shadow, 0 16px 48px rgb(0 0 0 / 0.2), 0 2px 8px rgb(0 0 0 / 0.08));
  }
  @media (max-width: 480px) {
    .floating .panel {
      position: fixed;
      inset: 0;
      width: auto;
      height: auto;
      border-radius: 0;
      border: 0;
    }
    .floating.open .launcher {
      display: none;
    }
  }

  /* ---------- the panel ---------- */
  .panel {
    display: flex;
    flex-direction: column;
    overflow: hidden;
    background: var(--_bg);
    color: var(--_fg);
    border: 1px solid var(--_border);
    border-radius: var(--_radius);
  }
  .inline .panel {
    width: 100%;
    height: var(--voice-bot-height, 540px);
  }
  header {
    display: flex;
    align-items: center;
    gap: 10px;
    padding: 12px 10px 12px 16px;
    border-bottom: 1px solid var(--_border);
  }
  .avatar {
    flex: none;
    width: 34px;
    height: 34px;
    border-radius: 50%;
    display: grid;
    place-items: center;
    background: var(--_accent);
    color: var(--_accent-fg);
  }
  .avatar svg {
    width: 19px;
    height: 19px;
  }
  h2 {
    flex: 1;
    margin: 0;
    font-size: 1.02em;
    font-weight: 650;
    overflow: hidden;
    text-overflow: ellipsis;
    white-space: nowrap;
  }
  .icon-button {
    flex: none;
    width: 36px;
    height: 36px;
    border-radius: 50%;
    display: grid;
    place-items: center;
    color: var(--_muted);
  }
  .icon-button:hover {
    background: var(--_surface);
    color: var(--_fg);
  }
  .icon-button svg {
    width: 20px;
    height: 20px;
  }

  /* ---------- transcript ---------- */
  .transcript {
    flex: 1;
    min-height: 0;
    overflow-y: auto;
    overscroll-behavior: contain;
    padding: 16px 14px 8px;
    display: flex;
    flex-direction: column;
    gap: 8px;
  }
  .msg {
    max-width: 85%;
    padding: 9px 13px;
    border-radius: 16px;
    white-space: pre-wrap;
    overflow-wrap: anywhere;
  }
  .msg.bot {
    align-self: flex-start;
    background: var(--_bot-bg);
    color: var(--_bot-fg);
    border-bottom-left-radius: 5px;
  }
  .msg.user {
    align-self: flex-end;
    background: var(--_user-bg);
    color: var(--_user-fg);
    border-bottom-right-radius: 5px;
  }
  .msg.interim {
    opacity: 0.7;
    font-style: italic;
  }
  .msg.streaming::after {
    content: '▍';
    margin-left: 1px;
    opacity: 0.6;
    animation: blink 1s steps(2, start) infinite;
  }
  .tag {
    display: block;
    margin-top: 2px;
    font-size: 0.78em;
    font-style: italic;
    opacity: 0.75;
  }
  .dots {
    align-self: flex-start;
    display: flex;
    gap: 4px;
    padding: 13px 14px;
    border-radius: 16px;
    border-bottom-left-radius: 5px;
    background: var(--_bot-bg);
  }
  .dots span {
    width: 7px;
    height: 7px;
    border-radius: 50%;
    background: var(--_muted);
    animation: bounce 1.2s ease-in-out infinite;
  }
  .dots span:nth-child(2) {
    animation-delay: 0.15s;
  }
  .dots span:nth-child(3) {
    animation-delay: 0.3s;
  }

  /* ---------- error ---------- */
  .error {
    margin: 4px 12px 6px;
    padding: 11px 13px;
    border-radius: 12px;
    background: var(--_error-bg);
    color: var(--_error-fg);
    font-size: 0.9em;
  }
  .error p {
    margin: 0 0 6px;
  }
  .error strong {
    display: block;
    margin-bottom: 3px;
  }
  .error-actions {
    display: flex;
    flex-wrap: wrap;
    gap: 6px;
    margin-top: 8px;
  }
  .error-actions button {
    padding: 5px 12px;
    border-radius: 999px;
    border: 1px solid currentColor;
    font-size: 0.95em;
  }
  .error-actions button.primary {
    background: var(--_error-fg);
    border-color: var(--_error-fg);
    color: var(--_error-bg);
  }
  .code {
    display: block;
    margin-top: 8px;
    font-size: 0.78em;
    opacity: 0.8;
  }
  .code code {
    font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  }

  /* ---------- status + talk controls ---------- */
  .controls {
    display: flex;
    flex-direction: column;
    align-items: center;
    gap: 10px;
    padding: 10px 14px 12px;
    border-top: 1px solid var(--_border);
    background: var(--_surface);
  }
  .status {
    display: flex;
    align-items: center;
    gap: 9px;
    min-height: 22px;
    color: var(--_muted);
    font-size: 0.9em;
  }
  .status[data-state='error'] {
    color: var(--_danger);
  }
  .meter {
    display: none;
    align-items: center;
    gap: 3px;
    height: 20px;
  }
  .status[data-live] .meter {
    display: flex;
  }
  .meter span {
    width: 4px;
    height: 20px;
    border-radius: 2px;
    background: currentColor;
    transform: scaleY(max(0.15, min(1, var(--vb-level, 0) * var(--k, 1))));
    transition: transform 0.08s linear;
  }
  .meter span:nth-child(1),
  .meter span:nth-child(5) {
    --k: 0.55;
  }
  .meter span:nth-child(2),
  .meter span:nth-child(4) {
    --k: 0.85;
  }
  .status[data-state='listening'] .meter,
  .status[data-state='user-speaking'] .meter,
  .status[data-state='speaking'] .meter {
    color: var(--_accent);
  }
  /* in-browser speech recognition: the model download (stt="browser") */
  .stt {
    display: flex;
    flex-direction: column;
    gap: 5px;
    width: min(100%, 260px);
    color: var(--_muted);
    font-size: 0.85em;
    text-align: center;
  }
  .stt progress {
    -webkit-appearance: none;
    appearance: none;
    display: block;
    width: 100%;
    height: 6px;
    border: 0;
    border-radius: 3px;
    overflow: hidden;
    background: var(--_border);
  }
  .stt progress::-webkit-progress-bar {
    background: var(--_border);
  }
  .stt progress::-webkit-progress-value {
    background: var(--_accent);
    border-radius: 3px;
    transition: width 0.25s ease-out;
  }
  .stt progress::-moz-progress-bar {
    background: var(--_accent);
    border-radius: 3px;
  }
  /* talk button centred, mute to its left, end to its right */
  .buttons {
    display: grid;
    grid-template-columns: 1fr auto 1fr;
    align-items: center;
    gap: 18px;
    width: 100%;
  }
  .buttons .mute {
    grid-column: 1;
    justify-self: end;
  }
  .buttons .talk {
    grid-column: 2;
  }
  .buttons .end {
    grid-column: 3;
    justify-self: start;
    color: var(--_danger);
  }
  .round {
    width: 44px;
    height: 44px;
    border-radius: 50%;
    display: grid;
    place-items: center;
    border: 1px solid var(--_border);
    background: var(--_bg);
    color: var(--_fg);
  }
  .round:hover {
    border-color: var(--_muted);
  }
  .round[aria-pressed='true'] {
    background: var(--_fg);
    color: var(--_bg);
    border-color: var(--_fg);
  }
  .round svg {
    width: 20px;
    height: 20px;
  }
  .talk {
    position: relative;
    width: 64px;
    height: 64px;
    border-radius: 50%;
    display: grid;
    place-items: center;
    background: var(--_accent);
    color: var(--_accent-fg);
    box-shadow: 0 4px 14px rgb(0 0 0 / 0.18);
  }
  .talk svg {
    width: 28px;
    height: 28px;
  }
  .talk[aria-pressed='true'] {
    background: var(--_danger);
    color: var(--_danger-fg);
  }
  .talk::before {
    content: '';
    position: absolute;
    inset: -6px;
    border-radius: 50%;
    border: 3px solid var(--_accent);
    opacity: 0;
    transform: scale(calc(1 + min(1, var(--vb-level, 0)) * 0.25));
    transition: transform 0.08s linear;
  }
  .talk[data-state='listening']::before,
  .talk[data-state='user-speaking']::before,
  .talk[data-state='speaking']::before {
    opacity: 0.4;
  }
  .talk[data-state='listening']::after {
    content: '';
    position: absolute;
    inset: 0;
    border-radius: 50%;
    border: 2px solid var(--_danger);
    animation: pulse 1.8s ease-out infinite;
  }

  /* ---------- typing ---------- */
  form {
    display: flex;
    align-items: center;
    gap: 8px;
    padding: 10px 12px 12px;
    border-top: 1px solid var(--_border);
  }
  input {
    flex: 1;
    min-width: 0;
    padding: 10px 14px;
    border: 1px solid var(--_border);
    border-radius: 999px;
    background: var(--_bg);
    color: var(--_fg);
    font: inherit;
  }
  input::placeholder {
    color: var(--_muted);
  }
  input:focus-visible {
    outline-offset: 0;
    border-color: var(--_focus);
  }
  .send {
    flex: none;
    width: 42px;
    height: 42px;
    border-radius: 50%;
    display: grid;
    place-items: center;
    background: var(--_accent);
    color: var(--_accent-fg);
  }
  .send svg {
    width: 20px;
    height: 20px;
  }

  @keyframes pulse {
    from {
      transform: scale(1);
      opacity: 0.6;
    }
    to {
      transform: scale(1.45);
      opacity: 0;
    }
  }
  @keyframes bounce {
    0%,
    80%,
    100% {
      transform: translateY(0);
      opacity: 0.5;
    }
    40% {
      transform: translateY(-4px);
      opacity: 1;
    }
  }
  @keyframes blink {
    to {
      visibility: hidden;
    }
  }
  @media (prefers-reduced-motion: reduce) {
    *,
    *::before,
    *::after {
      animation: none !important;
      transition: none !important;
    }
    .launcher:hover {
      transform: none;
    }
    .stt progress::-webkit-progress-value {
      transition: none;
    }
  }
`;
