// Small DOM helpers of the app: the banner, the stage list, the download line, thumbnails, the
// question log. No state of the app lives here.
import { fmtBytes, fmtDuration } from './models.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children.filter((c) => c != null));
  return e;
}

/** A message at the top of the page: errors by default, `info` for good news. */
export function banner(text, kind = 'error') {
  $('banner-text').textContent = text;
  $('banner').className = kind === 'info' ? 'info' : '';
  $('banner').hidden = !text;
}
$('banner-close').onclick = () => banner('');

/** The pipeline's stages with their durations; `start(name)` closes the previous one. */
export class StageList {
  constructor(list) {
    this.list = list;
  }
  reset() {
    this.list.replaceChildren();
    this.list.hidden = false;
    this.current = null;
  }
  start(name, detail = '') {
    this.#close();
    const li = el('li', { className: 'active' }, `${name}${detail ? ` ${detail}` : ''}…`);
    this.current = { li, name, t0: performance.now() };
    this.list.append(li);
  }
  note(text) {
    if (this.current) this.current.li.textContent = `${this.current.name} ${text}`;
  }
  finish() {
    this.#close();
  }
  fail(message) {
    if (this.current) {
      this.current.li.className = 'failed';
      this.current.li.textContent = `${this.current.name}: failed (${message})`;
      this.current = null;
    }
  }
  #close() {
    if (!this.current) return;
    const { li, name, t0 } = this.current;
    li.className = 'done';
    li.textContent = `${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    this.current = null;
  }
}

/** The download line: bytes, rate and time left over the network part of a load. */
export class DownloadMeter {
  constructor() {
    this.t0 = performance.now();
    this.networkBytes = 0;
    this.lastDone = 0;
  }
  text({ which, i, n, done, total, cached }) {
    if (!cached) this.networkBytes += Math.max(0, done - this.lastDone);
    this.lastDone = i === n ? 0 : done;
    const secs = (performance.now() - this.t0) / 1000;
    const rate = this.networkBytes / Math.max(secs, 1e-3);
    const left = rate > 0 ? (total - done) / rate : Infinity;
    const eta = done >= total ? 'done' : Number.isFinite(left) && this.networkBytes > 0 ? `${Math.ceil(left)} s left` : '';
    const src = cached ? 'from the cache' : rate > 0 ? `${fmtBytes(rate)}/s` : '';
    return `${which}: ${fmtBytes(done)} of ${fmtBytes(total)} (file ${Math.min(i + 1, n)} of ${n}) ${src} ${eta}`.trim();
  }
}

const PHASES = { download: 'downloading', convert: 'converting', assemble: 'assembling the package', verify: 'verifying' };

/** The line of a hub job (download and conversion together): bytes over the whole job, the rate
 * over the last few seconds (so one slow chunk or a phase change does not swing the time left),
 * the time left and the phase. */
export class JobMeter {
  static WINDOW_MS = 8000;
  constructor(label = '') {
    this.label = label;
    this.samples = []; // [t, done]
  }
  update({ phase, done, total, file }) {
    const now = performance.now();
    if (this.samples.length && done < this.samples.at(-1)[1]) this.samples = []; // a restarted job
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[1][0] > JobMeter.WINDOW_MS) this.samples.shift();
    const [t0, d0] = this.samples[0];
    const rate = now - t0 >= 1000 ? ((done - d0) * 1000) / (now - t0) : null;
    const left = rate > 0 ? (total - done) / rate : null;
    const parts = [
      `${this.label ? `${this.label}: ` : ''}${PHASES[phase] ?? phase ?? 'working'}`,
      total ? `${fmtBytes(done)} of ${fmtBytes(total)}` : fmtBytes(done),
      rate !== null ? `${fmtBytes(rate)}/s` : null,
      total && done >= total ? null : left !== null ? `${fmtDuration(left)} left` : 'estimating time left…',
      file || null,
    ];
    return { fraction: total ? Math.min(1, done / total) : 0, text: parts.filter(Boolean).join(' · ') };
  }
}

/** Thumbnails of the frames the model sees, with their timestamps. */
export function showThumbnails(container, frames, times, onPick) {
  container.replaceChildren();
  const { rgba, count, width, height } = frames;
  for (let i = 0; i < count; i++) {
    const c = el('canvas', { width, height });
    const px = new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + i * width * height * 4, width * height * 4);
    c.getContext('2d').putImageData(new ImageData(px.slice(), width, height), 0, 0);
    const t = times[i];
    const label = `${Math.floor(t / 60)}:${(t % 60).toFixed(1).padStart(4, '0')}`;
    const fig = el('figure', { title: `frame at ${label}` }, c, el('figcaption', {}, label));
    fig.onclick = () => onPick?.(i, fig);
    container.append(fig);
  }
}

/** One question and its streaming answer in the log. */
export function logEntry(log, question) {
  const a = el('div', { className: 'a' });
  const s = el('div', { className: 's' });
  log.prepend(el('div', {}, el('div', { className: 'q' }, question), a, s));
  return { answer: a, stats: s };
}
