// The extension's side panel: the app's asking UI (app/ask-ui.js and its markup,
// app/ask-ui-view.js: model choice and capability check, cache list, question presets, streamed
// answer with Stop, stage progress, thumbnails, the 3D view) on a video of the page in the current
// tab. What is the extension's own is here: the page's video list, the capture routes (routes.js,
// page.js, tab-capture.js), the settings kept in chrome.storage, and the engine's placement: the app's engine facade runs
// in the extension's offscreen document (remote-engine.js, offscreen.js), which outlives the
// panel, keeps the model and the last encoded video for a reopened panel, and stops this panel's
// work when it closes.
import { mountAskUI } from './app/ask-ui-view.js';
import { AskUI } from './app/ask-ui.js';
import { chooseFrames } from './app/pipeline.js';
import { $, el, banner } from './app/ui.js';
import { linkFrames } from './page.js';
import { openPageVideo } from './routes.js';
import { TabSource } from './tab-capture.js';
import { RemoteEngine } from './remote-engine.js';
import { hubSettings, HUB_DEFAULT } from './app/models.js';
import { HF_HOSTS, originPattern, askHost } from './hosts.js';

const liveSeconds = el('label', {}, 'Live streams: capture the next ',
  el('select', { id: 'live-seconds' }, ...['5', '10', '30', '60'].map((v) => el('option', { selected: v === '10' }, v))), ' s');
mountAskUI({ keptIn: "in the extension's storage", extraSettings: [liveSeconds] });
const params = new URLSearchParams(location.search);
const state = {
  engine: null, model: null, tabId: null, link: null, links: new Map(), page: null, picked: null,
  opened: null, // {route, source, why}
  analysed: null, busy: false, asking: false, stopper: null, view: null,
};
const ui = new AskUI({
  state,
  videoSize: () => state.picked,
  prepareAsk: () => analyse(),
  busyButtons: ['rescan'],
  owner: 'The extension',
  remember: (key, value) => chrome.storage.local.set({ [key]: value }),
});
const { stages } = ui;
const busy = (step) => ui.busy(step);

function startEngine() {
  // The offscreen document's engine lost (its worker crashed, the GPU device was lost, or it was
  // freed after idling): a new one; the next step loads the model again (from the cache).
  state.engine = new RemoteEngine({
    idleMs: Number(params.get('idle')) || undefined,
    onCrash: (msg) => {
      state.model = null;
      state.analysed = null;
      banner(`${msg}. The engine was restarted: the next step loads the model again (from the cache).`, 'info');
      startEngine();
    },
  });
}

/** Hub models need the hub's hosts: asked for when the user loads one (optional host permissions):
 * the Hugging Face hosts, or the origin of the hub address set under Advanced (a mirror). */
async function hubPermission() {
  const { endpoint } = hubSettings();
  const origins = endpoint === HUB_DEFAULT ? HF_HOSTS : [originPattern(endpoint)];
  if (await chrome.permissions.contains({ origins })) return;
  const granted = await chrome.permissions.request({ origins }).catch(() => false);
  if (!granted) banner(`Without access to ${new URL(endpoint).host} the extension cannot download the model (the files themselves may still download if the hub allows it).`, 'info');
}

// ---- the page's videos ----------------------------------------------------------------------

let fixedTab = params.has('tab') ? Number(params.get('tab')) : null; // panel.html?tab=ID: a panel opened on one tab (the tests)

async function targetTab() {
  if (fixedTab !== null) return fixedTab;
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab?.id ?? null;
}

/** The link to the frame holding a listed video (the top frame's, or a cross-origin frame's). */
const linkFor = (v) => state.links.get(v?.frameId ?? 0);

