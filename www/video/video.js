// Video input of the app: open an MP4/MOV/WebM file, list its frames, and decode chosen frames to
// RGBA with WebCodecs. Usable on the main thread and in a module worker (no DOM beyond
// OffscreenCanvas and VideoFrame).
//
//   const video = await openVideo(file);            // throws Error with .name: NoWebCodecs,
//   video.frameTimes();                              //   UnsupportedContainer, UnsupportedCodec, CorruptVideo
//   const { rgba, width, height, times } = await video.decodeFrames([0, 37, 49], { maxSide: 448 });
//   video.close();
//
// The demuxers (mp4.js, webm.js) return a "Demuxed" object:
//   { container: 'mp4'|'webm', config: VideoDecoderConfig (codec, codedWidth, codedHeight, description?),
//     width, height: display size before rotation; rotation: clockwise degrees (0/90/180/270);
//     frames: [{pts (s), dur (s), key}] in decode order;
//     read(from, to): async iterator of each frame's bytes (Uint8Array), decode indices from..to inclusive;
//     close() }
import { videoError, isVideoError } from './errors.js';
import { sniffContainer } from './sniff.js';
import { planRuns, presentationOrder } from './plan.js';
import { FrameDrawer, outputSize } from './rgba.js';

export { videoError, isVideoError };

const QUEUE = 8; // chunks in flight in the decoder before feeding waits
const NAMES = { avc1: 'H.264', avc3: 'H.264', hvc1: 'HEVC/H.265', hev1: 'HEVC/H.265', vp8: 'VP8', vp09: 'VP9', av01: 'AV1', mp4v: 'MPEG-4 Part 2', apch: 'ProRes', apcn: 'ProRes' };

/** Open a video file (Blob/File). Resolves to a VideoSource; rejects with a named Error (see above). */
export async function openVideo(file) {
  if (typeof VideoDecoder === 'undefined' || typeof EncodedVideoChunk === 'undefined') {
    throw videoError('NoWebCodecs', 'This browser cannot decode video for the app: it has no WebCodecs VideoDecoder. Use a recent Chrome, Edge, Safari or Firefox, on an https:// or localhost page.');
  }
  const container = await sniffContainer(file);
  let demuxed;
  try {
    demuxed = container === 'mp4' ? await (await import('./mp4.js')).demuxMp4(file) : await (await import('./webm.js')).demuxWebm(file);
  } catch (e) {
    if (isVideoError(e)) throw e;
    const label = container === 'mp4' ? 'MP4/MOV' : 'WebM/MKV';
    throw videoError('CorruptVideo', `This ${label} file could not be read (${e?.message ?? e}): it is damaged or truncated.`, e);
  }
  try {
    await checkDecodable(demuxed.config);
    return new VideoSource(demuxed);
  } catch (e) {
    demuxed.close();
    throw e;
  }
}

/** A readable codec name for messages: 'VP9 (vp09.00.10.08)'. */
export function codecLabel(codec) {
  const name = NAMES[String(codec).split('.')[0]];
  return name ? `${name} (${codec})` : codec;
}

async function checkDecodable(config) {
  let supported = false;
  try {
    supported = (await VideoDecoder.isConfigSupported(config)).supported === true;
  } catch {
    // A codec string the browser does not even parse: unsupported too.
  }
  if (!supported) {
    throw videoError('UnsupportedCodec', `This browser cannot decode this video's codec, ${codecLabel(config.codec)}. Re-encode the video to H.264 (MP4) or VP9 (WebM), or try another browser.`);
  }
}

export class VideoSource {
  #d;
  #order; // presentation index -> decode index
  #presOf; // decode index -> presentation index
  #times;
  #closed = false;

