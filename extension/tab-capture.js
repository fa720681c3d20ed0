// Route 3, tab capture: for a video whose pixels the page does not let anyone read (another site's
// file without CORS) and whose file the extension may not fetch. The panel takes the tab's own
// picture (chrome.tabCapture.getMediaStreamId, then getUserMedia with chromeMediaSource 'tab';
// this needs the `tabCapture` permission, asked for when the route is first needed, and the
// user's click on the toolbar button for that tab), has the content script seek the video to each
// chosen time, and crops the tab's picture to where the video shows. The frames are what the
// screen shows (scaled by the page, after the browser's compositing), so they differ a little from
// the file's decoded pixels. The playback state and scroll are restored afterwards. A video in a
// cross-origin frame: the frame's content script says where the video is inside the frame, the top
// frame's where that frame is on the tab (`top`, the top frame's link).
import { ElementSource } from './page.js';

const fail = (name, message) => Object.assign(new Error(message), { name });
/** How long a seek may take to present its frame, and the capture to show it (a 2-core machine
 * rendering the page while the engine runs on its CPU took over 600 ms). */
const PRESENT_MS = 3000;
const CAPTURE_MS = 10_000;
/** The page's and the panel's clocks are different processes' views of the epoch, and a frame's
 * presentation time and the capture's time of the picture showing it are taken at different
 * points of the same display frame: measured from -10 to +4 ms apart. A picture taken this much
 * before the page presented the sought frame still counts (one from before the seek is hundreds
 * of ms older; one taken after the seek was asked for, but before its frame showed, is followed
 * within a frame by the one showing it, which the quiet wait below takes instead). */
const CLOCK_SLACK_MS = 50;
/** After a picture that counts, how long no newer one must arrive before cropping the latest
 * (waited for at most 8 times over, for a page that keeps changing elsewhere). */
const QUIET_MS = 60;

/** Resolves after the capture has delivered `n` new frames, or after `ms` (a still tab sends none). */
function frames(video, n, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    const next = (left) => video.requestVideoFrameCallback(() => (left > 1 ? next(left - 1) : (clearTimeout(t), resolve())));
    next(n);
  });
}

/** Follows the capture's pictures: when the latest was taken (ms since the epoch, from
 * `captureTime`; the arrival time where the browser does not give it). Started before any seek, so
 * a picture that arrives while the panel is still asking where the video is counts. */
class CaptureClock {
  constructor(video) {
    this.latest = -Infinity;
    this.arrived = -Infinity; // performance.now() of the latest picture's arrival
    this.waiters = new Set();
    const next = () => video.requestVideoFrameCallback((now, m) => {
      this.latest = performance.timeOrigin + (m.captureTime ?? now);
      this.arrived = performance.now();
      for (const w of this.waiters) w();
      if (!this.stopped) next();
    });
    next();
  }

  /** Resolves true once a picture of the tab taken at or after `since` (ms since the epoch) has
   * arrived and no newer one for `quietMs`; false after `ms`. A busy machine can take far longer
   * than a frame interval to repaint the tab, and until then the capture shows the picture from
   * before the seek. */
  settled(since, quietMs, ms) {
    return new Promise((resolve) => {
      let quiet = null;
      let first = null;
      const done = (ok) => { clearTimeout(t); clearTimeout(quiet); this.waiters.delete(check); resolve(ok); };
      const check = () => {
        if (this.latest < since) return;
        first ??= performance.now();
        clearTimeout(quiet);
        const wait = Math.min(quietMs - (performance.now() - this.arrived), first + 8 * quietMs - performance.now());
        quiet = setTimeout(() => done(true), Math.max(0, wait));
      };
      const t = setTimeout(() => done(false), ms);
      this.waiters.add(check);
      check();
    });
  }

  stop() {
    this.stopped = true;
  }
}

/** Where the video shows on the tab, in CSS pixels of the top window (see content.js `place`);
 * `top`: the top frame's link when the video is in a cross-origin frame (its place is inside the
 * frame, offset by where the top frame shows that frame, clipped to both). */
async function placeOf(link, top, info) {
  if (!top) return link.call('place', { index: info.index });
  // The top frame scrolls the frame into view first (saving its scroll), then the frame its video.
  const where = (reveal) => top.call('frameBox', { href: info.frameHref, origin: info.frameOrigin, reveal });
  await where(true);
  const p = await link.call('place', { index: info.index });
  const box = await where(false);
  if (!box) throw fail('NotVisible', `The frame from ${info.frameOrigin} that holds the video was not found on the page, so the tab capture cannot find the video.`);
  const [x0, y0] = [box.x + p.x, box.y + p.y];
  const x1 = Math.max(0, box.x, x0); const y1 = Math.max(0, box.y, y0);
  const x2 = Math.min(box.viewWidth, box.x + box.width, x0 + p.width); const y2 = Math.min(box.viewHeight, box.y + box.height, y0 + p.height);
  return { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1), clipped: p.clipped || x1 > x0 || y1 > y0 || x2 < x0 + p.width || y2 < y0 + p.height, viewWidth: box.viewWidth, viewHeight: box.viewHeight, dpr: box.dpr };
}

