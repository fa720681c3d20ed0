// The extension's side panel: the app's asking flow (model choice and capability check, question
// presets, streamed answer with Stop, stage progress, thumbnails, the 3D view) on a video of the page
// in the current tab. It imports the app's own modules from the packaged copy of www/ (app/); only
// the page side (page.js: listing the page's videos and taking their frames) is the extension's.
// The engine runs here (in the panel page's Web Worker), never in the service worker: closing the
// panel ends the worker and everything it was doing, and the content script restores the video.
import { createEngine } from './app/engine/engine.js';
import { DEMO, fetchManifest, checkCapabilities, listCachedPackages, deleteCachedPackage, storageSummary, fmtBytes, HUB_DEFAULT } from './app/models.js';
import { HubChooser } from './app/catalogue.js';
import { PRESETS, presetText } from './app/questions.js';
import { chooseFrames, DECODE_MAX_SIDE } from './app/pipeline.js';
import { $, el, banner, StageList, DownloadMeter, showThumbnails, logEntry } from './app/ui.js';
import { PageLink, openPageVideo } from './page.js';

const params = new URLSearchParams(location.search);
const stages = new StageList($('stages'));
const state = {
  engine: null, model: null, tabId: null, link: null, page: null, picked: null,
  opened: null, // {route, source, why}
  analysed: null, busy: false, asking: false, stopper: null,
};

// ---- small shared steps ----------------------------------------------------------------------

async function busy(step) {
  if (state.busy) { banner('Still working on the previous step: wait for it (or stop the answer).', 'info'); return; }
  state.busy = true;
  setButtons();
  try {
    await step();
  } catch (e) {
    if (e.name === 'AbortError') { banner(e.message, 'info'); return; }
    stages.fail(e.message);
    banner(e.message);
    console.error(e);
  } finally {
    state.busy = false;
    setButtons();
  }
}

function setButtons() {
  for (const id of ['load', 'analyse', 'check', 'rescan']) $(id).disabled = state.busy;
  $('ask').disabled = state.busy;
  $('stop').disabled = !state.asking;
}

const modelChoice = () => document.querySelector('input[name=model]:checked').value;
let hub = null;
const selectedEntry = () => (modelChoice() === 'hub' ? hub.entry() : DEMO);

function startEngine() {
  // A crashed worker or lost device: a new engine; the model is loaded again on the next step.
  state.engine = createEngine({
    onCrash: (msg) => {
      state.model = null;
      state.analysed = null;
      banner(`${msg}. The engine was restarted: the next step loads the model again (from the cache).`);
      startEngine();
    },
  });
}

// ---- model -----------------------------------------------------------------------------------

/** What the model needs for the chosen frames of the picked video (the engine's estimate from the
 * package manifests, as the app's check): weights of model and sampler, the larger activations. */
async function estimateNeed(entry) {
  const d = entry.hub ? await hub.describe(entry) : await (async () => {
    const m = await fetchManifest(entry.model);
    const smp = entry.sampler ? await fetchManifest(entry.sampler) : null;
    return { modelManifest: m.text, samplerManifest: smp?.text ?? null, downloadBytes: m.bytes + (smp?.bytes ?? 0), lines: [] };
  })();
  const frames = Number($('frames').value);
  const v = state.picked?.width ? state.picked : { width: 644, height: 476 };
  const s = Math.min(1, DECODE_MAX_SIDE / Math.max(v.width, v.height));
  const size = { width: Math.round(v.width * s), height: Math.round(v.height * s) };
  const need = await state.engine.estimate(d.modelManifest, { frames, ...size });
  if (d.samplerManifest && $('sampling').value !== 'uniform') {
    const smp = await state.engine.estimate(d.samplerManifest, { frames: 32, width: 224, height: 224 });
    need.weight_bytes += smp.weight_bytes;
    need.activation_bytes = Math.max(need.activation_bytes, smp.activation_bytes);
    need.largest_buffer_bytes = Math.max(need.largest_buffer_bytes, smp.largest_buffer_bytes);
  }
  return { need: Object.assign(need, { frames, download_bytes: d.downloadBytes, storage_bytes: d.storageBytes }), lines: d.lines };
}

async function check(entry) {
  let est = { need: null, lines: [] };
  try {
    est = await estimateNeed(entry);
  } catch (e) {
    if (entry.hub) throw e; // the hub's answer (unknown repository, gated, offline) is the message
    console.warn('no memory estimate:', e);
  }
  const cap = await checkCapabilities(est.need);
  const box = $('capability');
  box.hidden = false;
  box.className = `card ${cap.verdict}`;
  const lines = est.lines;
  box.replaceChildren(
    el('div', { className: 'verdict' }, { ok: 'This browser can run it.', slow: 'This browser can run it, slowly.', doubtful: 'This browser may not have enough memory for it.', cannot: 'This browser cannot run the model.' }[cap.verdict]),
    ...lines,
    el('div', {}, `GPU: ${cap.adapter ?? 'none'}${cap.adapter ? `, shader-f16 ${cap.f16 ? 'yes' : 'no'}` : ''}.`),
    ...cap.notes.map((n) => el('div', { className: 'muted' }, n)),
  );
  return cap;
}

