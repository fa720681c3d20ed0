// The panel's side of the tab it asks about: the content script (content.js) injected into the tab,
// a port to it, and the two routes by which frames come out of a page's <video>:
//   1. "file": the video's own source URL fetched by the panel (a plain file it may read) and
//      decoded with the app's WebCodecs pipeline (app/video/video.js), exactly as a dropped file;
//   2. "element": the element drawn at sought times by the content script (same-origin or
//      CORS-clean videos, Media Source included), the user's position, speed and paused state
//      restored afterwards.
// A live stream (no duration) is taken as it plays, from now for a chosen time (LiveSource).
// All give a source with the app's VideoSource interface (frameCount, width, height, duration,
// decodeFrames(indices, {maxSide, onProgress})), so the app's frame choice (app/pipeline.js) runs
// unchanged on either.
import { openVideo } from './app/video/video.js';
import { outputSize } from './app/video/rgba.js';
import { fmtBytes } from './app/models.js';

/** A tab's content script over a port; `call(op, args)` resolves to the script's answer. */
export class PageLink {
  #port;
  #pending = new Map();
  #next = 1;
  constructor(tabId) {
    this.tabId = tabId;
  }

  async open() {
    await chrome.scripting.executeScript({ target: { tabId: this.tabId }, files: ['content.js'] });
    this.#port = chrome.tabs.connect(this.tabId, { name: 'spatial-mllm' });
    this.#port.onMessage.addListener(({ id, ok, result, name, message }) => {
      const p = this.#pending.get(id);
      if (!p) return;
      this.#pending.delete(id);
      if (ok) p.resolve(result);
      else p.reject(Object.assign(new Error(message), { name }));
    });
    this.#port.onDisconnect.addListener(() => {
      this.#port = null;
      for (const p of this.#pending.values()) p.reject(Object.assign(new Error('the page went away (it was closed, reloaded or navigated)'), { name: 'PageGone' }));
      this.#pending.clear();
    });
  }

  call(op, args = {}) {
    if (!this.#port) return Promise.reject(Object.assign(new Error('the page went away (it was closed, reloaded or navigated)'), { name: 'PageGone' }));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#port.postMessage({ id, op, args });
    });
  }

  close() {
    this.#port?.disconnect();
    this.#port = null;
  }
}

const fail = (name, message) => Object.assign(new Error(message), { name });

/** Frames of a <video> on the page by seeking and drawing it (route 2). Frame numbers index a grid
 * of GRID_FPS over the duration (the element does not tell its frame rate); frame i is the picture
 * on show at the middle of its grid slot, and its time is that moment, in seconds from the
 * element's first frame (`info.start`). */
export class ElementSource {
  static GRID_FPS = 30;
  constructor(link, info) {
    this.link = link;
    this.index = info.index;
    this.width = info.width;
    this.height = info.height;
    this.start = info.start ?? 0;
    this.duration = info.duration - this.start;
    this.frameCount = Math.max(1, Math.round(info.duration * ElementSource.GRID_FPS));
    this.fps = ElementSource.GRID_FPS;
    this.codec = 'as the page plays it';
    this.container = info.mse ? 'Media Source' : 'element';
    this.debug = { seeks: 0 };
  }

  frameTimes() {
    return Array.from({ length: this.frameCount }, (_, i) => i / this.fps);
  }

  /** Seek time for grid frame i: the middle of its slot, inside the video. */
  seekTime(i) {
    return Math.min((i + 0.5) / this.fps, Math.max(0, this.duration - 0.5 / this.fps));
  }

  /** The element's own time for grid frame i. */
  elementTime(i) {
    return this.start + this.seekTime(i);
  }

  async decodeFrames(indices, { maxSide, onProgress, signal } = {}) {
    const { width, height } = outputSize(this.width, this.height, maxSide);
    const size = width * height * 4;
    const rgba = new Uint8Array(indices.length * size);
    const times = [];
    await this.link.call('begin', { index: this.index });
    try {
      const got = new Map();
      for (const [k, i] of indices.entries()) {
        signal?.throwIfAborted();
        let f = got.get(i);
        if (!f) {
          f = await this.link.call('grab', { index: this.index, time: this.elementTime(i), width, height });
          f.time = this.seekTime(i);
          this.debug.seeks++;
          got.set(i, f);
          onProgress?.(got.size, new Set(indices).size);
        }
        const bytes = Uint8Array.from(atob(f.rgba), (c) => c.charCodeAt(0));
        if (bytes.length !== size) throw fail('CorruptVideo', `the page gave a frame of ${bytes.length} bytes, not ${size}`);
        rgba.set(bytes, k * size);
        times.push(f.time);
      }
    } finally {
      this.restored = await this.link.call('restore', { index: this.index }).catch(() => null);
    }
    return { rgba, width, height, times };
  }

