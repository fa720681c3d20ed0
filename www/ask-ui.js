// The asking UI's logic, shared by the app (app.js) and the browser extension's side panel
// (extension/panel.js): model choice and capability check, loading with progress, the cache list,
// frame encoding, thumbnails and the 3D view, question presets and the streamed answer with Stop.
// The page that uses it supplies only where its video comes from (`videoSize`, `prepareAsk`) and
// how its engine recovers (`guarded`); its markup is ask-ui-view.js's. The engine is used only
// through its facade (engine/engine.js, or anything with the same interface).
import { DEMO, customModel, fetchManifest, checkCapabilities, listCachedPackages, deleteCachedPackage, storageSummary, fmtBytes, PACKAGE_CACHE, HUB_DEFAULT } from './models.js';
import { HubChooser, errorNodes } from './catalogue.js';
import { PRESETS, presetText } from './questions.js';
import { DECODE_MAX_SIDE } from './pipeline.js';
import { $, el, banner, StageList, DownloadMeter, showThumbnails, logEntry } from './ui.js';
import { VIEW_NOTE } from './ask-ui-view.js';

/** The message the user sees, with what to do about it. */
export function explain(e) {
  let msg = e.message ?? String(e);
  if (e.name === 'GpuOutOfMemory') msg += ` — with ${$('frames').value} frames this is too much for this GPU: choose fewer frames (Frames above), uniform sampling, or close other GPU-heavy tabs.`;
  if (e.name === 'UnsupportedCodec' || e.name === 'UnsupportedContainer') msg += ' (Nothing was uploaded; the file stays on this machine.)';
  return Object.assign(new Error(msg), { name: e.name });
}

export class AskUI {
  /**
   * @param {object} o
   * @param {object} o.state the page's state; AskUI reads and writes engine, model, analysed, busy,
   *   asking, stopper, stopRequested, view
   * @param {(step: () => Promise<any>) => Promise<any>} [o.guarded] runs an engine step (the app
   *   recovers a lost device or crashed worker there and retries)
   * @param {() => ({width, height, frameCount}|null)} o.videoSize the chosen video's size, for the memory estimate
   * @param {() => Promise<void>} o.prepareAsk makes `state.analysed` ready before a question
   * @param {string[]} [o.busyButtons] the page's own buttons disabled while a step runs
   * @param {number|null} [o.maxBindingBytes] plan for a smaller GPU than this one
   * @param {string} [o.owner] who uses the storage, in the cache line ("This site", "The extension")
   * @param {(key: string, value: string) => void} [o.remember] keeps a setting for the next visit
   * @param {(entry) => ({nodes: Node[], error: Error}|null)} [o.blockedHosts] what the page's own
   *   policy refuses to reach for this entry (the app's connect-src, hosts.js), asked before anything
   */
  constructor({ state, guarded = (step) => step(), videoSize, prepareAsk, busyButtons = [], maxBindingBytes = null, owner = 'This site', remember = () => {}, blockedHosts = () => null }) {
    Object.assign(this, { state, guarded, videoSize, prepareAsk, busyButtons, maxBindingBytes, owner, remember, blockedHosts });
    this.stages = new StageList($('stages'));
    this.hub = null; // the hub's catalogue and settings (catalogue.js), made in wire()
    this.checkSeq = 0; // a newer check's card replaces an older one's, never the other way round
  }

  async busy(step) {
    const { state } = this;
    if (state.busy) {
      banner('Still working on the previous step: wait for it (or stop the answer) and try again.', 'info');
      return;
    }
    state.busy = true;
    this.setButtons();
    try {
      await step();
    } catch (e) {
      // The user's own Stop of a download is news, not a failure.
      if (e.name === 'AbortError') {
        banner(e.message, 'info');
        return;
      }
      this.stages.fail(e.message);
      banner(e.message);
      console.error(e);
    } finally {
      state.busy = false;
      this.setButtons();
    }
  }

  setButtons() {
    const { state } = this;
    for (const id of ['load', 'analyse', 'check', ...this.busyButtons]) $(id).disabled = state.busy;
    $('ask').disabled = state.busy && !state.asking ? true : state.asking;
    $('stop').disabled = !state.asking;
  }