/** Hub models need the hub's hosts: asked for when the user picks one (optional host permissions). */
async function hubPermission() {
  const origins = chrome.runtime.getManifest().optional_host_permissions ?? [];
  if (!origins.length || await chrome.permissions.contains({ origins })) return;
  const granted = await chrome.permissions.request({ origins }).catch(() => false);
  if (!granted) banner('Without access to huggingface.co the extension cannot download the model (the files themselves may still download if the hub allows it).', 'info');
}

async function loadModel(entry) {
  const cap = await check(entry);
  if (cap.verdict === 'cannot') throw Object.assign(new Error('This browser cannot run the model (see the check above).'), { name: 'BadInput' });
  $('load-progress').hidden = false;
  if (entry.hub && !entry.model) {
    await hub.prepare(entry, ({ fraction, text }) => { $('load-bar').value = fraction; $('load-text').textContent = text; });
  }
  const meter = new DownloadMeter();
  const r = await state.engine.load(entry.model, {
    sampler: entry.sampler,
    onProgress: (e) => { $('load-bar').value = e.total ? e.done / e.total : 0; $('load-text').textContent = meter.text(e); },
  });
  const kind = (await fetchManifest(entry.model)).kind;
  state.model = { entry, kind, device: r.device, hasSampler: r.hasSampler };
  $('device').textContent = `Loaded ${entry.hub ? `${entry.label} (${kind})` : kind} on ${r.device}.`;
  renderPresets();
  refreshCache();
}

// ---- the page's videos ----------------------------------------------------------------------

let fixedTab = params.has('tab') ? Number(params.get('tab')) : null; // panel.html?tab=ID: a panel opened on one tab (the tests)

async function targetTab() {
  if (fixedTab !== null) return fixedTab;
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab?.id ?? null;
}

async function scan() {
  state.link?.close();
  state.link = null;
  state.page = null;
  state.picked = null;
  $('video-list').replaceChildren();
  state.tabId = await targetTab();
  if (state.tabId == null) { $('page-info').textContent = 'No tab to look at.'; return; }
  const link = new PageLink(state.tabId);
  try {
    await link.open();
  } catch (e) {
    $('page-info').textContent = /permission|Cannot access/i.test(e.message)
      ? 'The extension may not look at this tab yet: click its toolbar button while this tab is showing.'
      : `This page cannot be read by extensions (${e.message}). Browser pages and the web store are closed to them.`;
    return;
  }
  state.link = link;
  const page = await link.call('list');
  state.page = page;
  if (!page.videos.length) {
    $('page-info').textContent = 'There is no video on this page. Open a page with a video (or start the video), then press "Look again".';
    return;
  }
  $('page-info').textContent = `${page.videos.length} video${page.videos.length > 1 ? 's' : ''} on ${page.title || page.url}: pick one.`;
  $('video-list').replaceChildren(...page.videos.map((v) => {
    const input = el('input', { type: 'radio', name: 'video', value: String(v.index) });
    input.onchange = () => { state.picked = v; releaseVideo(); };
    const dur = v.duration === 'live' ? 'live' : v.duration == null ? 'unknown length' : `${v.duration.toFixed(1)} s`;
    const facts = `${v.width}×${v.height}, ${dur}, ${v.paused ? 'paused' : 'playing'} at ${v.currentTime.toFixed(1)} s${v.mse ? ', Media Source' : ''}`;
    const thumb = v.thumbnail ? el('img', { src: v.thumbnail, alt: `video ${v.index + 1}` }) : el('span', { className: 'nothumb' });
    const note = v.readable ? null : el('div', { className: 'unreadable' }, v.drm ? 'DRM-protected: cannot be read' : v.unreadableWhy);
    return el('label', { className: 'video' }, input, thumb, el('div', {}, el('div', {}, `Video ${v.index + 1}`), el('div', { className: 'muted' }, facts), note));
  }));
  const first = $('video-list').querySelector('input');
  if (page.videos.length === 1) { first.checked = true; state.picked = page.videos[0]; }
}

async function releaseVideo() {
  const a = state.analysed;
  state.analysed = null;
  state.opened?.source.close();
  state.opened = null;
  $('see-section').hidden = true;
  $('route').hidden = true;
  if (a?.video && state.engine && !state.engine.dead) await state.engine.release(a.video).catch(() => {});
}

