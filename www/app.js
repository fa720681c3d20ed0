// The app: load a model into the engine worker, take a video, pick and encode its frames once, and
// answer questions about it with the reply streaming in. Failures keep what the user has: a lost
// GPU device or a crashed worker restarts the engine, reloads the model from the cache, encodes
// the same frames again and retries the interrupted step once. The engine is used only through its
// facade (engine/engine.js).
import { createEngine } from './engine/engine.js';
import { DEMO, customModel, fetchManifest, checkCapabilities, listCachedPackages, deleteCachedPackage, storageSummary, fmtBytes, PACKAGE_CACHE, HUB_DEFAULT } from './models.js';
import { HubChooser, errorNodes } from './catalogue.js';
import { PRESETS, presetText } from './questions.js';
import { chooseFrames, DECODE_MAX_SIDE } from './pipeline.js';
import { $, el, banner, StageList, DownloadMeter, showThumbnails, logEntry } from './ui.js';
import { openVideo } from './video/video.js';
import { missingHosts, hostCard, wireHostsPanel } from './hosts.js';

const params = new URLSearchParams(location.search);
const stages = new StageList($('stages'));
const state = {
  engine: null, // the engine facade (engine/engine.js)
  model: null, // {entry, kind, device, hasSampler}
  source: null, // the open video (www/video)
  videoName: '',
  analysed: null, // {frames, times, indices, sample, video (the engine's EncodedVideo), tokens}
  busy: false,
  asking: false,
  recovering: null,
  recoveries: 0,
  view: null,
  hiddenAt: null,
};

// ---- engine lifetime -------------------------------------------------------------------------

function startEngine() {
  state.engine = createEngine({ onCrash: (msg) => recover(msg) });
}

/** A new worker with the same model (from the cache) and the same video frames. */
function recover(reason) {
  state.recovering ??= (async () => {
    state.recoveries += 1;
    banner(`${reason}. Restarting the engine and reloading the model from the cache…`, 'info');
    state.engine?.dispose();
    startEngine();
    if (state.model) await loadModel(state.model.entry, { quiet: true });
    if (state.analysed) await (state.analysed.textOnly ? openTextSession(state.analysed) : encodeFrames(state.analysed));
    banner('Recovered: the GPU engine was restarted, the model reloaded from the cache and the video encoded again. Nothing was lost.', 'info');
  })().finally(() => { state.recovering = null; });
  return state.recovering;
}

const RESTARTABLE = new Set(['GpuDeviceLost', 'WorkerCrashed']);

/** Run a step of the app; a lost device or crashed worker is recovered and the step retried once. */
async function guarded(step, { retry = true } = {}) {
  try {
    return await step();
  } catch (e) {
    if (RESTARTABLE.has(e.name) && retry) {
      try {
        await recover(e.name === 'GpuDeviceLost' ? 'The GPU device was lost (a driver reset, or the browser reclaimed the GPU)' : e.message);
      } catch (again) {
        throw explain(again);
      }
      return step();
    }
    throw explain(e);
  }
}

/** The message the user sees, with what to do about it. */
function explain(e) {
  let msg = e.message ?? String(e);
  if (e.name === 'GpuOutOfMemory') msg += ` — with ${$('frames').value} frames this is too much for this GPU: choose fewer frames (Frames above), uniform sampling, or close other GPU-heavy tabs.`;
  if (e.name === 'UnsupportedCodec' || e.name === 'UnsupportedContainer') msg += ' (Nothing was uploaded; the file stays on this machine.)';
  return Object.assign(new Error(msg), { name: e.name });
}

async function busy(step) {
  if (state.busy) {
    banner('Still working on the previous step: wait for it (or stop the answer) and try again.', 'info');
    return;
  }
  state.busy = true;
  setButtons();
  try {
    await step();
  } catch (e) {
    // The user's own Stop of a download is news, not a failure.
    if (e.name === 'AbortError') {
      banner(e.message, 'info');
      return;
    }
    stages.fail(e.message);
    banner(e.message);
    console.error(e);
  } finally {
    state.busy = false;
    setButtons();
  }
}

