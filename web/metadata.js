// The sample metadata form: filled from the sidecar (hello and metadata messages, never over a field
// being typed in) and saved with POST /api/metadata (with the page's token when it has one).
import { $ } from './dom.js';

export function fillMetadata(md) {
  if (!md) return;
  const f = $('meta');
  for (const [k, v] of Object.entries(md)) if (f.elements[k] && document.activeElement !== f.elements[k]) f.elements[k].value = v ?? '';
}

/** Saves the form on submit; the result (or the server's one-line error) shows beside it. */
export function bindMetadataForm(token) {
  $('meta').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = {};
    for (const k of ['user', 'project', 'sample', 'notes']) body[k] = f.elements[k].value;
    $('metastate').textContent = 'saving…';
    const r = await fetch('/api/metadata', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    $('metastate').textContent = r.ok ? 'saved' : `error: ${(await r.json()).error}`;
  });
}
