// A mock of the Hugging Face hub's file and API routes, for offline tests of the native hub client
// (tests/hub.rs) and of the browser app. No dependencies (Node 20).
//
//   import { startMockHub } from './tools/hub/mock-hub.mjs';
//   const hub = await startMockHub({ repos: { 'Test/qwen': { dir: 'tests/fixtures/qwen2.5-vl' } }, port: 0 });
//   hub.url, hub.lfsUrl, hub.requests, hub.faults, hub.addRepo(id, {dir, token, gated}), hub.commit(id, rev), await hub.close()
//
// Command line (for Rust tests): prints one JSON line {"url", "lfsUrl"} once listening.
//   node tools/hub/mock-hub.mjs --repo Test/qwen=tests/fixtures/qwen2.5-vl [--repo ID=DIR[,token=T][,gated]]... [--port N]
// and on the hub origin: POST /_mock/faults (one fault or an array), GET /_mock/requests,
// DELETE /_mock/requests, POST /_mock/repos ({id, dir, token?, gated?}).
//
// Routes (as the real hub):
//   GET /api/models/{org}/{name}[/revision/{rev}][?blobs=true]
//   HEAD|GET /{org}/{name}/resolve/{rev}/{path}   (LFS files: 302 to the LFS origin)
//   HEAD|GET {lfsUrl}/lfs/{sha256}?repo=..&file=..
// A repository's files are every regular file under its dir. `main` and the repository's commit
// (sha1 of the id and of the content) are its only revisions. LFS files: *.safetensors, *.bin,
// *.pt and files over 10 MiB.
//
// Faults (hub.faults, or POST /_mock/faults), each used by the next `times` (default 1) requests
// whose URL (path and query, raw or decoded) contains `match` or matches it as a RegExp source:
//   {match, status: 429|500|503|..., times, retryAfter?}  an error answer (429: Retry-After, default 1)
//   {match, dropAfter: n, times}   a file body cut after n bytes (the socket is destroyed); bodies
//                                  of n bytes or fewer pass (and do not use the fault up)
//   {match, stallAfter: n, ms, times}  a file body paused for `ms` after n bytes (a slow
//                                  connection; bodies of n bytes or fewer pass)
//   {match, corrupt: true, times}  an LFS blob served with its middle byte flipped (times: Infinity
//                                  allowed); answers to ranges without that byte pass
// Status faults apply to any request but OPTIONS preflights; dropAfter to answers that carry file
// bytes; corrupt to LFS blob answers.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const LFS_THRESHOLD = 10 * 1024 * 1024;
const LFS_EXT = /\.(safetensors|bin|pt)$/;
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Range, If-Range, If-None-Match, Content-Type',
  'Access-Control-Expose-Headers':
    'ETag, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, Content-Range, Accept-Ranges, Content-Length, X-Error-Code, X-Error-Message, Retry-After, Location',
  'Access-Control-Max-Age': '600',
};

// absolute path -> {size, mtimeMs, sha1 (git blob), sha256}; hashed on first use, in 1 MiB reads
// (synchronous, so that hub.commit() answers at once; fixtures are small).
const hashCache = new Map();

function hashFile(abs, st) {
  const hit = hashCache.get(abs);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit;
  const sha1 = crypto.createHash('sha1');
  sha1.update(`blob ${st.size}\0`);
  const sha256 = crypto.createHash('sha256');
  const fd = fs.openSync(abs, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      sha1.update(buf.subarray(0, n));
      sha256.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  const entry = { size: st.size, mtimeMs: st.mtimeMs, sha1: sha1.digest('hex'), sha256: sha256.digest('hex') };
  hashCache.set(abs, entry);
  return entry;
}

function walk(dir, rel = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const abs = path.join(dir, r);
    let st;
    try {
      st = fs.statSync(abs);
    } catch {
      continue;
    }
    if (st.isDirectory()) out.push(...walk(dir, r));
    else if (st.isFile()) out.push({ path: r, abs, st });
  }
  return out;
}

const isLfs = (f) => LFS_EXT.test(f.path) || f.st.size > LFS_THRESHOLD;