function setButtons() {
  for (const id of ['load', 'analyse', 'check', 'sample']) $(id).disabled = state.busy;
  $('ask').disabled = state.busy && !state.asking ? true : state.asking;
  $('stop').disabled = !state.asking;
}

// ---- model -----------------------------------------------------------------------------------

const modelChoice = () => document.querySelector('input[name=model]:checked').value;
let hub = null; // the hub's catalogue and settings (catalogue.js), made in wire()

function selectedEntry() {
  const choice = modelChoice();
  if (choice === 'hub') return hub.entry();
  if (choice !== 'custom') return DEMO;
  const url = $('model-url').value.trim();
  if (!url) throw Object.assign(new Error('enter the model package URL (the folder with manifest.json)'), { name: 'BadInput' });
  localStorage.setItem('model-url', url);
  localStorage.setItem('sampler-url', $('sampler-url').value.trim());
  return customModel(url, $('sampler-url').value.trim());
}

/** What the entry's packages are, before any weights are downloaded: {kind, modelManifest,
 * samplerManifest, downloadBytes, storageBytes (hub only), lines (the hub's per-repository facts)}. */
async function describe(entry) {
  if (entry.hub) return hub.describe(entry);
  const m = await fetchManifest(entry.model);
  const s = entry.sampler ? await fetchManifest(entry.sampler) : null;
  return { kind: m.kind, modelManifest: m.text, samplerManifest: s?.text ?? null, downloadBytes: m.bytes + (s?.bytes ?? 0), lines: [] };
}

/** GPU memory for the chosen frames: the model's, plus the sampler's weights and, when frames are
 * sampled by space, its activations over the candidates (freed before the model's run). */
async function estimateNeed(d) {
  const est = (manifestJson, frames, width, height) => guarded(() => state.engine.estimate(manifestJson, { frames, width, height }));
  const frames = Number($('frames').value);
  const { width, height } = state.source ?? { width: 644, height: 476 };
  const scale = Math.min(1, DECODE_MAX_SIDE / Math.max(width, height));
  const [w, h] = [Math.round(width * scale), Math.round(height * scale)];
  const need = await est(d.modelManifest, frames, w, h);
  if (d.samplerManifest) {
    const mode = $('sampling').value;
    const side = mode === 'full' ? 518 : 224; // the sampler's input (engine: vggt_frame_size)
    const short = Math.max(14, Math.min(side, Math.round((Math.min(w, h) * side) / Math.max(w, h) / 14) * 14));
    const s = await est(d.samplerManifest, Math.min(mode === 'full' ? 128 : 32, state.source?.frameCount ?? Infinity), side, short);
    need.weight_bytes += s.weight_bytes;
    if (mode !== 'uniform') need.activation_bytes = Math.max(need.activation_bytes, s.activation_bytes);
    if (s.largest_buffer_bytes > need.largest_buffer_bytes) Object.assign(need, { largest_buffer_bytes: s.largest_buffer_bytes, largest: s.largest });
  }
  return Object.assign(need, { frames, download_bytes: d.downloadBytes, storage_bytes: d.storageBytes });
}

let checkSeq = 0; // a newer check's card replaces an older one's, never the other way round