  close() {}
}

/** Frames of a live stream (no duration) taken as it plays, from now for `seconds` (the user's
 * choice): frame i of the GRID_FPS grid is the frame on show i / GRID_FPS s after capture starts.
 * Nothing is sought or paused, so there is nothing to restore. */
export class LiveSource {
  constructor(link, info, seconds) {
    this.link = link;
    this.index = info.index;
    this.width = info.width;
    this.height = info.height;
    this.duration = seconds;
    this.fps = ElementSource.GRID_FPS;
    this.frameCount = Math.max(1, Math.round(seconds * this.fps));
    this.codec = 'as the page plays it';
    this.container = 'live stream';
  }

  frameTimes() {
    return Array.from({ length: this.frameCount }, (_, i) => i / this.fps);
  }

  async decodeFrames(indices, { maxSide, onProgress, signal } = {}) {
    const { width, height } = outputSize(this.width, this.height, maxSide);
    const size = width * height * 4;
    const rgba = new Uint8Array(indices.length * size);
    const wanted = [...new Set(indices)].sort((a, b) => a - b);
    const got = new Map();
    const t0 = performance.now();
    for (const i of wanted) {
      signal?.throwIfAborted();
      const wait = t0 + (i / this.fps) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const f = await this.link.call('grabNow', { index: this.index, width, height });
      got.set(i, { bytes: Uint8Array.from(atob(f.rgba), (c) => c.charCodeAt(0)), time: (performance.now() - t0) / 1000 });
      onProgress?.(got.size, wanted.length);
    }
    indices.forEach((i, k) => rgba.set(got.get(i).bytes, k * size));
    return { rgba, width, height, times: indices.map((i) => got.get(i).time) };
  }

  close() {}
}

/** The route for a listed video: {route: 'file'|'element', source, why} or throws a named error
 * saying why it cannot be read. Route 1 is tried first: the source URL fetched and opened by the
 * app's video pipeline; then route 2. */
export async function openPageVideo(link, info, { signal, liveSeconds = 10 } = {}) {
  if (info.drm) throw fail('DrmProtected', 'This video is DRM-protected (Encrypted Media Extensions): the browser does not let any extension read its pictures, so it cannot be asked about.');
  if (info.duration === 'live') {
    if (!info.readable) throw fail('Unreadable', `This live stream cannot be read: ${info.unreadableWhy || 'its pictures cannot be drawn'}. (Capturing the tab while it plays is not supported yet.)`);
    if (info.paused) throw fail('LiveStream', `This is a live stream without a duration, and it is paused: play it, then analyse again. Its frames are taken as it plays, from then on for the time chosen (${liveSeconds} s).`);
    return { route: 'live', source: new LiveSource(link, info, liveSeconds), why: `it is a live stream without a duration: its frames are taken as it plays, from now for ${liveSeconds} s (the time chosen under "Live streams")` };
  }
  if (!info.width || info.duration == null) throw fail('NotReady', 'This video has not loaded yet: start playing it for a moment, then press "Look again".');
  let why1 = '';
  if (/^https?:|^file:/.test(info.src)) {
    try {
      const res = await fetch(info.src, { signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const blob = await res.blob();
      const source = await openVideo(blob);
      return { route: 'file', source, bytes: blob.size, why: `the video is a plain file (${info.src.split('/').pop().slice(0, 60)}, ${fmtBytes(blob.size)}) the extension may read: it was fetched and its frames are decoded with WebCodecs, exactly as a file dropped into the app` };
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      why1 = `its file could not be read by the extension (${e.message})`;
    }
  } else {
    why1 = info.mse ? 'it is fed by Media Source (there is no file to fetch)' : 'it has no file address';
  }
  if (!info.readable) {
    throw fail('Unreadable', `This video cannot be read: ${why1}, and ${info.unreadableWhy || 'its pictures cannot be drawn'}. (Capturing the tab while it plays is not supported yet.)`);
  }
  return { route: 'element', source: new ElementSource(link, info), why: `${why1}; the page's video element is drawn at each chosen time instead (your position, speed and pause are restored afterwards)` };
}