async function scan() {
  for (const l of state.links.values()) l.close();
  state.links = new Map();
  state.link = null;
  state.page = null;
  state.picked = null;
  $('video-list').replaceChildren();
  $('frames-blocked').replaceChildren();
  state.tabId = await targetTab();
  if (state.tabId == null) { $('page-info').textContent = 'No tab to look at.'; return; }
  let frames;
  try {
    frames = await linkFrames(state.tabId);
  } catch (e) {
    $('page-info').textContent = /permission|Cannot access/i.test(e.message)
      ? 'The extension may not look at this tab yet: click its toolbar button while this tab is showing.'
      : `This page cannot be read by extensions (${e.message}). Browser pages and the web store are closed to them.`;
    return;
  }
  state.links = new Map(frames.map((f) => [f.frameId, f.link]));
  state.link = state.links.get(0);
  const page = await listFrames(frames);
  state.page = page;
  showBlocked(page.blocked);
  if (!page.videos.length) {
    $('page-info').textContent = page.blocked.length
      ? 'No video the extension may see on this page (see the frames below).'
      : 'There is no video on this page. Open a page with a video (or start the video), then press "Look again".';
    return;
  }
  $('page-info').textContent = `${page.videos.length} video${page.videos.length > 1 ? 's' : ''} on ${page.title || page.url}: pick one.`;
  $('video-list').replaceChildren(...page.videos.map((v, k) => {
    const input = el('input', { type: 'radio', name: 'video', value: String(k) });
    input.onchange = () => { state.picked = v; releaseVideo(); };
    const dur = v.duration === 'live' ? 'live' : v.duration == null ? 'unknown length' : `${v.duration.toFixed(1)} s`;
    const where = v.frameId ? `, in a frame from ${v.frameOrigin}` : v.inFrame ? ', in a frame of the page' : '';
    const facts = `${v.width}×${v.height}, ${dur}, ${v.paused ? 'paused' : 'playing'} at ${v.currentTime.toFixed(1)} s${v.mse ? ', Media Source' : ''}${where}`;
    const thumb = v.thumbnail ? el('img', { src: v.thumbnail, alt: `video ${k + 1}` }) : el('span', { className: 'nothumb' });
    const note = v.readable ? null : el('div', { className: 'unreadable' }, v.drm ? 'DRM-protected: cannot be read' : v.unreadableWhy);
    return el('label', { className: 'video' }, input, thumb, el('div', {}, el('div', {}, `Video ${k + 1}`), el('div', { className: 'muted' }, facts), note));
  }));
  const first = $('video-list').querySelector('input');
  if (page.videos.length === 1) { first.checked = true; state.picked = page.videos[0]; }
}

/** Every reached frame's videos in one list (the top frame's first), each marked with its frame;
 * `blocked`: the origins of cross-origin frames the extension may not reach (no host access). */
async function listFrames(frames) {
  // A frame that went away meanwhile is left out; the top frame's failure is the scan's.
  const lists = await Promise.all(frames.map(async (f) => ({ f, list: await f.link.call('list').catch((e) => { if (!f.frameId) throw e; return null; }) })));
  const top = lists[0].list;
  const videos = lists.filter((x) => x.list).flatMap(({ f, list }) => list.videos.map((v) => ({
    ...v, frameId: f.frameId, frameOrigin: list.frame.origin, frameHref: list.frame.href, inFrame: v.inFrame || f.frameId !== 0,
  })));
  const reached = new Set(frames.map((f) => f.origin));
  const blocked = [...new Set(lists.flatMap((x) => x.list?.crossFrames ?? []).map((c) => c.origin))].filter((o) => !reached.has(o));
  return { url: top.url, title: top.title, videos, blocked };
}

/** Frames from other origins the extension has no access to: their videos cannot be listed. The
 * user may grant access to that origin (a permission request, inside this click), then the page is
 * looked at again. */
function showBlocked(origins) {
  $('frames-blocked').replaceChildren(...origins.map((origin) => {
    const ask = el('button', { type: 'button' }, `Allow access to ${origin}`);
    ask.onclick = async () => {
      if (await askHost(origin)) busy(async () => { await releaseVideo(); await scan(); });
      else banner(`Access to ${origin} was not granted: a video in its frame cannot be listed. Open the frame's video in a tab of its own to ask about it there.`, 'info');
    };
    const card = el('div', { className: 'card blocked-frame' },
      el('div', {}, `This page has a frame from ${origin}, which the extension may not look into: a video in it is not listed.`),
      el('div', { className: 'muted' }, 'Allowing access lists its videos (asked once for that site). Capturing the tab cannot stand in: without access nothing can seek or find that video.'),
      ask);
    card.dataset.origin = origin;
    return card;
  }));
}

async function releaseVideo() {
  state.opened?.source.close();
  state.opened = null;
  $('route').hidden = true;
  await ui.releaseVideo();
}

function showRoute(opened, wanted) {
  const { route, source } = opened;
  const name = { file: 'Route: the video\'s file, decoded here', element: 'Route: drawing the page\'s video at chosen times', tab: 'Route: capturing the tab\'s picture at chosen times', live: 'Route: the live stream as it plays' }[route];
  const perFrame = { file: 0.05, element: 0.25, tab: TabSource.SECONDS_PER_FRAME }[route];
  const secs = route === 'live' ? source.duration : Math.max(1, Math.round(wanted * perFrame));
  $('route').hidden = false;
  $('route').dataset.route = route;
  $('route').replaceChildren(el('strong', {}, name), el('div', {}, `Why: ${opened.why}.`),
    el('div', { className: 'muted' }, route === 'live' ? `Taking ${wanted} frames over the next ${secs} s.` : `Taking ${wanted} frames of a ${source.duration.toFixed(1)} s video should take about ${secs} s.`));
}

/** A video no script may read (another site's, without CORS) can only be captured from the tab:
 * the optional "tabCapture" permission is asked for here, at once, inside the click on Analyse
 * (a permission request needs the user's gesture); once granted it is not asked again. */