/** Capability check before any download: WebGPU, adapter, limits, memory estimate, storage. */
async function checkFor(entry) {
  const seq = ++checkSeq;
  const card = $('capability');
  const show = (verdict, ...nodes) => {
    if (seq !== checkSeq) return;
    card.hidden = false;
    card.className = `card ${verdict}`;
    card.replaceChildren(...nodes);
  };
  show('', 'checking…');
  // A host outside the page's policy would be refused by the browser: ask first (hosts.js).
  const missing = missingHosts(entry);
  if (missing.length) {
    show('cannot', ...hostCard(missing));
    return { verdict: 'cannot', error: Object.assign(new Error(`This page may not connect to ${missing.join(' and ')} yet: allow it in the check above.`), { name: 'HostNotAllowed' }) };
  }
  let d;
  let need;
  try {
    d = await describe(entry);
    need = await estimateNeed(d);
  } catch (e) {
    show('cannot', ...(entry.hub ? errorNodes(e) : [`The model package could not be read: ${e.message}`]));
    return { verdict: 'cannot', error: entry.hub ? e : null };
  }
  const cap = await checkCapabilities(need);
  const words = { ok: 'This browser can run it.', slow: 'This browser can run it, slowly.', doubtful: 'This browser may not manage it.', cannot: 'This browser cannot run it.' };
  const download = d.lines.length ? (d.lines.length > 1 && need.download_bytes ? `Download in all: ${fmtBytes(need.download_bytes)}. ` : '') : `${d.kind ?? 'model'}: download ${fmtBytes(need.download_bytes)}. `;
  show(cap.verdict,
    el('div', { className: 'verdict' }, words[cap.verdict]),
    ...d.lines,
    el('div', {}, `${download}GPU: ${cap.adapter ?? 'none'}${cap.webgpu && cap.adapter ? `, shader-f16 ${cap.f16 ? 'yes' : 'no'}, largest binding ${fmtBytes(cap.limits.maxStorageBufferBindingSize)}` : ''}.`),
    ...cap.notes.map((n) => el('div', { className: 'muted' }, n)),
  );
  return cap;
}

/** Checks the choice again when it (or the frame count) changes; the hub's check reads only
 * metadata. `always`: even when no check is showing yet. */
function recheck({ always = false } = {}) {
  if (!always && $('capability').hidden) return;
  let entry;
  try {
    entry = selectedEntry();
  } catch (e) {
    checkSeq += 1;
    $('capability').hidden = false;
    $('capability').className = 'card cannot';
    $('capability').replaceChildren(...errorNodes(e));
    return;
  }
  checkFor(entry).catch((e) => console.error(e));
}

async function loadModel(entry, { quiet = false } = {}) {
  if (!quiet) {
    const cap = await checkFor(entry);
    if (cap.error) throw cap.error;
    if (cap.verdict === 'cannot') throw Object.assign(new Error('This browser cannot run this model (see the check above).'), { name: 'BadInput' });
  }
  $('load-progress').hidden = false;
  // A hub model is downloaded (and converted when needed) into the cache first; the engine then
  // loads it from there like any package.
  if (entry.hub && !entry.model) {
    // Stopping keeps what is done in the cache: loading again resumes.
    $('load-stop').hidden = false;
    $('load-stop').onclick = () => state.engine.cancelPrepare().catch(() => {});
    try {
      await hub.prepare(entry, ({ fraction, text }) => {
        $('load-bar').value = fraction;
        $('load-text').textContent = text;
      });
    } finally {
      $('load-stop').hidden = true;
    }
  }
  const meter = new DownloadMeter();
  const onProgress = (e) => {
    $('load-bar').value = e.total ? e.done / e.total : 0;
    $('load-text').textContent = meter.text(e);
  };
  // ?maxBinding=BYTES plans for a smaller GPU than this one (work beyond it is refused as out of memory).
  const maxBindingBytes = Number(params.get('maxBinding')) || null;
  const r = await state.engine.load(entry.model, { sampler: entry.sampler, maxBindingBytes, onProgress });
  const kind = (await fetchManifest(entry.model)).kind;
  state.model = { entry, kind, device: r.device, hasSampler: r.hasSampler };
  $('device').textContent = `Loaded ${entry.hub ? `${entry.label} (${kind})` : kind} on ${r.device}.${r.hasSampler ? '' : ' No VGGT package: frames are picked uniformly and there is no 3D view.'}`;
  $('load-text').textContent = `loaded (${$('load-text').textContent})`;
  // The model runs, but could not be kept for next time (a full quota says how much to free).
  if (r.report?.cache_warning) banner(r.report.cache_warning, 'info');
  renderPresets();
  refreshCache();
}