function showRoute(opened, wanted) {
  const { route, source } = opened;
  const name = { file: 'Route: the video\'s file, decoded here', element: 'Route: drawing the page\'s video at chosen times', live: 'Route: the live stream as it plays' }[route];
  const secs = route === 'live' ? source.duration : route === 'element' ? Math.max(1, Math.round(wanted * 0.25)) : Math.max(1, Math.round(wanted * 0.05));
  $('route').hidden = false;
  $('route').dataset.route = route;
  $('route').replaceChildren(el('strong', {}, name), el('div', {}, `Why: ${opened.why}.`),
    el('div', { className: 'muted' }, route === 'live' ? `Taking ${wanted} frames over the next ${secs} s.` : `Taking ${wanted} frames of a ${source.duration.toFixed(1)} s video should take about ${secs} s.`));
}

async function analyse() {
  if (!state.picked) throw Object.assign(new Error(state.page?.videos.length ? 'Pick a video first.' : 'There is no video on this page.'), { name: 'BadInput' });
  await releaseVideo();
  stages.reset();
  // The route first: a video that cannot be read is said so before any model is loaded.
  stages.start('finding the video');
  state.opened = await openPageVideo(state.link, state.picked, { liveSeconds: Number($('live-seconds').value) });
  const wanted = Number($('frames').value);
  showRoute(state.opened, wanted);
  stages.finish();
  if (!state.model) await loadModel(selectedEntry());
  const source = state.opened.source;
  const a = await chooseFrames({
    engine: state.engine, source, wanted, mode: $('sampling').value, hasSampler: state.model.hasSampler,
    stage: (name, detail) => (stages.current?.name === name ? stages.note(detail ?? '') : stages.start(name, detail)),
  });
  a.restored = source.restored ?? null;
  a.route = state.opened.route;
  showSeen(a);
  stages.start('preprocessing');
  const maxNew = Math.max(...[...$('max-new').options].map((o) => Number(o.value)));
  a.video = await state.engine.encode(a.frames, { maxNew, onProgress: (e) => (e.stage === 'done' ? stages.finish() : stages.start(e.stage)) });
  a.tokens = a.video.tokens;
  stages.finish();
  state.analysed = a;
  const short = a.frames.count < wanted ? ` The video is too short for ${wanted} frames: ${a.frames.count} were used.` : '';
  $('video-info').textContent = `${a.frames.count} frame${a.frames.count === 1 ? '' : 's'} of ${a.frames.width}×${a.frames.height} encoded into ${a.tokens} visual tokens.${short}`;
}

let view = null;
async function showSeen(a) {
  $('see-section').hidden = false;
  showThumbnails($('thumbs'), a.frames, a.times, (i, fig) => {
    for (const f of $('thumbs').children) f.classList.toggle('hl', f === fig && !fig.classList.contains('hl'));
    view?.highlightFrame(fig.classList.contains('hl') && a.sample ? a.sample.selected[i] : null);
  });
  const canvas = $('view3d');
  canvas.hidden = !a.sample;
  if (!a.sample) { $('view-note').textContent = 'No 3D view: it comes from space-aware sampling.'; return; }
  try {
    if (!view) {
      const { PointCloudView } = await import('./app/view3d/view3d.js');
      view = await PointCloudView.create(canvas, { onError: (e) => banner(`3D view: ${e.message ?? e}`) });
    }
    const s = a.sample;
    view.setScene({ points: s.points, colors: s.colors, pointFrame: s.point_frame, cameras: s.cameras, selected: Array.from(s.selected) });
  } catch (e) {
    $('view-note').textContent = `The 3D view could not start: ${e.message}`;
  }
}

// ---- asking ----------------------------------------------------------------------------------

async function ask() {
  const question = $('question').value.trim();
  if (!question) throw Object.assign(new Error('Type a question, or pick one of the question types above.'), { name: 'BadInput' });
  if (!state.analysed) await analyse();
  const entry = logEntry($('log'), question);
  state.asking = true;
  setButtons();
  try {
    stages.start('prefill');
    let first = true;
    state.stopper = new AbortController();
    const answer = state.engine.ask(question, { video: state.analysed.video, maxNew: Number($('max-new').value), signal: state.stopper.signal });
    try {
      // Rendered as text only (textContent), never as HTML.
      for await (const piece of answer) {
        if (first) { first = false; stages.start('answer'); }
        entry.answer.textContent += piece;
      }
    } catch (e) {
      if (e.name !== 'AbortError') throw e;
      entry.answer.classList.add('stopped');
    }
    const r = await answer.result;
    stages.finish();
    entry.answer.textContent = r.text;
    const s = r.stats;
    const tps = s.decode_ms > 0 ? (s.new_tokens / (s.decode_ms / 1000)).toFixed(1) : '–';
    entry.stats.textContent = `${s.prompt_tokens} prompt tokens (${s.prefilled_tokens} prefilled); ${s.new_tokens} tokens at ${tps} tok/s`;
  } catch (e) {
    entry.answer.textContent += ` [failed: ${e.message}]`;
    throw e;
  } finally {
    state.asking = false;
    state.stopper = null;
    setButtons();
  }
}