  // ---- model -----------------------------------------------------------------------------------

  modelChoice() {
    return document.querySelector('input[name=model]:checked').value;
  }

  selectedEntry() {
    const choice = this.modelChoice();
    if (choice === 'hub') return this.hub.entry();
    if (choice !== 'custom') return DEMO;
    const url = $('model-url').value.trim();
    if (!url) throw Object.assign(new Error('enter the model package URL (the folder with manifest.json)'), { name: 'BadInput' });
    this.remember('model-url', url);
    this.remember('sampler-url', $('sampler-url').value.trim());
    return customModel(url, $('sampler-url').value.trim());
  }

  /** What the entry's packages are, before any weights are downloaded: {kind, modelManifest,
   * samplerManifest, downloadBytes, storageBytes (hub only), lines (the hub's per-repository facts)}. */
  async describe(entry) {
    if (entry.hub) return this.hub.describe(entry);
    const m = await fetchManifest(entry.model);
    const s = entry.sampler ? await fetchManifest(entry.sampler) : null;
    return { kind: m.kind, modelManifest: m.text, samplerManifest: s?.text ?? null, downloadBytes: m.bytes + (s?.bytes ?? 0), lines: [] };
  }

  /** GPU memory for the chosen frames: the model's, plus the sampler's weights and, when frames are
   * sampled by space, its activations over the candidates (freed before the model's run). */
  async estimateNeed(d) {
    const est = (manifestJson, frames, width, height) => this.guarded(() => this.state.engine.estimate(manifestJson, { frames, width, height }));
    const frames = Number($('frames').value);
    const video = this.videoSize();
    const { width, height } = video?.width ? video : { width: 644, height: 476 };
    const scale = Math.min(1, DECODE_MAX_SIDE / Math.max(width, height));
    const [w, h] = [Math.round(width * scale), Math.round(height * scale)];
    const need = await est(d.modelManifest, frames, w, h);
    if (d.samplerManifest) {
      const mode = $('sampling').value;
      const side = mode === 'full' ? 518 : 224; // the sampler's input (engine: vggt_frame_size)
      const short = Math.max(14, Math.min(side, Math.round((Math.min(w, h) * side) / Math.max(w, h) / 14) * 14));
      const s = await est(d.samplerManifest, Math.min(mode === 'full' ? 128 : 32, video?.frameCount ?? Infinity), side, short);
      need.weight_bytes += s.weight_bytes;
      if (mode !== 'uniform') need.activation_bytes = Math.max(need.activation_bytes, s.activation_bytes);
      if (s.largest_buffer_bytes > need.largest_buffer_bytes) Object.assign(need, { largest_buffer_bytes: s.largest_buffer_bytes, largest: s.largest });
    }
    return Object.assign(need, { frames, download_bytes: d.downloadBytes, storage_bytes: d.storageBytes });
  }

  /** Capability check before any download: WebGPU, adapter, limits, memory estimate, storage. */
  async checkFor(entry) {
    const seq = ++this.checkSeq;
    const card = $('capability');
    const show = (verdict, ...nodes) => {
      if (seq !== this.checkSeq) return;
      card.hidden = false;
      card.className = `card ${verdict}`;
      card.replaceChildren(...nodes);
    };
    show('', 'checking…');
    const blocked = this.blockedHosts(entry);
    if (blocked) {
      show('cannot', ...blocked.nodes);
      return { verdict: 'cannot', error: blocked.error };
    }
    let d;
    let need;
    try {
      d = await this.describe(entry);
      need = await this.estimateNeed(d);
    } catch (e) {
      show('cannot', ...(entry.hub ? errorNodes(e) : [`The model package could not be read: ${e.message}`]));
      return { verdict: 'cannot', error: entry.hub ? e : null };
    }
    const cap = await checkCapabilities(need);
    const words = { ok: 'This browser can run it.', slow: 'This browser can run it, slowly.', doubtful: 'This browser may not manage it.', cannot: 'This browser cannot run it.' };
    const download = d.lines.length ? (d.lines.length > 1 && need.download_bytes ? `Download in all: ${fmtBytes(need.download_bytes)}. ` : '') : `${d.kind ?? 'model'}: download ${fmtBytes(need.download_bytes)}. `;
    show(cap.verdict,
      el('div', { className: 'verdict' }, words[cap.verdict]),
      ...d.lines,
      el('div', {}, `${download}GPU: ${cap.adapter ?? 'none'}${cap.webgpu && cap.adapter ? `, shader-f16 ${cap.f16 ? 'yes' : 'no'}, largest binding ${fmtBytes(cap.limits.maxStorageBufferBindingSize)}` : ''}.`),
      ...cap.notes.map((n) => el('div', { className: 'muted' }, n)),
    );
    return cap;
  }

