// The Hugging Face hub as the app uses it: a revision resolved to its commit (every file is then
// read by that commit, so a later push never mixes files), files and byte ranges fetched with the
// token where one is set, 429 and 5xx answers and dropped connections retried with backoff (a
// dropped body resumes with a Range request), and the hub's answers turned into named errors.

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const ATTEMPTS = 6;

export class HubError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason ?? new DOMException('aborted', 'AbortError')); }, { once: true });
});

/** `org/name` or `org/name@revision`. */
export function parseRepoId(text) {
  const m = /^\s*([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?\s*$/.exec(text ?? '');
  if (!m) throw new HubError('BadInput', `"${text}" is not a repository id: write it as org/name, optionally @revision (a branch, tag or commit)`);
  return { repo: m[1], revision: m[2] ?? 'main' };
}

export class HubClient {
  constructor({ endpoint, token } = {}) {
    this.endpoint = (endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
    this.token = token || '';
    /** Requests retried so far (for tests and the UI). */
    this.retries = 0;
  }

  fileUrl(repo, commit, path) {
    return `${this.endpoint}/${repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** What a failed answer means for `repo`, as a named error. */
  async explain(res, repo, what) {
    const code = res.headers.get('x-error-code') ?? '';
    const page = `${this.endpoint}/${repo}`;
    if (code === 'RepoNotFound' || (res.status === 404 && what === 'repo')) {
      return new HubError('RepoNotFound', `${repo} was not found on ${this.endpoint}: check the repository id (org/name)${this.token ? '' : '; a private repository also needs an access token (Advanced)'}`);
    }
    if (code === 'RevisionNotFound') return new HubError('RevisionNotFound', `${repo} has no revision "${what}": give a branch, tag or commit that exists`);
    if (code === 'EntryNotFound' || res.status === 404) return new HubError('HubError', `${repo} has no file ${what} at this revision`);
    if (res.status === 401 || res.status === 403) {
      const gated = code === 'GatedRepo';
      const kind = gated ? 'gated (its authors must grant access)' : 'private';
      const todo = this.token
        ? (gated ? `your token has no access yet: accept the conditions on ${page} with the same account` : 'your token cannot read it: use a token of an account that can')
        : `give a read token (from ${this.endpoint}/settings/tokens) under Advanced${gated ? `, after accepting the conditions on ${page}` : ''}`;
      return new HubError('AccessDenied', `${repo} is ${kind} (HTTP ${res.status}): ${todo}`);
    }
    return new HubError('HubError', `${this.endpoint} answered HTTP ${res.status} for ${repo} (${what})`);
  }

  /**
   * fetch with the token (the browser drops it on a redirect to another origin), retrying 429,
   * 5xx and network errors with exponential backoff (Retry-After honoured, capped at 30 s).
   */
  async request(url, { headers = {}, signal, repo = '', what = '' } = {}) {
    let lastError = '';
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) this.retries++;
      let res;
      try {
        const h = { ...headers };
        if (this.token) h.Authorization = `Bearer ${this.token}`;
        res = await fetch(url, { headers: h, signal, cache: 'no-store' });
      } catch (e) {
        if (signal?.aborted) throw e;
        lastError = e.message;
        await sleep(Math.min(30_000, 500 * 2 ** attempt), signal);
        continue;
      }
      if (res.status === 429 || res.status >= 500) {
        lastError = `HTTP ${res.status}`;
        const after = Number(res.headers.get('retry-after'));
        const wait = Number.isFinite(after) && res.headers.has('retry-after') ? after * 1000 : 500 * 2 ** attempt;
        await res.body?.cancel();
        await sleep(Math.min(30_000, wait), signal);
        continue;
      }
      if (!res.ok) throw await this.explain(res, repo, what);
      return res;
    }
    throw new HubError('HubError', `${url} still failed after ${ATTEMPTS} attempts (${lastError}); the hub may be busy: try again later, the download resumes where it stopped`);
  }

  /** The revision's commit and its files: Map(path -> {size, sha256 (LFS files) or null}). */
  async resolve(repo, revision = 'main', signal) {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const res = await this.request(url, { signal, repo, what: revision === 'main' ? 'repo' : revision });
    const info = await res.json();
    if (!/^[0-9a-f]{40}$/.test(info.sha ?? '')) throw new HubError('HubError', `${this.endpoint} gave no commit for ${repo}@${revision}`);
    const files = new Map((info.siblings ?? []).map((s) => [s.rfilename, { size: s.size ?? s.lfs?.size ?? null, sha256: s.lfs?.sha256 ?? null }]));
    return { commit: info.sha, files };
  }

  async text(repo, commit, path, signal) {
    return (await this.request(this.fileUrl(repo, commit, path), { signal, repo, what: path })).text();
  }

  /** Bytes start..end (exclusive) of a file, in one buffer (headers: small reads). */
  async range(repo, commit, path, start, end, signal) {
    const out = new Uint8Array(end - start);
    let at = 0;
    for await (const chunk of this.stream(repo, commit, path, start, end, signal)) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  /**
   * Bytes start..end of a file as an async iterable of chunks; a connection that drops is resumed
   * with a Range request from the last byte received (up to six times in a row).
   */
  async *stream(repo, commit, path, start, end, signal) {
    const url = this.fileUrl(repo, commit, path);
    let at = start;
    let stalls = 0;
    let lastError = 'the body ended early';
    while (at < end) {
      const res = await this.request(url, { headers: { Range: `bytes=${at}-${end - 1}` }, signal, repo, what: path });
      if (res.status !== 206 && at > 0) {
        await res.body?.cancel();
        throw new HubError('HubError', `${url} ignores Range requests, which reading part of a file needs`);
      }
      const before = at;
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          const take = value.subarray(0, Math.min(value.length, end - at));
          at += take.length;
          if (take.length) yield take;
          if (at >= end) break;
        }
      } catch (e) {
        if (signal?.aborted) throw e;
        lastError = e.message;
      } finally {
        reader.cancel().catch(() => {});
      }
      if (at < end) {
        // A dropped connection: resume from the last byte, giving up after six tries in a row
        // that brought nothing.
        stalls = at === before ? stalls + 1 : 0;
        if (stalls > ATTEMPTS) throw new HubError('HubError', `${url}: the connection keeps dropping at byte ${at} (${lastError}); try again later, it resumes where it stopped`);
        this.retries++;
      }
    }
  }
}