function renderPresets() {
  $('presets').replaceChildren(...PRESETS.map((p) => {
    const b = el('button', { type: 'button', title: p.type }, p.label);
    b.onclick = () => { $('question').value = presetText(p, state.model?.kind); $('question').focus(); };
    return b;
  }));
}

async function refreshCache() {
  try {
    const pkgs = await listCachedPackages();
    $('cache-table').querySelector('tbody').replaceChildren(...pkgs.map((p) => {
      const del = el('button', { type: 'button' }, 'Delete');
      del.onclick = async () => { await deleteCachedPackage(p.base); hub?.cacheChanged(); refreshCache(); };
      const name = p.hub ? `${p.hub.repo} · ${p.hub.commit.slice(0, 10)}${p.hub.endpoint === HUB_DEFAULT ? '' : ` · ${p.hub.endpoint}`}` : p.base;
      return el('tr', {}, el('td', {}, name), el('td', {}, fmtBytes(p.bytes)), el('td', {}, p.complete ? 'complete' : 'partial'), el('td', {}, del));
    }));
    $('cache-total').textContent = `(${pkgs.length}, ${fmtBytes(pkgs.reduce((a, p) => a + p.bytes, 0))})`;
    const s = await storageSummary();
    $('storage').textContent = s ? `The extension uses ${fmtBytes(s.usage)} of ${fmtBytes(s.quota)}.` : '';
  } catch (e) {
    $('storage').textContent = `The cache cannot be read: ${e.message}`;
  }
}

// ---- wiring ----------------------------------------------------------------------------------

async function main() {
  const settings = await chrome.storage.local.get(['model-choice', 'frames', 'sampling', 'live-seconds']);
  const saved = document.querySelector(`input[name=model][value="${CSS.escape(settings['model-choice'] ?? 'demo')}"]`);
  if (saved) saved.checked = true;
  for (const id of ['frames', 'sampling', 'live-seconds']) if (settings[id]) $(id).value = settings[id];
  const showChoice = () => { $('hub-panel').hidden = modelChoice() !== 'hub'; };
  showChoice();
  for (const r of document.querySelectorAll('input[name=model]')) {
    r.onchange = () => { showChoice(); chrome.storage.local.set({ 'model-choice': modelChoice() }); };
  }
  hub = new HubChooser({ engine: () => state.engine, onChange: () => {} });
  $('check').onclick = () => busy(() => check(selectedEntry()));
  $('load').onclick = () => busy(async () => { if (modelChoice() === 'hub') await hubPermission(); await loadModel(selectedEntry()); });
  $('analyse').onclick = () => busy(analyse);
  $('ask').onclick = () => busy(ask);
  $('stop').onclick = () => state.stopper?.abort();
  $('rescan').onclick = () => busy(async () => { await releaseVideo(); await scan(); });
  $('question').onkeydown = (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('ask').click(); };
  for (const id of ['frames', 'sampling', 'live-seconds']) {
    $(id).onchange = () => { chrome.storage.local.set({ [id]: $(id).value }); if (state.analysed) busy(releaseVideo); };
  }
  $('view-reset').onclick = () => view?.resetView();
  $('cache-refresh').onclick = refreshCache;
  $('cache-panel').ontoggle = () => $('cache-panel').open && refreshCache();
  // The side panel follows the window's active tab.
  if (!params.has('tab')) {
    chrome.tabs.onActivated.addListener(() => { if (!state.busy) busy(async () => { await releaseVideo(); await scan(); }); });
    // The toolbar button clicked on a tab (the service worker says which): activeTab now covers it.
    chrome.runtime.onMessage.addListener((m) => { if (m?.type === 'invoked' && !state.busy) busy(async () => { await releaseVideo(); await scan(); }); });
    chrome.tabs.onUpdated.addListener((id, change) => { if (id === state.tabId && change.status === 'complete' && !state.busy) busy(async () => { await releaseVideo(); await scan(); }); });
  }
  renderPresets();
  setButtons();
  if (!navigator.gpu) banner('This browser has no WebGPU, which the model needs (Chrome or Edge 113+).');
  startEngine();
  // A closed panel ends everything at once: the answer, the engine's worker (and its GPU work),
  // and the link to the page, whose content script then restores a video it was seeking.
  addEventListener('pagehide', () => {
    state.stopper?.abort();
    state.engine?.dispose();
    state.link?.close();
  });
  await busy(scan);
  // The handle the browser test drives; useTab: look at another tab (as switching tabs does).
  window.panel = { state, useTab: (id) => { fixedTab = id; return busy(async () => { await releaseVideo(); await scan(); }); } };
}
main();
