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

/** Resolves after the capture has delivered `n` new frames, or after `ms` (a still tab sends none). */
function frames(video, n, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    const next = (left) => video.requestVideoFrameCallback(() => (left > 1 ? next(left - 1) : (clearTimeout(t), resolve())));
    next(n);
  });
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
    this.codec = 'as the tab shows it';
    this.container = 'tab capture';
  }

  /** Grid frame i: the video sought there, the tab's next pictures awaited, the video's place cropped. */
  async grabAt(i, width, height) {
    await this.link.call('seek', { index: this.index, time: this.elementTime(i) });
    const place = await placeOf(this.link, this.top, this.info);
    await frames(this.video, 2, 600);
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
    for (const t of this.stream.getTracks()) t.stop();
    this.video.srcObject = null;
  }
}