  /** Checks the choice again when it (or the frame count) changes; the hub's check reads only
   * metadata. `always`: even when no check is showing yet. */
  recheck({ always = false } = {}) {
    if (!always && $('capability').hidden) return;
    let entry;
    try {
      entry = this.selectedEntry();
    } catch (e) {
      this.checkSeq += 1;
      $('capability').hidden = false;
      $('capability').className = 'card cannot';
      $('capability').replaceChildren(...errorNodes(e));
      return;
    }
    this.checkFor(entry).catch((e) => console.error(e));
  }

  async loadModel(entry, { quiet = false } = {}) {
    const { state } = this;
    if (!quiet) {
      const cap = await this.checkFor(entry);
      if (cap.error) throw cap.error;
      if (cap.verdict === 'cannot') throw Object.assign(new Error('This browser cannot run this model (see the check above).'), { name: 'BadInput' });
    }
    $('load-progress').hidden = false;
    // A hub model is downloaded (and converted when needed) into the cache first; the engine then
    // loads it from there like any package.
    if (entry.hub && !entry.model) {
      // Stopping keeps what is done in the cache: loading again resumes.
      $('load-stop').hidden = false;
      $('load-stop').onclick = () => state.engine.cancelPrepare().catch(() => {});
      try {
        await this.hub.prepare(entry, ({ fraction, text }) => {
          $('load-bar').value = fraction;
          $('load-text').textContent = text;
        });
      } finally {
        $('load-stop').hidden = true;
      }
    }
    const meter = new DownloadMeter();
    const onProgress = (e) => {
      $('load-bar').value = e.total ? e.done / e.total : 0;
      $('load-text').textContent = meter.text(e);
    };
    const r = await state.engine.load(entry.model, { sampler: entry.sampler, maxBindingBytes: this.maxBindingBytes, onProgress });
    const kind = (await fetchManifest(entry.model)).kind;
    state.model = { entry, kind, device: r.device, kernels: r.kernels, hasSampler: r.hasSampler };
    $('device').textContent = `Loaded ${entry.hub ? `${entry.label} (${kind})` : kind} on ${r.device}${r.reused ? ' (kept from before)' : ''}.${r.hasSampler ? '' : ' No VGGT package: frames are picked uniformly and there is no 3D view.'}`;
    $('load-text').textContent = `loaded (${$('load-text').textContent})`;
    // The model runs, but could not be kept for next time (a full quota says how much to free).
    if (r.report?.cache_warning) banner(r.report.cache_warning, 'info');
    this.renderPresets();
    this.refreshCache();
  }

  // ---- video -----------------------------------------------------------------------------------

  async releaseVideo() {
    const { state } = this;
    const a = state.analysed;
    state.analysed = null;
    $('see-section').hidden = true;
    if (a?.video && state.engine && !state.engine.dead) await state.engine.release(a.video).catch(() => {});
  }

  /** The context is sized for the longest answer on offer, so changing it later needs no re-encode
   * (the KV cache of 1 024 more tokens is about 37 MB for the 3B model). */
  maxNewOnOffer() {
    return Math.max(...[...$('max-new').options].map((o) => Number(o.value)));
  }