function lfsPointer(sha256, size) {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

function gitBlobSha1(text) {
  const b = Buffer.from(text);
  return crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

/** Every file of a repository with its hashes; the commit sha. */
function snapshot(id, repo) {
  const files = walk(path.resolve(repo.dir)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of files) {
    const h = hashFile(f.abs, f.st);
    f.sha1 = h.sha1;
    f.sha256 = h.sha256;
    f.size = f.st.size;
    f.lfs = isLfs(f);
  }
  const content = crypto.createHash('sha1');
  for (const f of files) content.update(`${f.path}\0${f.size}\0${f.sha1}\n`);
  const commit = crypto.createHash('sha1').update(`${id}\n${content.digest('hex')}`).digest('hex');
  return { files, commit };
}

function parseRange(header, size) {
  // -> null (no or ignored range), 'bad' (unsatisfiable) or {start, end} (inclusive)
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start, end;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'bad';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (start >= size) return 'bad';
  return { start, end };
}

function matches(fault, url) {
  const m = fault.match;
  if (m === undefined || m === null || m === '') return true;
  let decoded = url;
  try {
    decoded = decodeURIComponent(url);
  } catch {}
  if (m instanceof RegExp) return m.test(url) || m.test(decoded);
  if (url.includes(m) || decoded.includes(m)) return true;
  try {
    const re = new RegExp(m);
    return re.test(url) || re.test(decoded);
  } catch {
    return false;
  }
}

export async function startMockHub({ repos = {}, port = 0, lfsPort = 0, host = '127.0.0.1' } = {}) {
  const registry = new Map();
  const requests = [];
  const faults = [];

  const addRepo = (id, { dir, token, gated = false } = {}) => {
    if (!/^[^/]+\/[^/]+$/.test(id)) throw new Error(`repository id ${id} is not ORG/NAME`);
    if (!dir || !fs.statSync(dir).isDirectory()) throw new Error(`${id}: ${dir} is not a directory`);
    registry.set(id, { dir: path.resolve(dir), token, gated: !!gated });
  };
  for (const [id, r] of Object.entries(repos)) addRepo(id, r);

  /** The first unused fault matching this request and applicable to `kind`. */
  function takeFault(url, kind, applies = () => true) {
    for (let i = 0; i < faults.length; i++) {
      const f = faults[i];
      const times = f.times === undefined ? 1 : Number(f.times);
      if (!(times > 0)) continue;
      const type = f.status ? 'status' : f.dropAfter !== undefined ? 'drop' : f.stallAfter !== undefined ? 'stall' : f.corrupt ? 'corrupt' : null;
      if (type !== kind || !matches(f, url)) continue;
      if (!applies(f)) continue;
      f.times = times - 1;
      if (f.times <= 0) faults.splice(i, 1);
      return f;
    }
    return null;
  }

  function send(res, status, headers = {}, body = '') {
    const buf = Buffer.from(body);
    res.writeHead(status, { ...CORS, 'Content-Length': buf.length, ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : buf);
  }

  function sendError(res, status, code, message, extra = {}) {
    const headers = { 'Content-Type': 'application/json', 'X-Error-Message': message, ...extra };
    if (code) headers['X-Error-Code'] = code;
    send(res, status, headers, JSON.stringify({ error: message }));
  }

  /** null when the request may read the repository, else the error answer's parts. */
  function denied(id, repo, req) {
    if (!repo.token) return null;
    const auth = req.headers.authorization;
    const given = auth && /^Bearer\s+(.+)$/i.exec(auth)?.[1].trim();
    if (given === repo.token) return null;
    if (repo.gated) {
      return given
        ? [403, 'GatedRepo', `Access to model ${id} is restricted and you are not in the authorized list. Visit https://huggingface.co/${id} to ask for access.`]
        : [401, 'GatedRepo', `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`];
    }
    return given ? [403, null, `Your token does not grant access to ${id}`] : [401, null, 'Invalid username or password.'];
  }

  /** Stream bytes [start, end] of a file, with optional corruption (one flipped byte at `flipAt`)
   *  and an early cut after `dropAfter` body bytes. */
  async function streamFile(res, abs, start, end, { flipAt = -1, dropAfter = -1, stallAfter = -1, stallMs = 0 } = {}) {
    if (res.req.method === 'HEAD' || end < start) return res.end();
    let pos = start;
    let sent = 0;
    const stream = fs.createReadStream(abs, { start, end, highWaterMark: 64 * 1024 });
    try {
      for await (let chunk of stream) {
        if (flipAt >= pos && flipAt < pos + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[flipAt - pos] ^= 0xff;
        }
        pos += chunk.length;
        if (dropAfter >= 0 && sent + chunk.length >= dropAfter) {
          const part = chunk.subarray(0, dropAfter - sent);
          stream.destroy();
          await new Promise((r) => res.write(part, () => r()));
          // Let the bytes leave before the connection dies.
          await new Promise((r) => setTimeout(r, 20));
          res.socket?.destroy();
          res.destroy();
          return;
        }
        if (stallAfter >= 0 && sent < stallAfter && sent + chunk.length >= stallAfter) {
          const head = chunk.subarray(0, stallAfter - sent);
          if (!res.write(head)) await new Promise((r) => res.once('drain', r));
          await new Promise((r) => setTimeout(r, stallMs));
          if (res.destroyed) return stream.destroy();
          chunk = chunk.subarray(head.length);
          sent += head.length;
        }
        sent += chunk.length;
        if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
        if (res.destroyed) return stream.destroy();
      }
      res.end();
    } catch (e) {
      res.destroy(e);
    }
  }

  /** 200 / 206 / 416 answer with a file's bytes. */
  async function serveBytes(req, res, url, file, etag, headers, corruptOk) {
    const size = file.size;
    let range = parseRange(req.headers.range, size);
    const ifRange = req.headers['if-range'];
    if (range && ifRange && ifRange !== etag && ifRange !== etag.replace(/^W\//, '')) range = null;
    if (range === 'bad') {
      return send(res, 416, { ...headers, 'Content-Range': `bytes */${size}` });
    }
    const [start, end] = range ? [range.start, range.end] : [0, size - 1];
    const flipAt = Math.floor(size / 2);
    // Corruption applies to answers holding the flipped byte, a cut to bodies longer than the
    // bytes it lets through: neither to a header read.
    const corrupt = corruptOk && req.method === 'GET' ? takeFault(url, 'corrupt', () => start <= flipAt && flipAt <= end) : null;
    const drop = req.method === 'GET' ? takeFault(url, 'drop', (f) => Number(f.dropAfter) < end - start + 1) : null;
    const stall = req.method === 'GET' ? takeFault(url, 'stall', (f) => Number(f.stallAfter) < end - start + 1) : null;
    const h = {
      ...CORS,
      ...headers,
      ETag: etag,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'Content-Length': Math.max(0, end - start + 1),
    };
    if (range) h['Content-Range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range ? 206 : 200, h);
    await streamFile(res, file.abs, start, end, {
      flipAt: corrupt ? flipAt : -1,
      dropAfter: drop ? Number(drop.dropAfter) : -1,
      stallAfter: stall ? Number(stall.stallAfter) : -1,
      stallMs: stall ? Number(stall.ms ?? 10_000) : 0,
    });
  }

  async function findRepo(res, req, id) {
    const repo = registry.get(id);
    if (!repo) {
      sendError(res, 404, 'RepoNotFound', `Repository not found: ${id}`);
      return null;
    }
    const d = denied(id, repo, req);
    if (d) {
      sendError(res, d[0], d[1], d[2]);
      return null;
    }
    return { repo, snap: snapshot(id, repo) };
  }

  function knownRevision(snap, rev) {
    return rev === 'main' || rev === snap.commit;
  }

  async function handleHub(req, res, u) {
    const url = req.url;
    const seg = u.pathname.split('/').slice(1);
    let dec;
    try {
      dec = seg.map(decodeURIComponent);
    } catch {
      return sendError(res, 400, null, 'bad URL');
    }
    // Mock control routes.
    if (dec[0] === '_mock') {
      if (dec[1] === 'requests' && req.method === 'GET') return send(res, 200, { 'Content-Type': 'application/json' }, JSON.stringify(requests));
      if (dec[1] === 'requests' && req.method === 'DELETE') {
        requests.length = 0;
        return send(res, 204);
      }
      if ((dec[1] === 'faults' || dec[1] === 'repos') && req.method === 'POST') {
        let body = '';
        for await (const c of req) body += c;
        let v;
        try {
          v = JSON.parse(body);
        } catch (e) {
          return sendError(res, 400, null, `bad JSON: ${e.message}`);
        }
        if (dec[1] === 'faults') {
          for (const f of Array.isArray(v) ? v : [v]) {
            if (f.times === null || f.times === 'Infinity') f.times = Infinity;
            faults.push(f);
          }
        } else {
          try {
            addRepo(v.id, v);
          } catch (e) {
            return sendError(res, 400, null, e.message);
          }
        }
        return send(res, 204);
      }
      if (dec[1] === 'faults' && req.method === 'DELETE') {
        faults.length = 0;
        return send(res, 204);
      }
      return sendError(res, 404, null, 'unknown mock route');
    }
    requests.push(logEntry('hub', req));
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, null, 'method not allowed');
    const fault = takeFault(url, 'status');
    if (fault) {
      const extra = {};
      if (fault.status === 429 || fault.retryAfter !== undefined) extra['Retry-After'] = String(fault.retryAfter ?? 1);
      return sendError(res, fault.status, null, `injected fault ${fault.status}`, extra);
    }
    // /api/models/{org}/{name}[/revision/{rev}]
    if (dec[0] === 'api' && dec[1] === 'models' && dec.length >= 4) {
      const id = `${dec[2]}/${dec[3]}`;
      let rev = 'main';
      if (dec.length === 6 && dec[4] === 'revision') rev = dec[5];
      else if (dec.length !== 4) return sendError(res, 404, null, 'unknown API route');
      const found = await findRepo(res, req, id);
      if (!found) return;
      const { repo, snap } = found;
      if (!knownRevision(snap, rev)) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const blobs = u.searchParams.get('blobs') === 'true';
      const siblings = snap.files.map((f) => {
        if (!blobs) return { rfilename: f.path };
        if (!f.lfs) return { rfilename: f.path, size: f.size, blobId: f.sha1 };
        const pointer = lfsPointer(f.sha256, f.size);
        return {
          rfilename: f.path,
          size: f.size,
          blobId: gitBlobSha1(pointer),
          lfs: { sha256: f.sha256, size: f.size, pointerSize: Buffer.byteLength(pointer) },
        };
      });
      const info = {
        _id: crypto.createHash('sha1').update(id).digest('hex').slice(0, 24),
        id,
        modelId: id,
        author: id.split('/')[0],
        sha: snap.commit,
        private: !!repo.token && !repo.gated,
        gated: repo.gated ? 'manual' : false,
        disabled: false,
        tags: [],
        siblings,
      };
      return send(res, 200, { 'Content-Type': 'application/json', 'X-Repo-Commit': snap.commit }, JSON.stringify(info));
    }
    // /{org}/{name}/resolve/{rev}/{path}
    if (dec.length >= 5 && dec[2] === 'resolve') {
      const id = `${dec[0]}/${dec[1]}`;
      const rev = dec[3];
      const file = dec.slice(4).join('/');
      const found = await findRepo(res, req, id);
      if (!found) return;
      const { repo, snap } = found;
      if (!knownRevision(snap, rev)) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const commitHeader = { 'X-Repo-Commit': snap.commit };
      const f = snap.files.find((x) => x.path === file);
      if (!f) return sendError(res, 404, 'EntryNotFound', `${file} does not exist on "${rev}"`, commitHeader);
      if (f.lfs) {
        const location = `${lfsUrl}/lfs/${f.sha256}?repo=${encodeURIComponent(id)}&file=${encodeURIComponent(f.path)}`;
        return send(res, 302, {
          ...commitHeader,
          Location: location,
          ETag: `"${f.sha256}"`,
          'X-Linked-Etag': `"${f.sha256}"`,
          'X-Linked-Size': String(f.size),
        });
      }
      void repo;
      return serveBytes(req, res, url, f, `"${f.sha1}"`, commitHeader, false);
    }
    return sendError(res, 404, null, `unknown route ${u.pathname}`);
  }

  async function handleLfs(req, res, u) {
    requests.push(logEntry('lfs', req));
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, null, 'method not allowed');
    const fault = takeFault(req.url, 'status');
    if (fault) {
      const extra = {};
      if (fault.status === 429 || fault.retryAfter !== undefined) extra['Retry-After'] = String(fault.retryAfter ?? 1);
      return sendError(res, fault.status, null, `injected fault ${fault.status}`, extra);
    }
    const m = /^\/lfs\/([0-9a-f]{64})$/.exec(u.pathname);
    if (!m) return sendError(res, 404, null, 'not found');
    const sha = m[1];
    const wanted = u.searchParams.get('repo');
    const ids = wanted && registry.has(wanted) ? [wanted, ...[...registry.keys()].filter((k) => k !== wanted)] : [...registry.keys()];
    for (const id of ids) {
      const snap = snapshot(id, registry.get(id));
      const f = snap.files.find((x) => x.lfs && x.sha256 === sha);
      if (f) return serveBytes(req, res, req.url, f, `"${sha}"`, {}, true);
    }
    return sendError(res, 404, null, 'blob not found');
  }

  function logEntry(origin, req) {
    return {
      origin,
      method: req.method,
      path: req.url,
      range: req.headers.range ?? null,
      auth: req.headers.authorization ?? null,
      ifRange: req.headers['if-range'] ?? null,
    };
  }

  function handler(origin) {
    return (req, res) => {
      const u = new URL(req.url, 'http://mock');
      if (req.method === 'OPTIONS') {
        requests.push(logEntry(origin, req));
        res.writeHead(204, CORS);
        return res.end();
      }
      const p = origin === 'hub' ? handleHub(req, res, u) : handleLfs(req, res, u);
      p.catch((e) => {
        if (!res.headersSent) sendError(res, 500, null, String(e?.message ?? e));
        else res.destroy();
      });
    };
  }

  const listen = (server, p) =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, host, () => resolve(server.address().port));
    });
  const hubServer = http.createServer(handler('hub'));
  const lfsServer = http.createServer(handler('lfs'));
  for (const s of [hubServer, lfsServer]) s.keepAliveTimeout = 2000;
  const hubPort = await listen(hubServer, port);
  const lfsPortNum = await listen(lfsServer, lfsPort);
  const url = `http://${host}:${hubPort}`;
  const lfsUrl = `http://${host}:${lfsPortNum}`;

  return {
    url,
    lfsUrl,
    requests,
    faults,
    addRepo,
    /** The commit `rev` ('main' or the commit itself) resolves to (synchronous). */
    commit(id, rev = 'main') {
      const repo = registry.get(id);
      if (!repo) throw new Error(`unknown repository ${id}`);
      const snap = snapshot(id, repo);
      if (!knownRevision(snap, rev)) throw new Error(`unknown revision ${rev} of ${id}`);
      return snap.commit;
    },
    close() {
      const stop = (s) =>
        new Promise((r) => {
          s.close(() => r());
          s.closeAllConnections?.();
        });
      return Promise.all([stop(hubServer), stop(lfsServer)]).then(() => undefined);
    },
  };
}

// Command line.
const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (isMain) {
  const repos = {};
  let port = 0;
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      if (a.includes('=') && a.startsWith('--port=')) return a.slice(7);
      if (i + 1 >= args.length) throw new Error(`${a} needs a value`);
      return args[++i];
    };
    if (a === '--repo') {
      const spec = value();
      const eq = spec.indexOf('=');
      if (eq < 0) throw new Error(`--repo ${spec}: expected ID=DIR[,token=T][,gated]`);
      const id = spec.slice(0, eq);
      const [dir, ...opts] = spec.slice(eq + 1).split(',');
      const r = { dir };
      for (const o of opts) {
        if (o === 'gated') r.gated = true;
        else if (o.startsWith('token=')) r.token = o.slice(6);
        else throw new Error(`--repo ${spec}: unknown option ${o}`);
      }
      repos[id] = r;
    } else if (a === '--port' || a.startsWith('--port=')) {
      port = Number(value());
    } else {
      console.error(`unknown argument ${a}\nusage: node tools/hub/mock-hub.mjs --repo ID=DIR[,token=T][,gated]... [--port N]`);
      process.exit(2);
    }
  }
  const hub = await startMockHub({ repos, port });
  process.stdout.write(JSON.stringify({ url: hub.url, lfsUrl: hub.lfsUrl }) + '\n');
  const stop = () => hub.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
