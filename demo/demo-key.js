// Demo only: `npm start` creates a development key for this origin; a real site writes its key
// straight into the <voice-bot key="vb_pk_…"> attribute.
const { key, offline } = await (await fetch('/demo-config.json')).json();
for (const element of document.querySelectorAll('voice-bot')) {
  element.setAttribute('relay', location.origin);
  element.setAttribute('key', key);
}
window.voiceBotDemo = { key, offline };
const note = document.getElementById('offline-note');
if (note && offline) note.hidden = false;