  /** Encodes the chosen frames; `key` (optional) names the video so that an engine which keeps
   * encodings (the extension's) can hand back the same one without encoding again. */
  async encodeFrames(a, { key } = {}) {
    this.stages.start('preprocessing');
    const video = await this.state.engine.encode(a.frames, {
      maxNew: this.maxNewOnOffer(),
      key,
      onProgress: (e) => {
        if (e.stage === 'done') this.stages.finish();
        else this.stages.start(e.stage);
      },
    });
    if (video.reused) this.stages.note('(the encoding kept from before: nothing encoded again)');
    a.video = video;
    a.tokens = video.tokens;
  }

  async showSeen(a) {
    const { state } = this;
    $('see-section').hidden = false;
    showThumbnails($('thumbs'), a.frames, a.times, (i, fig) => {
      for (const f of $('thumbs').children) f.classList.toggle('hl', f === fig && !fig.classList.contains('hl'));
      state.view?.highlightFrame(fig.classList.contains('hl') && a.sample ? a.sample.selected[i] : null);
    });
    const canvas = $('view3d');
    if (!a.sample) {
      canvas.hidden = true;
      $('view-note').textContent = 'No 3D view: it comes from space-aware sampling, which needs a VGGT package and a video of more than one frame.';
      $('view-reset').hidden = true;
      return;
    }
    canvas.hidden = false;
    $('view-note').textContent = VIEW_NOTE;
    $('view-reset').hidden = false;
    try {
      if (!state.view) {
        const { PointCloudView } = await import('./view3d/view3d.js');
        state.view = await PointCloudView.create(canvas, { onError: (e) => banner(`3D view: ${e.message ?? e}`) });
      }
      const s = a.sample;
      state.view.setScene({ points: s.points, colors: s.colors, pointFrame: s.point_frame, cameras: s.cameras, selected: Array.from(s.selected) });
      window.__viewRendered = true;
    } catch (e) {
      $('view-note').textContent = `The 3D view could not start: ${e.message}`;
    }
  }

  // ---- asking ----------------------------------------------------------------------------------

  async ask() {
    const { state, stages } = this;
    const question = $('question').value.trim();
    if (!question) throw Object.assign(new Error('Type a question, or pick one of the question types above.'), { name: 'BadInput' });
    if (!state.analysed) await this.prepareAsk();
    const entry = logEntry($('log'), question);
    state.asking = true;
    state.stopRequested = false;
    this.setButtons();
    try {
      const r = await this.guarded(async () => {
        entry.answer.textContent = '';
        stages.start('prefill');
        const t0 = performance.now();
        let first = null;
        let pieces = 0;
        state.stopper = new AbortController();
        const answer = state.engine.ask(question, { video: state.analysed.video, maxNew: Number($('max-new').value), signal: state.stopper.signal });
        try {
          // Rendered as text only (textContent), never as HTML.
          for await (const piece of answer) {
            if (first === null) { first = performance.now(); stages.start('answer'); }
            pieces += 1;
            entry.answer.textContent += piece;
            const secs = (performance.now() - first) / 1000;
            $('gen-stats').textContent = secs > 0 ? `${(pieces / secs).toFixed(1)} pieces/s` : '';
          }
        } catch (e) {
          if (e.name !== 'AbortError') throw e; // Stop: the reply so far is the answer
        }
        const out = await answer.result;
        stages.finish();
        out.ms = performance.now() - t0;
        return out;
      });
      entry.answer.textContent = r.text;
      if (state.stopRequested) entry.answer.classList.add('stopped');
      const s = r.stats;
      const tps = s.decode_ms > 0 ? (s.new_tokens / (s.decode_ms / 1000)).toFixed(1) : '–';
      entry.stats.textContent = `${s.prompt_tokens} prompt tokens (${s.prefilled_tokens} prefilled in ${(s.prefill_ms / 1000).toFixed(1)} s, the rest reused from the ${state.analysed?.textOnly ? "conversation's" : "video's"} cache); ${s.new_tokens} tokens at ${tps} tok/s`;
      $('gen-stats').textContent = `${tps} tok/s`;
    } catch (e) {
      entry.answer.textContent += ` [failed: ${e.message}]`;
      throw e;
    } finally {
      state.asking = false;
      state.stopper = null;
      this.setButtons();
    }
  }

