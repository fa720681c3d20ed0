// The app: load a model into the engine worker, take a video, pick and encode its frames once, and
// answer questions about it with the reply streaming in. Failures keep what the user has: a lost
// GPU device or a crashed worker restarts the engine, reloads the model from the cache, encodes
// the same frames again and retries the interrupted step once. The engine is used only through its
// facade (engine/engine.js). The asking UI itself (model, check, cache, presets, answer, thumbnails,
// 3D view) is ask-ui.js, shared with the browser extension; this file is what only the app has:
// a dropped or chosen file, the text-only session, recovery, offline use.
import { createEngine } from './engine/engine.js';
import { mountAskUI } from './ask-ui-view.js';
import { AskUI, explain } from './ask-ui.js';
import { chooseFrames } from './pipeline.js';
import { $, banner } from './ui.js';
import { openVideo } from './video/video.js';
import { missingHosts, hostCard, wireHostsPanel } from './hosts.js';

mountAskUI({ custom: true });
$('model-section').append($('hosts-panel')); // the app's own part, after the shared one
const params = new URLSearchParams(location.search);
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
const ui = new AskUI({
  state,
  guarded: (step) => guarded(step),
  videoSize: () => state.source,
  // A loaded model and no video: a text-only question (the prompt has no visual block).
  prepareAsk: async () => {
    if (state.model && !state.source) {
      const a = { textOnly: true };
      await guarded(() => openTextSession(a));
      state.analysed = a;
    } else await analyse();
  },
  busyButtons: ['sample'],
  // A host outside the page's policy would be refused by the browser: ask first (hosts.js).
  blockedHosts: (entry) => {
    const missing = missingHosts(entry);
    if (!missing.length) return null;
    const error = Object.assign(new Error(`This page may not connect to ${missing.join(' and ')} yet: allow it in the check above.`), { name: 'HostNotAllowed' });
    return { nodes: hostCard(missing), error };
  },
  // ?maxBinding=BYTES plans for a smaller GPU than this one (work beyond it is refused as out of memory).
  maxBindingBytes: Number(params.get('maxBinding')) || null,
  remember: (key, value) => localStorage.setItem(key, value),
});
const { stages } = ui;
const busy = (step) => ui.busy(step);

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
    if (state.model) await ui.loadModel(state.model.entry, { quiet: true });
    if (state.analysed) await (state.analysed.textOnly ? openTextSession(state.analysed) : ui.encodeFrames(state.analysed));
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

// ---- video -----------------------------------------------------------------------------------

async function takeVideo(file) {
  await ui.releaseVideo();
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

/** A session without a video (text-only questions), sized like a video's for the longest answer. */
async function openTextSession(a) {
  a.video = await state.engine.encode(null, { maxNew: ui.maxNewOnOffer() });
  a.tokens = 0;
}

async function analyse() {
  if (!state.model) await ui.loadModel(ui.selectedEntry());
  if (!state.source) throw Object.assign(new Error('Choose a video first (drop a file, pick one, or use the sample video).'), { name: 'BadInput' });
  await ui.releaseVideo();
  stages.reset();
  const a = await guarded(() => chooseFrames({
    engine: state.engine, source: state.source, wanted: Number($('frames').value), mode: $('sampling').value,
    hasSampler: state.model.hasSampler, stage: (name, detail) => (stages.current?.name === name ? stages.note(detail ?? '') : stages.start(name, detail)),
  }));
  ui.showSeen(a);
  await guarded(() => ui.encodeFrames(a));
  stages.finish();
  state.analysed = a;
  $('video-info').textContent += ` · ${a.frames.count} frame${a.frames.count === 1 ? '' : 's'} encoded into ${a.tokens} visual tokens`;
}

// ---- wiring ----------------------------------------------------------------------------------

function wire() {
  ui.wire({ choice: localStorage.getItem('model-choice') ?? 'demo' });
  $('model-url').value = localStorage.getItem('model-url') ?? '';
  $('sampler-url').value = localStorage.getItem('sampler-url') ?? '';
  $('analyse').onclick = () => busy(analyse);
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
  if (!navigator.gpu) {
    banner('This browser has no WebGPU, which the model needs. Use a recent Chrome or Edge (113+), Safari 26+, or Firefox 141+ on Windows. You can still look around; nothing will run.');
  }
  startEngine();
  registerServiceWorker();
  wireHostsPanel().catch((e) => console.error(e));
  ui.refreshCache();
  if (ui.modelChoice() === 'hub') ui.recheck({ always: true }); // what the remembered choice needs, at once
  // The handle the end-to-end test drives (and a console user can inspect).
  window.app = {
    state,
    loseDevice: () => state.engine.loseDevice(),
    crashWorker: () => state.engine.crash(),
  };
}
main();
