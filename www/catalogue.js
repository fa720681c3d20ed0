// The hub part of the model choice: the catalogue's real checkpoints (models.js) or any repository
// id typed in, for the model and for the VGGT frame sampler; the hub settings; what the engine's
// `inspect` says before anything is downloaded; and `prepare` (download, and conversion in this
// browser when the repository holds an original checkpoint) with one progress line. Text from the
// hub (ids, messages) only ever reaches the page as textContent.
import { CATALOGUE, HUB_DEFAULT, fmtBytes, hubSettings, saveHubSettings, parseRepoInput, normaliseEndpoint, fetchManifest } from './models.js';
import { $, el, JobMeter } from './ui.js';

const OTHER = 'other';
const NONE = 'none';
const ROLE_WORDS = { model: 'model', sampler: 'frame sampler' };
// Answers from the hub itself: a copy downloaded earlier must not hide these.
const DEFINITE = new Set(['RepoNotFound', 'RevisionNotFound', 'AccessDenied', 'UnsupportedModel', 'BadInput']);
const REMEMBERED = 'hub-downloaded';

const badInput = (message) => Object.assign(new Error(message), { name: 'BadInput' });
const pageOf = (endpoint, repo) => `${endpoint}/${repo.split('/').map(encodeURIComponent).join('/')}`;

/** One choice, the model or the frame sampler: a catalogue entry, another repository (id and
 * revision), or for the sampler none. Elements: #hub-{name}, #hub-{name}-other, -repo, -rev, -about. */
class Slot {
  constructor(name, role, onChange) {
    this.role = role;
    this.key = `hub-${name}`;
    this.select = $(`hub-${name}`);
    this.other = $(`hub-${name}-other`);
    this.repo = $(`hub-${name}-repo`);
    this.rev = $(`hub-${name}-rev`);
    this.about = $(`hub-${name}-about`);
    this.select.replaceChildren(
      ...CATALOGUE.filter((c) => c.repo && c.role === role)
        .map((c) => el('option', { value: c.repo }, `${c.label} — ${c.repo}${c.recommended ? ' (recommended)' : ''}`)),
      ...(role === 'sampler' ? [el('option', { value: NONE }, 'none: uniform frames, no 3D view')] : []),
      el('option', { value: OTHER }, 'another repository…'),
    );
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(this.key) ?? 'null'); } catch { /* a damaged setting: the defaults */ }
    if (saved && [...this.select.options].some((o) => o.value === saved.choice)) this.select.value = saved.choice;
    this.repo.value = saved?.repo ?? '';
    this.rev.value = saved?.revision ?? '';
    const changed = () => {
      localStorage.setItem(this.key, JSON.stringify({ choice: this.select.value, repo: this.repo.value.trim(), revision: this.rev.value.trim() }));
      this.render();
      onChange();
    };
    this.select.onchange = changed;
    // A typed id is checked when the field is left or Enter is pressed, not at every key.
    this.repo.onchange = changed;
    this.rev.onchange = changed;
    this.render();
  }

  render() {
    const v = this.select.value;
    this.other.hidden = v !== OTHER;
    const c = CATALOGUE.find((e) => e.repo === v);
    const { endpoint } = hubSettings();
    const link = (repo) => el('a', { href: pageOf(endpoint, repo), target: '_blank', rel: 'noopener noreferrer' }, 'hub page');
    if (c) {
      this.about.replaceChildren(`${c.description} About ${fmtBytes(c.approxBytes)} to download (${(c.params / 1e9).toFixed(1)} B parameters). `, link(c.repo));
    } else if (v === OTHER) {
      const p = parseRepoInput(this.repo.value, this.rev.value);
      this.about.replaceChildren(
        this.role === 'model'
          ? 'Any Spatial-MLLM (v1.0 or v1.1) or Qwen2.5-VL checkpoint in safetensors, or a package made by spatial-mllm convert. '
          : 'A VGGT checkpoint in safetensors (with its point and camera heads), or a package made by spatial-mllm convert. ',
        'Type owner/name, owner/name@revision or paste the repository\'s address. ',
        ...(p ? [link(p.repo)] : []),
      );
    } else {
      this.about.replaceChildren('Frames are picked evenly through the video; there is no 3D view.');
    }
  }

  /** {repo, revision, label, entry}, or null for no sampler; a BadInput error for an unusable id. */
  pick() {
    const v = this.select.value;
    if (v === NONE) return null;
    if (v === OTHER) {
      const p = parseRepoInput(this.repo.value, this.rev.value);
      if (!p) throw badInput(`Enter the ${ROLE_WORDS[this.role]}'s repository id as owner/name (optionally with a revision: a branch, tag or commit).`);
      const entry = CATALOGUE.find((c) => c.repo === p.repo) ?? null;
      return { ...p, label: entry?.label ?? p.repo, entry };
    }
    const entry = CATALOGUE.find((c) => c.repo === v);
    return { repo: entry.repo, revision: 'main', label: entry.label, entry };
  }
}