  constructor(demuxed) {
    const d = demuxed;
    this.#d = d;
    this.container = d.container;
    this.codec = d.config.codec;
    this.rotation = d.rotation;
    [this.width, this.height] = d.rotation % 180 ? [d.height, d.width] : [d.width, d.height];
    this.frameCount = d.frames.length;
    this.#order = presentationOrder(d.frames);
    this.#presOf = new Int32Array(d.frames.length);
    this.#order.forEach((dec, p) => { this.#presOf[dec] = p; });
    // Seconds from the first frame: containers start the clock at 0, at a B-frame delay (MP4 without
    // an edit list) or anywhere (a cut from a stream); the app wants frame 0 at 0 s.
    const t0 = d.frames[this.#order[0]].pts;
    this.#times = this.#order.map((dec) => d.frames[dec].pts - t0);
    this.duration = durationOf(d.frames, this.#times, t0);
    this.fps = this.duration > 0 ? this.frameCount / this.duration : 0;
    /** Counters for tests and tuning: compressed chunks fed, decoder runs (flushes), frames delivered. */
    this.debug = { chunks: 0, runs: 0, frames: 0 };
  }

  /** Presentation time of every frame in seconds from the first (index = frame number; sorted, times[0] = 0). */
  frameTimes() {
    return this.#times.slice();
  }

  /**
   * Decode the frames with these numbers (presentation order; any order, repeats allowed) to packed
   * RGBA, count*height*width*4 bytes in the order asked. Only the GOPs holding a wanted frame are
   * read and decoded, each from its keyframe up to the last wanted frame in it.
   * maxSide: scale down (never up) so the longer side is at most this; onProgress(done, total)
   * after each distinct frame.
   */
  async decodeFrames(indices, { maxSide, onProgress } = {}) {
    if (this.#closed) throw new Error('decodeFrames: the video is closed');
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.frameCount) throw new RangeError(`decodeFrames: frame ${i} is not in 0..${this.frameCount - 1}`);
    }
    const { width, height } = outputSize(this.width, this.height, maxSide);
    const size = width * height * 4;
    const rgba = new Uint8Array(indices.length * size);
    const times = indices.map((p) => this.#times[p]);
    if (indices.length === 0) return { rgba, width, height, times };

    const slots = new Map(); // frame number -> positions in the output
    indices.forEach((p, k) => { if (slots.has(p)) slots.get(p).push(k); else slots.set(p, [k]); });
    let runs;
    try {
      runs = planRuns(this.#d.frames, [...slots.keys()].map((p) => this.#order[p]));
    } catch (e) {
      // A damaged keyframe flag or a cut stream: no frame to start decoding from.
      throw videoError('CorruptVideo', `This video cannot be decoded from its start: ${e.message} (the file is damaged, or cut from a longer stream).`, e);
    }
    const drawer = new FrameDrawer(width, height, this.rotation);
    const done = new Set();
    let failure = null;
    let wake = () => {};
    const decoder = new VideoDecoder({
      // Chunk timestamps are frame numbers, so each picture maps straight back to its slot.
      output: (frame) => {
        try {
          const at = slots.get(frame.timestamp);
          if (!at || done.has(frame.timestamp)) return;
          drawer.draw(frame, rgba, at[0] * size);
          for (const k of at.slice(1)) rgba.copyWithin(k * size, at[0] * size, at[0] * size + size);
          done.add(frame.timestamp);
          this.debug.frames++;
          onProgress?.(done.size, slots.size);
        } catch (e) {
          failure ??= e;
        } finally {
          frame.close();
        }
      },
      error: (e) => { failure ??= e; wake(); },
    });
    decoder.addEventListener('dequeue', () => wake());
    try {
      decoder.configure({ ...this.#d.config, hardwareAcceleration: 'no-preference' });
      for (const run of runs) {
        let dec = run.from;
        for await (const data of this.#d.read(run.from, run.to)) {
          while (decoder.decodeQueueSize >= QUEUE && !failure) await new Promise((r) => { wake = r; });
          if (failure) throw failure;
          const f = this.#d.frames[dec];
          decoder.decode(new EncodedVideoChunk({ type: f.key ? 'key' : 'delta', timestamp: this.#presOf[dec], data }));
          this.debug.chunks++;
          dec++;
        }
        await decoder.flush(); // the run ends: get its last pictures out before jumping to the next keyframe
        this.debug.runs++;
        if (failure) throw failure;
      }
    } catch (e) {
      throw decodeError(failure ?? e, this.codec);
    } finally {
      if (decoder.state !== 'closed') decoder.close();
    }
    const missing = [...slots.keys()].filter((p) => !done.has(p));
    if (missing.length) {
      throw videoError('CorruptVideo', `The decoder gave no picture for frame${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '…' : ''}: the file may be damaged.`);
    }
    return { rgba, width, height, times };
  }

  /** Release the file reader. The source cannot decode afterwards. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#d.close();
  }
}

/** Seconds from the first frame's start (t0) to the last frame's end; a frame without a duration gets the median spacing. */
function durationOf(frames, times, t0) {
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  const typical = gaps.length ? gaps[gaps.length >> 1] : 0;
  let end = -Infinity;
  for (const f of frames) end = Math.max(end, f.pts + (f.dur > 0 ? f.dur : typical));
  return end - t0;
}

/** Decoder failures as the module's named errors; errors from elsewhere (onProgress, bugs) pass through. */
function decodeError(e, codec) {
  if (isVideoError(e) || !(e instanceof DOMException)) return e;
  if (e.name === 'NotSupportedError') {
    return videoError('UnsupportedCodec', `This browser could not start a decoder for ${codecLabel(codec)} (${e.message}). Re-encode the video to H.264 (MP4) or VP9 (WebM), or try another browser.`, e);
  }
  return videoError('CorruptVideo', `Decoding the video failed (${e.name}: ${e.message}): the file may be damaged.`, e);
}
