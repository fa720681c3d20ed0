// The extension's content script, injected into the tab the side panel asks about (by
// chrome.scripting from the panel, only when the user opens the panel on that tab), into every frame
// the extension may reach (the top frame's origin through activeTab; a cross-origin frame's origin
// only with host access to it). Each copy lists the <video> elements of its frame (and of frames of
// the same origin inside it: a frame whose parent is of its own origin leaves its videos to the
// parent's copy), and names the cross-origin frames inside it, whose videos it cannot reach. For the "draw the element" route it
// seeks a video to the times the panel asks for and returns each frame's RGBA pixels; for the
// "tab capture" route it seeks and says where the picture is on the tab (the panel crops the tab's
// stream there). The user's playback position, speed, paused state and scroll are saved first and
// restored afterwards, also when the panel goes away mid-capture (its port disconnects). It reads
// nothing else from the page and sends nothing anywhere but the panel.
(() => {
  /** This frame, as the injection's result tells the panel: `root` frames answer for their videos
   * (the top frame, and frames whose parent is from another origin). */
  const whoAmI = () => {
    let root = window === top;
    if (!root) { try { void parent.document.body; } catch { root = true; } }
    return { href: location.href, origin: location.origin, root };
  };
  if (globalThis.__spatialMllmContent) return whoAmI(); // injected once per page
  globalThis.__spatialMllmContent = true;

  const THUMB_SIDE = 96;
  const saved = new Map(); // video index -> {time, rate, paused}

  const savedScroll = { x: null, y: null }; // the page's scroll, restored after the tab route scrolled a video into view

  /** The page's videos, those inside same-origin frames included (a cross-origin frame's
   * document cannot be reached from here; its videos are not listed). */
  function videosIn(doc, depth) {
    const out = [...doc.querySelectorAll('video')];
    if (depth < 4) {
      for (const f of doc.querySelectorAll('iframe, frame')) {
        let inner = null;
        try { inner = f.contentDocument; } catch { /* cross-origin */ }
        if (inner) out.push(...videosIn(inner, depth + 1));
      }
    }
    return out;
  }
  const videos = () => videosIn(document, 0);

  /** The frames inside this one (same-origin frames looked into) whose documents are from another
   * origin: their videos are listed by their own copy of this script, if the extension may reach
   * them, or not at all. */
  function crossFrames(doc, depth, out = []) {
    for (const f of doc.querySelectorAll('iframe, frame')) {
      let inner = null;
      try { inner = f.contentDocument; } catch { /* cross-origin */ }
      if (inner && depth < 4) crossFrames(inner, depth + 1, out);
      else if (!inner && f.src) {
        try {
          const { origin } = new URL(f.src, doc.baseURI);
          if (origin !== 'null' && /^https?:/.test(origin)) out.push({ origin, src: new URL(f.src, doc.baseURI).href });
        } catch { /* not a URL */ }
      }
    }
    return out;
  }

  /** Where a cross-origin frame's document shows, in CSS pixels of the top window (the tab route
   * crops the video there: the frame's own copy says where the video is inside it). The frame is
   * found by its address; `reveal` scrolls it into view (once; restored with restoreScroll). */
  async function frameBox(href, origin, reveal) {
    const originOf = (u) => { try { return new URL(u).origin; } catch { return null; } };
    const all = [...allFrames(document, 0)];
    const sameOrigin = all.filter((x) => originOf(x.src) === origin);
    const f = all.find((x) => x.src === href) ?? (sameOrigin.length === 1 ? sameOrigin[0] : null);
    if (!f) return null;
    if (reveal && savedScroll.x === null) {
      savedScroll.x = scrollX;
      savedScroll.y = scrollY;
      f.scrollIntoView({ block: 'center', inline: 'center' });
      await painted();
    }
    const r = f.getBoundingClientRect();
    const cs = getComputedStyle(f);
    let x = r.left + f.clientLeft + parseFloat(cs.paddingLeft);
    let y = r.top + f.clientTop + parseFloat(cs.paddingTop);
    for (let win = f.ownerDocument.defaultView; win !== window && win.frameElement; win = win.parent) {
      const b = win.frameElement.getBoundingClientRect();
      x += b.left + win.frameElement.clientLeft;
      y += b.top + win.frameElement.clientTop;
    }
    return { x, y, width: f.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight), height: f.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom), viewWidth: innerWidth, viewHeight: innerHeight, dpr: devicePixelRatio };
  }
  function* allFrames(doc, depth) {
    for (const f of doc.querySelectorAll('iframe, frame')) {
      yield f;
      let inner = null;
      try { inner = f.contentDocument; } catch { /* cross-origin */ }
      if (inner && depth < 4) yield* allFrames(inner, depth + 1);
    }
  }

  function restoreScroll() {
    if (savedScroll.x !== null) {
      scrollTo(savedScroll.x, savedScroll.y);
      savedScroll.x = savedScroll.y = null;
    }
  }

  /** Where the element's timeline starts: Media Source streams often begin at the first frame's
   * composition time (a B-frame delay) rather than 0; the panel counts times from there, as the
   * app counts a file's times from its first frame. */
  function startOf(v) {
    const b = v.buffered;
    return b.length && b.start(0) > 0 && b.start(0) < 1 ? b.start(0) : 0;
  }

  function describe(v, index) {
    const src = v.currentSrc || v.src || '';
    const info = {
      index,
      src,
      mse: src.startsWith('blob:'), // Media Source (or an object URL): no file to fetch
      width: v.videoWidth,
      height: v.videoHeight,
      duration: Number.isFinite(v.duration) ? v.duration : (v.duration === Infinity ? 'live' : null),
      currentTime: v.currentTime,
      start: startOf(v),
      paused: v.paused,
      playbackRate: v.playbackRate,
      readyState: v.readyState,
      drm: !!v.mediaKeys,
      inFrame: v.ownerDocument !== document,
      shown: { width: Math.round(v.getBoundingClientRect().width), height: Math.round(v.getBoundingClientRect().height) },
      thumbnail: null,
      readable: false, // can its pixels be read (same-origin or CORS-clean)?
      unreadableWhy: '',
    };
    if (v.readyState < 2 || !v.videoWidth) {
      info.unreadableWhy = 'no picture yet (the video has not loaded a frame)';
      return info;
    }
    try {
      const s = Math.min(1, THUMB_SIDE / Math.max(v.videoWidth, v.videoHeight));
      const c = document.createElement('canvas');
      c.width = Math.max(1, Math.round(v.videoWidth * s));
      c.height = Math.max(1, Math.round(v.videoHeight * s));
      const g = c.getContext('2d');
      g.drawImage(v, 0, 0, c.width, c.height);
      g.getImageData(0, 0, 1, 1); // throws SecurityError on a tainted (cross-origin, no CORS) canvas
      info.thumbnail = c.toDataURL('image/jpeg', 0.8);
      info.readable = true;
    } catch (e) {
      info.unreadableWhy = e.name === 'SecurityError'
        ? 'the video comes from another site that does not allow reading its pixels (no CORS)'
        : `its picture cannot be drawn (${e.message})`;
    }
    if (info.drm) { info.readable = false; info.unreadableWhy = 'the video is DRM-protected (Encrypted Media): its pixels cannot be read'; }
    return info;
  }

  function element(index) {
    const v = videos()[index];
    if (!v) throw Object.assign(new Error(`video ${index} is no longer on the page`), { name: 'VideoGone' });
    return v;
  }

  function once(v, type, ms) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { v.removeEventListener(type, ok); reject(Object.assign(new Error(`the video did not answer (${type}) within ${ms / 1000} s`), { name: 'Timeout' })); }, ms);
      const ok = () => { clearTimeout(t); resolve(); };
      v.addEventListener(type, ok, { once: true });
    });
  }

  /** Resolves once a change made now is on the page's picture (two animation frames later), so
   * that the tab route's next picture of the tab has it; after 2 s at most (a hidden page runs no
   * animation frames). */
  function painted() {
    return Promise.race([
      new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))),
      new Promise((r) => setTimeout(r, 2000)),
    ]);
  }

  /** Seek and wait until the frame at `time` is on show (the 'seeked' event, and the next
   * presented frame where the browser reports it, for at most `presentMs`). Returns when that frame
   * went to the compositor, in ms since the epoch (comparable across documents), or null when none
   * was reported in time (a seek to the frame already on show presents nothing new). */
  async function seek(v, time, presentMs = 200) {
    const frame = typeof v.requestVideoFrameCallback === 'function'
      ? new Promise((r) => v.requestVideoFrameCallback((now, m) => r(performance.timeOrigin + (m.presentationTime ?? now))))
      : null;
    const seeked = once(v, 'seeked', 20_000);
    v.currentTime = time;
    await seeked;
    return frame ? Promise.race([frame, new Promise((r) => setTimeout(() => r(null), presentMs))]) : null;
  }

  function toBase64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }

  /** Saves the playback state and pauses; `bare`: also hides the browser's own controls (the tab
   * route sees what the screen shows, and they would be drawn over the picture). */
  async function begin(index, bare) {
    const v = element(index);
    if (!saved.has(index)) saved.set(index, { time: v.currentTime, rate: v.playbackRate, paused: v.paused, controls: v.controls });
    v.pause();
    if (bare && v.controls) {
      v.controls = false;
      await painted();
    }
  }

  async function restore(index) {
    restoreScroll();
    const s = saved.get(index);
    if (!s) return null;
    saved.delete(index);
    const v = videos()[index];
    if (!v) return null;
    v.playbackRate = s.rate;
    v.controls = s.controls;
    if (Math.abs(v.currentTime - s.time) > 1e-6) {
      const seeked = once(v, 'seeked', 20_000).catch(() => {});
      v.currentTime = s.time;
      await seeked;
    }
    if (!s.paused) await v.play().catch(() => {});
    return { time: v.currentTime, rate: v.playbackRate, paused: v.paused };
  }

  /** The picture on show, drawn at width x height (the app's FrameDrawer settings), as base64 RGBA. */
  function draw(v, width, height) {
    const c = new OffscreenCanvas(width, height);
    const g = c.getContext('2d', { willReadFrequently: true, alpha: false });
    g.imageSmoothingQuality = 'high';
    g.drawImage(v, 0, 0, width, height);
    const data = g.getImageData(0, 0, width, height).data;
    return toBase64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** One frame at `time`, drawn at width x height. */
  async function grab(index, time, width, height) {
    const v = element(index);
    await seek(v, time);
    return { time, rgba: draw(v, width, height) };
  }

  /** The frame on show now, without seeking (a live stream as it plays). */
  function grabNow(index, width, height) {
    const v = element(index);
    return { time: v.currentTime, rgba: draw(v, width, height) };
  }

  /** For the tab route: scrolls the video into view (once; the scroll is restored with the
   * playback state) and says where its picture is on the tab, in CSS pixels of the top window:
   * the element's content box less any letterboxing (object-fit: contain, the default), offset
   * by the frames it sits in, clipped to the window. */
  async function place(index) {
    const v = element(index);
    if (savedScroll.x === null) {
      savedScroll.x = scrollX;
      savedScroll.y = scrollY;
      v.scrollIntoView({ block: 'center', inline: 'center' });
      await painted();
    }
    let { left: x, top: y, width: w, height: h } = v.getBoundingClientRect();
    const cs = getComputedStyle(v);
    const pad = (side) => parseFloat(cs[`padding${side}`]) + parseFloat(cs[`border${side}Width`]);
    x += pad('Left'); y += pad('Top'); w -= pad('Left') + pad('Right'); h -= pad('Top') + pad('Bottom');
    if (cs.objectFit !== 'fill' && v.videoWidth && v.videoHeight) {
      const s = Math.min(w / v.videoWidth, h / v.videoHeight);
      x += (w - v.videoWidth * s) / 2; y += (h - v.videoHeight * s) / 2;
      w = v.videoWidth * s; h = v.videoHeight * s;
    }
    for (let win = v.ownerDocument.defaultView; win !== window && win.frameElement; win = win.parent) {
      const r = win.frameElement.getBoundingClientRect();
      x += r.left + win.frameElement.clientLeft;
      y += r.top + win.frameElement.clientTop;
    }
    const x1 = Math.max(0, x); const y1 = Math.max(0, y);
    const x2 = Math.min(innerWidth, x + w); const y2 = Math.min(innerHeight, y + h);
    return { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1), clipped: x1 > x || y1 > y || x2 < x + w || y2 < y + h, viewWidth: innerWidth, viewHeight: innerHeight, dpr: devicePixelRatio };
  }

  const OPS = {
    grabNow: ({ index, width, height }) => grabNow(index, width, height),
    list: () => ({ url: location.href, title: document.title, frame: whoAmI(), videos: videos().map(describe), crossFrames: crossFrames(document, 0) }),
    frameBox: ({ href, origin, reveal }) => frameBox(href, origin, reveal),
    restoreScroll: () => restoreScroll(),
    begin: ({ index, bare }) => begin(index, bare),
    grab: ({ index, time, width, height }) => grab(index, time, width, height),
    seek: async ({ index, time, presentMs }) => ({ time, shownAt: await seek(element(index), time, presentMs) }),
    place: ({ index }) => place(index),
    restore: ({ index }) => restore(index),
    state: ({ index }) => { const v = element(index); return { time: v.currentTime, rate: v.playbackRate, paused: v.paused }; },
  };

  chrome.runtime.onConnect.addListener((port) => {
    if (port.name !== 'spatial-mllm') return;
    port.onMessage.addListener(async ({ id, op, args }) => {
      try {
        if (!OPS[op]) throw new Error(`unknown operation ${op}`);
        const result = await OPS[op](args ?? {});
        port.postMessage({ id, ok: true, result });
      } catch (e) {
        try { port.postMessage({ id, ok: false, name: e.name, message: e.message }); } catch { /* the panel is gone */ }
      }
    });
    // The panel closed (or navigated) mid-capture: give the user their video back as it was.
    port.onDisconnect.addListener(() => { restoreScroll(); for (const index of [...saved.keys()]) restore(index); });
  });
  return whoAmI();
})();
