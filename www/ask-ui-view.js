// The markup of the asking UI, shared by the app (index.html) and the browser extension's side
// panel (extension/panel.html): the model section (choice, hub chooser, check, load, cache list),
// the frame settings and stage list, "what the model sees" (thumbnails, 3D view) and the ask
// section (presets, question, Ask / Stop, the answer log). Each page holds empty sections with
// these ids; `mountAskUI` fills them before the logic (ask-ui.js) looks its elements up.
import { $, el } from './ui.js';

/** el() plus attributes that are not element properties (aria-*, for). */
function ea(tag, attrs, props = {}, ...children) {
  const e = el(tag, props, ...children);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}
const muted = (text) => el('span', { className: 'muted' }, text);
const field = (id, placeholder, type = 'text') => ea('input', { spellcheck: 'false', autocomplete: 'off' }, { id, type, placeholder });
const radio = (value, label, note, checked = false) =>
  el('div', { className: 'row' }, el('label', {}, el('input', { type: 'radio', name: 'model', value, checked }), ` ${label} `, note ? muted(note) : null));
const options = (list, selected) => list.map(([value, text]) => el('option', { value, selected: value === selected }, text));

/** Repository + revision inputs for a hub choice ("Other…"). */
const repoPair = (prefix) => el('div', { id: `${prefix}-other`, className: 'pair', hidden: true },
  el('label', {}, 'Repository ', field(`${prefix}-repo`, 'owner/name')),
  el('label', {}, 'Revision ', field(`${prefix}-rev`, 'main (a branch, tag or commit)')));

/** The model section. `custom`: offer a converted package by URL (the app); `keptIn`: where
 * downloads are kept, in the hub choice's note ("in the extension's storage"). */
function modelSection({ custom, keptIn }) {
  return [
    ea('h2', {}, { id: 'model-h' }, '1 · Model'),
    radio('demo', 'Tiny demo', '(bundled, works offline at once; random weights, so its answers are meaningless)', true),
    radio('hub', 'A model from the Hugging Face hub', `(downloaded once, converted in this browser when needed, then kept${keptIn ? ` ${keptIn}` : ''} for offline use)`),
    el('div', { id: 'hub-panel', className: 'indent', hidden: true },
      el('label', {}, 'Model ', el('select', { id: 'hub-model' })),
      repoPair('hub-model'),
      el('p', { id: 'hub-model-about', className: 'muted' }),
      el('label', {}, 'Frame sampler ', el('select', { id: 'hub-sampler' })),
      repoPair('hub-sampler'),
      el('p', { id: 'hub-sampler-about', className: 'muted' }),
      el('details', { id: 'hub-advanced' },
        el('summary', {}, 'Advanced'),
        el('label', {}, 'Hub address ', field('hub-endpoint', '', 'url')),
        el('p', { id: 'hub-endpoint-note', className: 'muted' }),
        el('label', {}, 'Access token ', muted('(for gated or private repositories)'), field('hub-token', 'hf_…', 'password')),
        el('p', { className: 'muted' }, 'The token stays in this browser (its local storage) and is sent only to the hub address above. ',
          el('button', { id: 'hub-token-forget', type: 'button' }, 'Forget the token')))),
    custom ? radio('custom', 'A converted package by URL') : null,
    custom ? el('div', { id: 'custom-urls', className: 'indent', hidden: true },
      el('label', {}, 'Model package ', el('input', { id: 'model-url', type: 'url', placeholder: 'https://…/spatial-mllm-v1.1-q4/', size: 50 })),
      el('label', {}, 'VGGT package for space-aware sampling and the 3D view ', muted('(optional)'),
        el('input', { id: 'sampler-url', type: 'url', placeholder: 'https://…/vggt-1b-q8/', size: 50 })),
      el('p', { className: 'muted' }, 'Make a package with ', el('code', {}, 'spatial-mllm convert <checkpoint folder> <out>'),
        ' and serve the folder from this site or a server that allows it (CORS).')) : null,
    el('div', { className: 'row' },
      el('button', { id: 'check', type: 'button' }, 'Check this browser'),
      el('button', { id: 'load', type: 'button', className: 'primary' }, 'Load model')),
    el('div', { id: 'capability', className: 'card', hidden: true }),
    el('div', { id: 'load-progress', hidden: true },
      el('progress', { id: 'load-bar', max: 1, value: 0 }), ' ', el('span', { id: 'load-text' }), ' ',
      el('button', { id: 'load-stop', type: 'button', hidden: true }, 'Stop download')),
    el('p', { id: 'device', className: 'muted' }),
    el('details', { id: 'cache-panel' },
      el('summary', {}, 'Downloaded models ', el('span', { id: 'cache-total', className: 'muted' })),
      el('table', { id: 'cache-table' },
        el('thead', {}, el('tr', {}, ...['package', 'size', 'state', ''].map((h) => el('th', {}, h)))), el('tbody')),
      el('p', {}, el('button', { id: 'cache-refresh', type: 'button' }, 'Refresh'), ' ',
        el('button', { id: 'cache-clear', type: 'button' }, 'Delete all'), ' ', el('span', { id: 'storage', className: 'muted' }))),
  ];
}