  renderPresets() {
    $('presets').replaceChildren(...PRESETS.map((p) => {
      const b = el('button', { type: 'button', title: p.type }, p.label);
      b.onclick = () => { $('question').value = presetText(p, this.state.model?.kind); $('question').focus(); };
      return b;
    }));
  }

  // ---- cache panel -----------------------------------------------------------------------------

  async refreshCache() {
    const body = $('cache-table').querySelector('tbody');
    try {
      const pkgs = await listCachedPackages();
      body.replaceChildren(...pkgs.map((p) => {
        const del = el('button', { type: 'button' }, 'Delete');
        del.onclick = async () => { await deleteCachedPackage(p.base); this.hub?.cacheChanged(); this.refreshCache(); this.recheck(); };
        const name = p.hub
          ? el('td', { title: p.base }, p.hub.repo, el('span', { className: 'muted' }, ` · commit ${p.hub.commit.slice(0, 10)}${p.hub.endpoint === HUB_DEFAULT ? '' : ` · ${p.hub.endpoint}`}`))
          : el('td', {}, p.base);
        return el('tr', {}, name, el('td', {}, fmtBytes(p.bytes)), el('td', {}, p.complete ? 'complete' : `partial (${p.files} files)`), el('td', {}, del));
      }));
      $('cache-total').textContent = `(${pkgs.length}, ${fmtBytes(pkgs.reduce((a, p) => a + p.bytes, 0))})`;
      const s = await storageSummary();
      $('storage').textContent = s ? `${this.owner} uses ${fmtBytes(s.usage)} of ${fmtBytes(s.quota)}${s.persisted ? ' (persistent)' : ''}.` : '';
    } catch (e) {
      $('storage').textContent = `The cache cannot be read: ${e.message}`;
    }
  }

  // ---- wiring ----------------------------------------------------------------------------------

  /** The shared controls' handlers. `choice`: the remembered model choice; `beforeLoad`: what the
   * page does before a load (the extension asks for the hub's host permission); `onSettings`: a
   * frame setting changed. */
  wire({ choice = 'demo', beforeLoad = async () => {}, onSettings = () => {} } = {}) {
    const { state } = this;
    const showChoice = () => {
      if ($('custom-urls')) $('custom-urls').hidden = this.modelChoice() !== 'custom';
      $('hub-panel').hidden = this.modelChoice() !== 'hub';
    };
    const saved = document.querySelector(`input[name=model][value="${CSS.escape(choice)}"]`);
    if (saved) saved.checked = true;
    showChoice();
    for (const r of document.querySelectorAll('input[name=model]')) {
      r.onchange = () => {
        showChoice();
        this.remember('model-choice', this.modelChoice());
        this.recheck({ always: this.modelChoice() === 'hub' });
      };
    }
    this.hub = new HubChooser({ engine: () => state.engine, onChange: () => this.modelChoice() === 'hub' && this.recheck({ always: true }) });
    $('check').onclick = () => this.busy(async () => { await this.checkFor(this.selectedEntry()); });
    $('load').onclick = () => this.busy(async () => { await beforeLoad(this.modelChoice()); await this.loadModel(this.selectedEntry()); });
    $('ask').onclick = () => this.busy(() => this.ask());
    $('stop').onclick = () => {
      state.stopRequested = true;
      state.stopper?.abort();
    };
    $('question').onkeydown = (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('ask').click(); };
    for (const id of ['frames', 'sampling']) {
      $(id).onchange = () => {
        onSettings(id);
        if (state.analysed) this.busy(() => this.releaseVideo());
        this.recheck(); // the memory needed depends on both
      };
    }
    $('view-reset').onclick = () => state.view?.resetView();
    $('cache-refresh').onclick = () => this.refreshCache();
    $('cache-clear').onclick = async () => { await caches.delete(PACKAGE_CACHE); this.hub?.cacheChanged(); this.refreshCache(); this.recheck(); };
    $('cache-panel').ontoggle = () => $('cache-panel').open && this.refreshCache();
    this.renderPresets();
    this.setButtons();
  }
}