function askTabCapture(v) {
  if (!v || v.readable || v.drm || v.duration === 'live') return Promise.resolve(false);
  return chrome.permissions.request({ permissions: ['tabCapture'] }).catch(() => chrome.permissions.contains({ permissions: ['tabCapture'] }));
}

async function analyse() {
  const capture = askTabCapture(state.picked);
  if (!state.picked) throw Object.assign(new Error(state.page?.videos.length ? 'Pick a video first.' : 'There is no video on this page.'), { name: 'BadInput' });
  await releaseVideo();
  stages.reset();
  // The route first: a video that cannot be read is said so before any model is loaded.
  stages.start('finding the video');
  state.opened = await openPageVideo(linkFor(state.picked), state.picked, { liveSeconds: Number($('live-seconds').value), tabId: state.tabId, canCapture: await capture, top: state.link, fileMaxBytes: Number(params.get('fileMax')) || undefined });
  const wanted = Number($('frames').value);
  showRoute(state.opened, wanted);
  stages.finish();
  if (!state.model) await ui.loadModel(ui.selectedEntry());
  const source = state.opened.source;
  const a = await chooseFrames({
    engine: state.engine, source, wanted, mode: $('sampling').value, hasSampler: state.model.hasSampler,
    stage: (name, detail) => (stages.current?.name === name ? stages.note(detail ?? '') : stages.start(name, detail)),
  });
  a.restored = source.restored ?? null;
  a.route = state.opened.route;
  ui.showSeen(a);
  // The same page, video and chosen frames as an encoding the engine kept (a reopened panel): it
  // is handed back instead of encoded again. Live streams change as they play: never reused.
  const v = state.picked;
  const key = a.route === 'live' ? undefined : JSON.stringify([state.page.url, v.frameHref, v.src, v.duration, a.times.map((t) => Math.round(t * 1e4)), a.frames.count, a.frames.width, a.frames.height]);
  await ui.encodeFrames(a, { key });
  stages.finish();
  state.analysed = a;
  const short = a.frames.count < wanted ? ` The video is too short for ${wanted} frames: ${a.frames.count} ${a.frames.count === 1 ? 'was' : 'were'} used.` : '';
  const kept = a.video.reused ? ' (the encoding kept from before was reused)' : '';
  $('video-info').textContent = `${a.frames.count} frame${a.frames.count === 1 ? '' : 's'} of ${a.frames.width}×${a.frames.height} encoded into ${a.tokens} visual tokens${kept}.${short}`;
}

// ---- wiring ----------------------------------------------------------------------------------

async function main() {
  const settings = await chrome.storage.local.get(['model-choice', 'frames', 'sampling', 'live-seconds']);
  // A remembered choice the list no longer offers (an older version's) leaves the default.
  for (const id of ['frames', 'sampling', 'live-seconds']) if ([...$(id).options].some((o) => o.value === settings[id])) $(id).value = settings[id];
  startEngine();
  ui.wire({
    choice: settings['model-choice'] ?? 'demo',
    beforeLoad: async (choice) => { if (choice === 'hub') await hubPermission(); },
    onSettings: (id) => chrome.storage.local.set({ [id]: $(id).value }),
  });
  $('analyse').onclick = () => busy(analyse);
  $('rescan').onclick = () => busy(async () => { await releaseVideo(); await scan(); });
  $('live-seconds').onchange = () => { chrome.storage.local.set({ 'live-seconds': $('live-seconds').value }); if (state.analysed) busy(releaseVideo); };
  // The side panel follows the window's active tab.
  if (!params.has('tab')) {
    const look = () => { if (!state.busy) busy(async () => { await releaseVideo(); await scan(); }); };
    chrome.tabs.onActivated.addListener(look);
    // The toolbar button clicked on a tab (the service worker says which): activeTab now covers it.
    chrome.runtime.onMessage.addListener((m) => { if (m?.type === 'invoked') look(); });
    chrome.tabs.onUpdated.addListener((id, change) => { if (id === state.tabId && change.status === 'complete') look(); });
  }
  if (!navigator.gpu) banner('This browser has no WebGPU, which the model needs (Chrome or Edge 113+).');
  ui.refreshCache();
  // A closed panel stops its answer and closes its link to the page (whose content script then
  // restores a video it was seeking); the engine document stops this panel's work when its port
  // disconnects, and keeps the model and the last encoding for a reopened panel.
  addEventListener('pagehide', () => {
    state.stopper?.abort();
    state.engine?.dispose();
    for (const l of state.links.values()) l.close();
  });
  state.engine.status().then((s) => {
    $('engine-state').textContent = s.model
      ? `The model loaded earlier is still in memory${s.kept ? ', with the last video\'s encoding' : ''}: the same video is answered without encoding it again.`
      : '';
  }).catch(() => {});
  await busy(scan);
  // The handle the browser test drives; useTab: look at another tab (as switching tabs does).
  window.panel = { state, ui, useTab: (id) => { fixedTab = id; return busy(async () => { await releaseVideo(); await scan(); }); } };
}
main();
