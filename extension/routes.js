// Which route a page's video takes, in the order the issue asks for: 1. its file, fetched and
// decoded with the app's WebCodecs pipeline; 2. the element drawn at sought times; 3. the tab's
// picture captured and cropped (tab-capture.js); a live stream is taken as it plays. DRM-protected
// videos are refused: they cannot be read, and no route tries to defeat that.
import { openVideo } from './app/video/video.js';
import { fmtBytes } from './app/models.js';
import { ElementSource, LiveSource, fail } from './page.js';
import { TabSource } from './tab-capture.js';

/** Route 1 reads the whole file before decoding the frames it needs: above this size, a video
 * whose element can be drawn is drawn instead (a film of gigabytes is not downloaded for 16
 * frames); one that cannot be drawn is still fetched (tab capture gives worse frames). */
export const FILE_ROUTE_MAX_BYTES = 512 * 2 ** 20;

/** The route for a listed video: {route: 'file'|'element'|'tab'|'live', source, why} or throws a
 * named error saying why it cannot be read. Route 1 is tried first: the source URL fetched and
 * opened by the app's video pipeline; then route 2, drawing the element; then route 3, capturing
 * the tab (`tabId`; `canCapture`: the tabCapture permission was granted; `top`: the top frame's link,
 * for a video in a cross-origin frame, whose content script `link` is). `fileMaxBytes`: route 1's
 * size limit for a drawable video (tests set a small one). */
export async function openPageVideo(link, info, { signal, liveSeconds = 10, tabId = null, canCapture = false, top = null, fileMaxBytes = FILE_ROUTE_MAX_BYTES } = {}) {
  if (info.drm) throw fail('DrmProtected', 'This video is DRM-protected (Encrypted Media Extensions): the browser does not let any extension read its pictures, so it cannot be asked about.');
  if (info.duration === 'live') {
    if (!info.readable) throw fail('Unreadable', `This live stream cannot be read: ${info.unreadableWhy || 'its pictures cannot be drawn'}. (Capturing the tab is not offered for live streams.)`);
    if (info.paused) throw fail('LiveStream', `This is a live stream without a duration, and it is paused: play it, then analyse again. Its frames are taken as it plays, from then on for the time chosen (${liveSeconds} s).`);
    return { route: 'live', source: new LiveSource(link, info, liveSeconds), why: `it is a live stream without a duration: its frames are taken as it plays, from now for ${liveSeconds} s (the time chosen under "Live streams")` };
  }
  if (!info.width || info.duration == null) throw fail('NotReady', 'This video has not loaded yet: start playing it for a moment, then press "Look again".');
  let why1 = '';
  if (/^https?:|^file:/.test(info.src)) {
    try {
      const res = await fetch(info.src, { signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const size = Number(res.headers.get('content-length')) || 0;
      if (size > fileMaxBytes && info.readable) {
        res.body?.cancel().catch(() => {});
        throw Object.assign(new Error(`its file is ${fmtBytes(size)}, more than the ${fmtBytes(fileMaxBytes)} worth downloading whole for a few frames`), { name: 'TooLarge' });
      }
      const blob = await res.blob();
      const source = await openVideo(blob);
      return { route: 'file', source, bytes: blob.size, why: `the video is a plain file (${info.src.split('/').pop().slice(0, 60)}, ${fmtBytes(blob.size)}) the extension may read: it was fetched and its frames are decoded with WebCodecs, exactly as a file dropped into the app` };
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      why1 = e.name === 'TooLarge' ? e.message : `its file could not be read by the extension (${e.message})`;
    }
  } else {
    why1 = info.mse ? 'it is fed by Media Source (there is no file to fetch)' : 'it has no file address';
  }
  if (!info.readable) {
    const why2 = info.unreadableWhy || 'its pictures cannot be drawn';
    if (!canCapture || tabId == null) throw fail('Unreadable', `This video cannot be read: ${why1}, and ${why2}. Capturing the tab would work, but the "tabCapture" permission was not granted: press Analyse again and allow it.`);
    const source = await TabSource.open(link, info, tabId, info.frameId ? top : null);
    return { route: 'tab', source, why: `${why1}, and ${why2}: the tab's picture is captured instead, the video sought to each chosen time and cropped where it shows (frames are what the screen shows, so slightly different from the file's; your position, speed, pause and scroll are restored afterwards)` };
  }
  return { route: 'element', source: new ElementSource(link, info), why: `${why1}; the page's video element is drawn at each chosen time instead (your position, speed and pause are restored afterwards)` };
}