/** The hub's error with the repository it concerns, and a page to open where that helps. */
function hubError(e, pick, endpoint) {
  let msg = e.message ?? String(e);
  if (/unknown engine operation/.test(msg)) msg = `this build of the engine cannot read the hub yet (${msg}). The demo and packages by URL still work.`;
  const what = `${pick.repo}${pick.revision !== 'main' ? ` @ ${pick.revision}` : ''}`;
  const out = Object.assign(new Error(msg.includes(pick.repo) ? msg : `${what}: ${msg}`), { name: e.name });
  if (['AccessDenied', 'RepoNotFound', 'RevisionNotFound'].includes(e.name)) out.page = pageOf(endpoint, pick.repo);
  return out;
}

function remembered() {
  try { return JSON.parse(localStorage.getItem(REMEMBERED) ?? '{}'); } catch { return {}; }
}
const rememberKey = (endpoint, pick) => `${endpoint} ${pick.repo} ${pick.revision}`;

export class HubChooser {
  /** `engine()`: the engine facade now (it changes when the engine restarts); `onChange()`: the
   * choice or a setting changed (the app checks the new choice). */
  constructor({ engine, onChange }) {
    this.engine = engine;
    this.onChange = onChange;
    this.inspected = new Map(); // settings + repo + revision -> Promise of inspect's answer
    this.model = new Slot('model', 'model', onChange);
    this.sampler = new Slot('sampler', 'sampler', onChange);
    this.#wireSettings();
  }

  #wireSettings() {
    const s = hubSettings();
    const ep = $('hub-endpoint');
    const tok = $('hub-token');
    const note = $('hub-endpoint-note');
    ep.placeholder = HUB_DEFAULT;
    ep.value = s.endpoint === HUB_DEFAULT ? '' : s.endpoint;
    if (s.fromUrl) {
      ep.disabled = true;
      note.textContent = 'Set by this page\'s address (?hub=…).';
    }
    tok.value = s.token;
    ep.onchange = () => {
      note.textContent = ep.value.trim() && !normaliseEndpoint(ep.value) ? `Not an http(s) address: ${HUB_DEFAULT} is used.` : '';
      saveHubSettings({ endpoint: ep.value });
      this.#settingsChanged();
    };
    tok.onchange = () => { saveHubSettings({ token: tok.value }); this.#settingsChanged(); };
    $('hub-token-forget').onclick = () => { tok.value = ''; saveHubSettings({ token: '' }); this.#settingsChanged(); };
  }

  /** Packages were deleted from the cache: what inspect said about `cached` is out of date. */
  cacheChanged() {
    this.inspected.clear();
  }

  #settingsChanged() {
    this.inspected.clear();
    this.model.render();
    this.sampler.render();
    this.onChange();
  }

  /** The entry the app checks and loads: the picks now; `model` / `sampler` (package URLs) are
   * filled in by `prepare`. */
  entry() {
    const model = this.model.pick();
    const sampler = this.sampler.pick();
    return { id: 'hub', label: `${model.repo}${model.revision !== 'main' ? `@${model.revision}` : ''}`, hub: { model, sampler }, model: null, sampler: null };
  }

  /** inspect's answer for a pick, asked once per settings and revision (failures are asked again). */
  inspect(pick) {
    const { endpoint, token } = hubSettings();
    const key = JSON.stringify([endpoint, !!token, pick.repo, pick.revision]);
    let p = this.inspected.get(key);
    if (!p) {
      p = this.#inspect(pick, endpoint, token);
      this.inspected.set(key, p);
      p.catch(() => this.inspected.delete(key));
    }
    return p;
  }