// ---- video -----------------------------------------------------------------------------------

async function takeVideo(file) {
  await releaseVideo();
  state.source?.close?.();
  state.source = null;
  $('video-info').textContent = `opening ${file.name}…`;
  let src;
  try {
    src = await openVideo(file);
  } catch (e) {
    $('video-info').textContent = `${file.name} could not be opened.`;
    throw e;
  }
  state.source = src;
  state.videoName = file.name;
  $('video-info').textContent = `${file.name}: ${src.width}×${src.height}, ${src.frameCount} frame${src.frameCount === 1 ? '' : 's'}, ${src.duration.toFixed(1)} s, ${src.codec} in ${src.container}`;
}

async function releaseVideo() {
  const a = state.analysed;
  state.analysed = null;
  $('see-section').hidden = true;
  if (a?.video && state.engine && !state.engine.dead) await state.engine.release(a.video).catch(() => {});
}

async function encodeFrames(a) {
  stages.start('preprocessing');
  // The context is sized for the longest answer on offer, so changing it later needs no re-encode
  // (the KV cache of 1 024 more tokens is about 37 MB for the 3B model).
  const maxNew = Math.max(...[...$('max-new').options].map((o) => Number(o.value)));
  const video = await state.engine.encode(a.frames, {
    maxNew,
    onProgress: (e) => {
      if (e.stage === 'done') stages.finish();
      else stages.start(e.stage);
    },
  });
  a.video = video;
  a.tokens = video.tokens;
}

/** A session without a video (text-only questions), sized like a video's for the longest answer. */
async function openTextSession(a) {
  const maxNew = Math.max(...[...$('max-new').options].map((o) => Number(o.value)));
  a.video = await state.engine.encode(null, { maxNew });
  a.tokens = 0;
}

async function analyse() {
  if (!state.model) await loadModel(selectedEntry());
  if (!state.source) throw Object.assign(new Error('Choose a video first (drop a file, pick one, or use the sample video).'), { name: 'BadInput' });
  await releaseVideo();
  stages.reset();
  const a = await guarded(() => chooseFrames({
    engine: state.engine, source: state.source, wanted: Number($('frames').value), mode: $('sampling').value,
    hasSampler: state.model.hasSampler, stage: (name, detail) => (stages.current?.name === name ? stages.note(detail ?? '') : stages.start(name, detail)),
  }));
  showSeen(a);
  await guarded(() => encodeFrames(a));
  stages.finish();
  state.analysed = a;
  $('video-info').textContent += ` · ${a.frames.count} frame${a.frames.count === 1 ? '' : 's'} encoded into ${a.tokens} visual tokens`;
}

async function showSeen(a) {
  $('see-section').hidden = false;
  showThumbnails($('thumbs'), a.frames, a.times, (i, fig) => {
    for (const f of $('thumbs').children) f.classList.toggle('hl', f === fig && !fig.classList.contains('hl'));
    state.view?.highlightFrame(fig.classList.contains('hl') && a.sample ? a.sample.selected[i] : null);
  });
  const canvas = $('view3d');
  if (!a.sample) {
    canvas.hidden = true;
    $('view-note').textContent = 'No 3D view: it comes from space-aware sampling, which needs a VGGT package and a video of more than one frame.';
    return;
  }
  canvas.hidden = false;
  try {
    if (!state.view) {
      const { PointCloudView } = await import('./view3d/view3d.js');
      state.view = await PointCloudView.create(canvas, { onError: (e) => banner(`3D view: ${e.message ?? e}`) });
    }
    const s = a.sample;
    state.view.setScene({ points: s.points, colors: s.colors, pointFrame: s.point_frame, cameras: s.cameras, selected: Array.from(s.selected) });
    window.__viewRendered = true;
  } catch (e) {
    $('view-note').textContent = `The 3D view could not start: ${e.message}`;
  }
}

// ---- asking ----------------------------------------------------------------------------------

