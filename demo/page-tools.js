// A page-side tool: the bot's config lists `show_section` in `clientTools`; this page runs it.
await customElements.whenDefined('voice-bot');
document.querySelector('voice-bot')?.registerTool({
  name: 'show_section',
  handler({ section }) {
    const target = document.getElementById(section);
    if (!target) throw new Error(`this page has no section ${section}`);
    target.scrollIntoView({ behavior: 'smooth', block: 'start' });
    target.classList.add('shown');
    setTimeout(() => target.classList.remove('shown'), 2000);
    return { shown: section };
  },
});
