// The panel's side of the tab it asks about: the content script (content.js) injected into every
// frame of the tab the extension may reach (linkFrames), a port to each frame that answers for its
// videos (PageLink), and the sources that take frames from a page's <video> through it
// (routes.js picks the route; the file route is the app's own video pipeline):
//   - ElementSource, route 2: the element drawn at sought times by the content script (same-origin
//     or CORS-clean videos, Media Source included), the user's position, speed and paused state
//     restored afterwards; tab-capture.js's TabSource (route 3) extends it;
//   - LiveSource: a live stream (no duration) taken as it plays, from now for a chosen time.
// All have the app's VideoSource interface (frameCount, width, height, duration,
// decodeFrames(indices, {maxSide, onProgress})), so the app's frame choice (app/pipeline.js) runs
// unchanged on any of them.
import { outputSize } from './app/video/rgba.js';

/** The content script injected into every frame of the tab that the extension may reach, and a
 * link to each frame that answers for its videos (the top frame, first, and cross-origin frames:
 * see content.js). Throws when the top frame may not be reached. */
export async function linkFrames(tabId) {
  const injected = await chrome.scripting.executeScript({ target: { tabId, allFrames: true }, files: ['content.js'] });
  const roots = injected.filter((r) => r.result?.root).sort((a, b) => a.frameId - b.frameId);
  if (roots[0]?.frameId !== 0) throw new Error('Cannot access the top frame of this tab');
  return roots.map((r) => ({ frameId: r.frameId, href: r.result.href, origin: r.result.origin, link: new PageLink(tabId, r.frameId).connect() }));
}

/** One frame's content script over a port; `call(op, args)` resolves to the script's answer. */
export class PageLink {
  #port;
  #pending = new Map();
  #next = 1;
  constructor(tabId, frameId = 0) {
    this.tabId = tabId;
    this.frameId = frameId;
  }

  async open() {
    await chrome.scripting.executeScript({ target: { tabId: this.tabId, frameIds: [this.frameId] }, files: ['content.js'] });
    return this.connect();
  }

  /** The port to the frame's (injected) content script. */
  connect() {
    this.#port = chrome.tabs.connect(this.tabId, { name: 'spatial-mllm', frameId: this.frameId });
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
    return this;
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

export const fail = (name, message) => Object.assign(new Error(message), { name });

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

  /** Saves the playback state and pauses (the content script restores it in `restore`). */
  begin() {
    return this.link.call('begin', { index: this.index });
  }

  /** Restores the playback state saved by `begin`; resolves to it. */
  end() {
    return this.link.call('restore', { index: this.index });
  }

  /** Grid frame i as RGBA bytes at width x height: the element drawn by the content script. */
  async grabAt(i, width, height) {
    const f = await this.link.call('grab', { index: this.index, time: this.elementTime(i), width, height });
    return Uint8Array.from(atob(f.rgba), (c) => c.charCodeAt(0));
  }

  async decodeFrames(indices, { maxSide, onProgress, signal } = {}) {
    const { width, height } = outputSize(this.width, this.height, maxSide);
    const size = width * height * 4;
    const rgba = new Uint8Array(indices.length * size);
    const times = [];
    await this.begin();
    try {
      const got = new Map();
      for (const [k, i] of indices.entries()) {
        signal?.throwIfAborted();
        let bytes = got.get(i);
        if (!bytes) {
          bytes = await this.grabAt(i, width, height);
          this.debug.seeks++;
          got.set(i, bytes);
          onProgress?.(got.size, new Set(indices).size);
        }
        if (bytes.length !== size) throw fail('CorruptVideo', `the page gave a frame of ${bytes.length} bytes, not ${size}`);
        rgba.set(bytes, k * size);
        times.push(this.seekTime(i));
      }
    } finally {
      this.restored = await this.end().catch(() => null);
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