async function ask() {
  const question = $('question').value.trim();
  if (!question) throw Object.assign(new Error('Type a question, or pick one of the question types above.'), { name: 'BadInput' });
  if (!state.analysed) {
    // A loaded model and no video: a text-only question (the prompt has no visual block).
    if (state.model && !state.source) {
      const a = { textOnly: true };
      await guarded(() => openTextSession(a));
      state.analysed = a;
    } else await analyse();
  }
  const entry = logEntry($('log'), question);
  state.asking = true;
  state.stopRequested = false;
  setButtons();
  try {
    const r = await guarded(async () => {
      entry.answer.textContent = '';
      stages.start('prefill');
      const t0 = performance.now();
      let first = null;
      let pieces = 0;
      state.stopper = new AbortController();
      const answer = state.engine.ask(question, { video: state.analysed.video, maxNew: Number($('max-new').value), signal: state.stopper.signal });
      try {
        for await (const piece of answer) {
          if (first === null) { first = performance.now(); stages.start('answer'); }
          pieces += 1;
          entry.answer.textContent += piece;
          const secs = (performance.now() - first) / 1000;
          $('gen-stats').textContent = secs > 0 ? `${(pieces / secs).toFixed(1)} pieces/s` : '';
        }
      } catch (e) {
        if (e.name !== 'AbortError') throw e; // Stop: the reply so far is the answer
      }
      const out = await answer.result;
      stages.finish();
      out.ms = performance.now() - t0;
      return out;
    });
    entry.answer.textContent = r.text;
    if (state.stopRequested) entry.answer.classList.add('stopped');
    const s = r.stats;
    const tps = s.decode_ms > 0 ? (s.new_tokens / (s.decode_ms / 1000)).toFixed(1) : '–';
    entry.stats.textContent = `${s.prompt_tokens} prompt tokens (${s.prefilled_tokens} prefilled in ${(s.prefill_ms / 1000).toFixed(1)} s, the rest reused from the ${state.analysed?.textOnly ? "conversation's" : "video's"} cache); ${s.new_tokens} tokens at ${tps} tok/s`;
    $('gen-stats').textContent = `${tps} tok/s`;
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
  const box = $('presets');
  box.replaceChildren(...PRESETS.map((p) => {
    const b = el('button', { type: 'button', title: p.type }, p.label);
    b.onclick = () => { $('question').value = presetText(p, state.model?.kind); $('question').focus(); };
    return b;
  }));
}

// ---- cache panel -----------------------------------------------------------------------------

async function refreshCache() {
  const body = $('cache-table').querySelector('tbody');
  try {
    const pkgs = await listCachedPackages();
    body.replaceChildren(...pkgs.map((p) => {
      const del = el('button', { type: 'button' }, 'Delete');
      del.onclick = async () => { await deleteCachedPackage(p.base); hub?.cacheChanged(); refreshCache(); recheck(); };
      const name = p.hub
        ? el('td', { title: p.base }, p.hub.repo, el('span', { className: 'muted' }, ` · commit ${p.hub.commit.slice(0, 10)}${p.hub.endpoint === HUB_DEFAULT ? '' : ` · ${p.hub.endpoint}`}`))
        : el('td', {}, p.base);
      return el('tr', {}, name, el('td', {}, fmtBytes(p.bytes)), el('td', {}, p.complete ? 'complete' : `partial (${p.files} files)`), el('td', {}, del));
    }));
    $('cache-total').textContent = `(${pkgs.length}, ${fmtBytes(pkgs.reduce((a, p) => a + p.bytes, 0))})`;
    const s = await storageSummary();
    $('storage').textContent = s ? `This site uses ${fmtBytes(s.usage)} of ${fmtBytes(s.quota)}${s.persisted ? ' (persistent)' : ''}.` : '';
  } catch (e) {
    $('storage').textContent = `The cache cannot be read: ${e.message}`;
  }
}

// ---- wiring ----------------------------------------------------------------------------------

function wire() {
  const showChoice = () => {
    $('custom-urls').hidden = modelChoice() !== 'custom';
    $('hub-panel').hidden = modelChoice() !== 'hub';
  };
  const saved = document.querySelector(`input[name=model][value="${CSS.escape(localStorage.getItem('model-choice') ?? 'demo')}"]`);
  if (saved) saved.checked = true;
  showChoice();
  for (const r of document.querySelectorAll('input[name=model]')) {
    r.onchange = () => {
      showChoice();
      localStorage.setItem('model-choice', modelChoice());
      recheck({ always: modelChoice() === 'hub' });
    };
  }
  hub = new HubChooser({ engine: () => state.engine, onChange: () => modelChoice() === 'hub' && recheck({ always: true }) });
  $('model-url').value = localStorage.getItem('model-url') ?? '';
  $('sampler-url').value = localStorage.getItem('sampler-url') ?? '';
  $('check').onclick = () => busy(async () => { await checkFor(selectedEntry()); });
  $('load').onclick = () => busy(() => loadModel(selectedEntry()));
  $('analyse').onclick = () => busy(analyse);
  $('ask').onclick = () => busy(ask);
  $('stop').onclick = () => {
    state.stopRequested = true;
    state.stopper?.abort();
  };
  $('question').onkeydown = (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('ask').click(); };
  $('file').onchange = () => $('file').files[0] && busy(() => takeVideo($('file').files[0]));
  $('sample').onclick = () => busy(async () => {
    const res = await fetch('samples/room.webm');
    if (!res.ok) throw new Error(`the sample video is missing (HTTP ${res.status})`);
    await takeVideo(new File([await res.blob()], 'room.webm', { type: 'video/webm' }));
  });
  const drop = $('drop');
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) busy(() => takeVideo(f));
  };
  for (const id of ['frames', 'sampling']) {
    $(id).onchange = () => {
      if (state.analysed) busy(releaseVideo);
      recheck(); // the memory needed depends on both
    };
  }
  $('view-reset').onclick = () => state.view?.resetView();
  $('cache-refresh').onclick = refreshCache;
  $('cache-clear').onclick = async () => { await caches.delete(PACKAGE_CACHE); hub?.cacheChanged(); refreshCache(); recheck(); };
  $('cache-panel').ontoggle = () => $('cache-panel').open && refreshCache();
  document.addEventListener('visibilitychange', () => {
    if (document.hidden && state.busy) state.hiddenAt = performance.now();
    else if (!document.hidden && state.hiddenAt !== null) {
      const secs = ((performance.now() - state.hiddenAt) / 1000).toFixed(0);
      state.hiddenAt = null;
      banner(`This tab was in the background for ${secs} s while the model worked. Browsers slow down background tabs; the work carried on and nothing was lost.`, 'info');
    }
  });
  const online = () => { $('offline-state').textContent = navigator.onLine ? '' : 'Offline: the app and the models in your cache still work.'; };
  addEventListener('online', online);
  addEventListener('offline', online);
  online();
}

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || params.has('nosw')) return;
  try {
    const reg = await navigator.serviceWorker.register('./sw.js');
    await navigator.serviceWorker.ready;
    $('sw-state').textContent = 'works offline';
    window.__swReady = !!reg.active;
  } catch (e) {
    $('sw-state').textContent = `offline use unavailable (${e.message})`;
  }
}

async function main() {
  wire();
  renderPresets();
  setButtons();
  if (!navigator.gpu) {
    banner('This browser has no WebGPU, which the model needs. Use a recent Chrome or Edge (113+), Safari 26+, or Firefox 141+ on Windows. You can still look around; nothing will run.');
  }
  startEngine();
  registerServiceWorker();
  wireHostsPanel().catch((e) => console.error(e));
  refreshCache();
  if (modelChoice() === 'hub') recheck({ always: true }); // what the remembered choice needs, at once
  // The handle the end-to-end test drives (and a console user can inspect).
  window.app = {
    state,
    loseDevice: () => state.engine.loseDevice(),
    crashWorker: () => state.engine.crash(),
  };
}
main();