export class TabSource extends ElementSource {
  /** Seconds a frame takes (seek, the tab repainting, the capture delivering it): for the panel's estimate. */
  static SECONDS_PER_FRAME = 0.4;

  /** Starts capturing tab `tabId` (throws a named error with what to do when it may not). */
  static async open(link, info, tabId, top = null) {
    if (!chrome.tabCapture) throw fail('NoPermission', 'Capturing the tab needs the "tabCapture" permission, which was not granted: press Analyse again and allow it.');
    let id;
    try {
      id = await chrome.tabCapture.getMediaStreamId({ targetTabId: tabId });
    } catch (e) {
      throw fail('NotInvoked', `The tab cannot be captured (${e.message}): click the extension's toolbar button while this tab is showing, then press Analyse again.`);
    }
    // The tab at its own size in device pixels (a size of another shape would be letterboxed).
    const view = await placeOf(link, top, info);
    const [w, h] = [Math.round(view.viewWidth * view.dpr), Math.round(view.viewHeight * view.dpr)];
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { mandatory: { chromeMediaSource: 'tab', chromeMediaSourceId: id, minWidth: w, maxWidth: w, minHeight: h, maxHeight: h, maxFrameRate: 30 } },
    });
    const video = Object.assign(document.createElement('video'), { muted: true, playsInline: true, srcObject: stream });
    await video.play();
    await frames(video, 1, 2000);
    return new TabSource(link, info, stream, video, top);
  }

  constructor(link, info, stream, video, top) {
    super(link, info);
    this.info = info;
    this.top = top;
    this.stream = stream;
    this.video = video;
    this.clock = new CaptureClock(video);
    this.codec = 'as the tab shows it';
    this.container = 'tab capture';
    this.debug.waits = []; // ms per frame from the seek to a fresh picture
  }

  /** Grid frame i: the video sought there, the tab's picture taken after the sought frame showed
   * awaited, the video's place cropped. */
  async grabAt(i, width, height) {
    const t = performance.now();
    // Where first: it may scroll the video into view, and the seek's picture then shows that too.
    const place = await placeOf(this.link, this.top, this.info);
    const asked = performance.timeOrigin + performance.now();
    const { shownAt } = await this.link.call('seek', { index: this.index, time: this.elementTime(i), presentMs: PRESENT_MS });
    if (shownAt == null) {
      // Nothing new was presented (the frame was on show already, or the browser does not say).
      await frames(this.video, 2, 600);
    } else if (!(await this.clock.settled(Math.max(asked, shownAt - CLOCK_SLACK_MS), QUIET_MS, CAPTURE_MS))) {
      throw fail('NotCaptured', `The tab's picture did not change within ${CAPTURE_MS / 1000} s after the video was sought (is the tab minimised, or the machine very busy?): keep the tab on show and press Analyse again.`);
    }
    this.debug.waits.push(Math.round(performance.now() - t));
    if (!place.width || !place.height) throw fail('NotVisible', 'The video is not visible on the tab (hidden, or scrolled away and not scrollable into view), so the tab capture cannot see it.');
    // The tab's picture fills the captured frame, letterboxed if the shapes differ.
    const { videoWidth: fw, videoHeight: fh } = this.video;
    const s = Math.min(fw / place.viewWidth, fh / place.viewHeight);
    const [ox, oy] = [(fw - place.viewWidth * s) / 2, (fh - place.viewHeight * s) / 2];
    const c = new OffscreenCanvas(width, height);
    const g = c.getContext('2d', { willReadFrequently: true, alpha: false });
    g.imageSmoothingQuality = 'high';
    g.drawImage(this.video, ox + place.x * s, oy + place.y * s, place.width * s, place.height * s, 0, 0, width, height);
    this.clipped ||= place.clipped;
    const data = g.getImageData(0, 0, width, height).data;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  begin() {
    return this.link.call('begin', { index: this.index, bare: true });
  }

  /** The playback state, and the top frame's scroll when it was scrolled to show the frame. */
  async end() {
    await this.top?.call('restoreScroll').catch(() => {});
    return super.end();
  }

  close() {
    this.clock.stop();
    for (const t of this.stream.getTracks()) t.stop();
    this.video.srcObject = null;
  }
}