  async #inspect(pick, endpoint, token) {
    try {
      return await this.engine().inspect(pick.repo, { revision: pick.revision, endpoint, token: token || undefined });
    } catch (e) {
      // The hub out of reach (offline, say) and this revision downloaded before: use that copy.
      const copy = DEFINITE.has(e.name) ? null : await this.#downloadedCopy(pick, endpoint);
      if (copy) return copy;
      throw hubError(e, pick, endpoint);
    }
  }

  async #downloadedCopy(pick, endpoint) {
    const r = remembered()[rememberKey(endpoint, pick)];
    if (!r) return null;
    try {
      const m = await fetchManifest(r.base, { cacheOnly: true });
      return { repo: pick.repo, revision: pick.revision, commit: r.commit, route: 'package', kind: m.kind, downloadBytes: 0, packageBytes: m.bytes, manifestJson: m.text, base: r.base, cached: true, offline: true };
    } catch {
      return null;
    }
  }

  /** What app.js's check needs: {kind, modelManifest, samplerManifest, downloadBytes, storageBytes, lines}
   * (lines: one element per repository, for the check's card). */
  async describe(entry) {
    const picks = [['model', entry.hub.model], ['sampler', entry.hub.sampler]].filter(([, p]) => p);
    const infos = await Promise.all(picks.map(([, p]) => this.inspect(p)));
    const [model, sampler = null] = infos;
    if (model.kind === 'vggt') throw badInput(`${entry.hub.model.repo} is a VGGT checkpoint: choose it as the frame sampler, with a model to answer.`);
    if (sampler && sampler.kind !== 'vggt') throw badInput(`${entry.hub.sampler.repo} is a ${sampler.kind} model, not a VGGT frame sampler.`);
    entry.info = { model, sampler };
    return {
      kind: model.kind,
      modelManifest: model.manifestJson,
      samplerManifest: sampler?.manifestJson ?? null,
      downloadBytes: infos.reduce((a, i) => a + (i.cached ? 0 : i.downloadBytes), 0),
      storageBytes: infos.reduce((a, i) => a + (i.cached ? 0 : i.packageBytes), 0),
      lines: picks.map(([, p], i) => describeLine(p, infos[i])),
    };
  }

  /** Downloads (and converts) what is not in the cache yet; sets entry.model / entry.sampler to the
   * package URLs for the engine's `load`. `onProgress({fraction, text})`. */
  async prepare(entry, onProgress) {
    const { endpoint, token } = hubSettings();
    const jobs = [['model', entry.hub.model], ['sampler', entry.hub.sampler]].filter(([, p]) => p);
    for (const [i, [slot, pick]] of jobs.entries()) {
      const info = entry.info?.[slot] ?? (await this.inspect(pick));
      let { base, commit } = info;
      if (!info.cached) {
        const meter = new JobMeter(jobs.length > 1 ? `${pick.label} (${i + 1} of ${jobs.length})` : pick.label);
        onProgress({ fraction: 0, text: `${meter.label}: starting…` });
        let shown = { at: 0, phase: null };
        const show = (e) => {
          const line = meter.update(e); // every event, for the rate; the page at most 8 times a second
          const now = performance.now();
          if (now - shown.at < 125 && e.phase === shown.phase && e.done < e.total) return;
          shown = { at: now, phase: e.phase };
          onProgress(line);
        };
        try {
          const r = await this.engine().prepare(pick.repo, { revision: pick.revision, endpoint, token: token || undefined, onProgress: show });
          ({ base, commit } = r);
        } catch (e) {
          throw hubError(e, pick, endpoint);
        } finally {
          this.inspected.clear(); // what is cached has changed
        }
      }
      const all = remembered();
      all[rememberKey(endpoint, pick)] = { commit, base };
      localStorage.setItem(REMEMBERED, JSON.stringify(all));
      entry[slot] = base;
    }
  }
}

function describeLine(pick, info) {
  const commit = info.commit && info.commit !== pick.revision ? ` (commit ${info.commit.slice(0, 10)})` : '';
  let what;
  if (info.cached) what = `already downloaded: ${fmtBytes(info.packageBytes)} in this browser${info.offline ? ' (the hub cannot be reached; this is the copy downloaded before)' : ''}.`;
  else if (info.route === 'convert') what = `download ${fmtBytes(info.downloadBytes)} (the original checkpoint), converted in this browser into a ${fmtBytes(info.packageBytes)} package.`;
  else what = `download ${fmtBytes(info.downloadBytes)} (a converted package).`;
  const id = `${pick.label === pick.repo ? '' : `${pick.repo} `}@ ${pick.revision}${commit}`;
  return el('div', {}, el('strong', {}, pick.label), ' ', el('span', { className: 'muted' }, id), `: ${what}`);
}

/** The card's content for a failed check: the message, and what to open or set. */
export function errorNodes(e) {
  return [
    el('div', {}, e.message),
    e.page ? el('div', {}, el('a', { href: e.page, target: '_blank', rel: 'noopener noreferrer' }, 'Open the repository page')) : null,
  ].filter(Boolean);
}