/** Frames, sampling, longest answer, the Analyse button (plus the page's own `extra` settings),
 * and the stage list. */
function settings({ extra = [] }) {
  return [
    el('div', { className: 'row settings' },
      el('label', {}, 'Frames ', el('select', { id: 'frames' }, ...options([['8', '8'], ['16', '16'], ['32', '32']], '16'))),
      el('label', {}, 'Frame sampling ', el('select', { id: 'sampling' }, ...options([
        ['fast', 'space-aware, fast (32 candidates at 224 px)'],
        ['full', 'space-aware, full (128 candidates at 518 px)'],
        ['uniform', 'uniform']], 'fast'))),
      ...extra,
      el('label', {}, 'Longest answer ', el('select', { id: 'max-new' }, ...options([['64', '64'], ['256', '256'], ['1024', '1024']], '256')), ' tokens'),
      el('button', { id: 'analyse', type: 'button' }, 'Analyse video')),
  ];
}

/** What the 3D view shows (ask-ui.js puts it back after a video without one). */
export const VIEW_NOTE = 'The room as VGGT reconstructs it: points coloured from the frames, the camera path, the selected frames highlighted. Drag to turn, shift-drag to move, wheel to zoom.';

function seeSection() {
  return [
    ea('h2', {}, { id: 'see-h' }, '3 · What the model sees'),
    el('div', { id: 'thumbs', className: 'thumbs' }),
    el('div', { className: 'view-wrap' },
      ea('canvas', { 'aria-label': '3D reconstruction of the room' }, { id: 'view3d', width: 640, height: 400 }),
      el('p', { className: 'muted' }, el('span', { id: 'view-note' }, VIEW_NOTE), ' ', el('button', { id: 'view-reset', type: 'button' }, 'Reset view'))),
  ];
}

function askSection() {
  return [
    ea('h2', {}, { id: 'ask-h' }, '4 · Ask'),
    ea('div', { 'aria-label': 'VSI-Bench question types' }, { id: 'presets', className: 'presets' }),
    el('textarea', { id: 'question', rows: 3, placeholder: 'How many chairs are in this room?' }),
    el('div', { className: 'row' },
      el('button', { id: 'ask', type: 'button', className: 'primary' }, 'Ask'),
      el('button', { id: 'stop', type: 'button', disabled: true }, 'Stop'),
      el('span', { id: 'gen-stats', className: 'muted' })),
    ea('div', { 'aria-live': 'polite' }, { id: 'log', className: 'log' }),
  ];
}

/** Fills the page's placeholders: #model-section, #settings (replaced by the settings row),
 * #see-section, #ask-section. */
export function mountAskUI({ custom = false, keptIn = '', extraSettings = [] } = {}) {
  $('model-section').append(...modelSection({ custom, keptIn }).filter(Boolean));
  $('settings').replaceWith(...settings({ extra: extraSettings }));
  $('see-section').append(...seeSection());
  $('ask-section').append(...askSection());
}
