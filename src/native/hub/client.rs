//! HTTP against the hub: the token goes to the hub's origin only (redirects are followed here, so
//! it is dropped on the way to the LFS CDN); 429, 5xx and broken connections are retried with
//! exponential backoff (Retry-After honoured); downloads stream to `blobs/{etag}.incomplete`,
//! resume with a Range request and are hashed as they arrive.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::cache::RepoCache;
use super::error::{io_err, HResult, HubError};
use super::HubProgress;

/// Retries of one request: at most `attempts` tries, waiting `base` × 2^n between them (or what
/// Retry-After asks), never more than `max_wait`.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base: Duration::from_millis(500), max_wait: Duration::from_secs(30) }
    }
}

pub struct HubClient {
    /// The hub's origin, e.g. https://huggingface.co (no trailing slash).
    pub endpoint: String,
    pub token: Option<String>,
    /// The huggingface_hub cache (`.../huggingface/hub`).
    pub cache: PathBuf,
    pub retry: RetryPolicy,
    /// No network: only packages already converted are used (HF_HUB_OFFLINE=1).
    pub offline: bool,
    agent: ureq::Agent,
}

/// One file of a repository as `/api/models/{id}/revision/{rev}?blobs=true` lists it.
#[derive(Clone, Debug)]
pub struct RepoFile {
    pub path: String,
    pub size: Option<u64>,
    /// The git blob sha1.
    pub blob_id: Option<String>,
    /// The LFS object's SHA-256.
    pub sha256: Option<String>,
}

impl RepoFile {
    /// The cache's name of the blob: the SHA-256 for LFS files, else the git sha1.
    pub fn etag(&self) -> Option<&str> {
        self.sha256.as_deref().or(self.blob_id.as_deref())
    }
}

/// A repository at one commit.
#[derive(Clone, Debug)]
pub struct RepoInfo {
    pub id: String,
    pub revision: String,
    pub commit: String,
    pub files: Vec<RepoFile>,
}

impl RepoInfo {
    pub fn file(&self, path: &str) -> Option<&RepoFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

enum Attempt<T> {
    Done(T),
    Retry { status: Option<u16>, msg: String, after: Option<Duration> },
    Fail(HubError),
}

/// scheme://host[:port] of a URL.
fn origin(url: &str) -> &str {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[start..].find('/') {
        Some(i) => &url[..start + i],
        None => url,
    }
}

fn retryable(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

fn retry_after(resp: &ureq::Response) -> Option<Duration> {
    resp.header("Retry-After").and_then(|v| v.trim().parse::<f64>().ok()).map(|s| Duration::from_secs_f64(s.max(0.0)))
}

/// Percent-encoding of one path segment (a revision like `refs/pr/1` becomes one segment).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file path in a URL: each segment encoded, slashes kept.
pub fn encode_path(p: &str) -> String {
    p.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

fn disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

/// A running hash of a file being downloaded: SHA-256 for LFS files, the git blob sha1 else.
enum Hasher {
    Sha256(Sha256),
    Git(Sha1),
}

impl Hasher {
    fn new(lfs: bool, size: u64) -> Hasher {
        if lfs {
            Hasher::Sha256(Sha256::new())
        } else {
            let mut h = Sha1::new();
            h.update(format!("blob {size}\0").as_bytes());
            Hasher::Git(h)
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Git(h) => h.update(b),
        }
    }
    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Git(h) => hex::encode(h.finalize()),
        }
    }
}

/// Running totals of a set of downloads, for progress.
pub struct Tally {
    pub done: u64,
    pub total: u64,
}

impl HubClient {
    pub fn new(endpoint: impl Into<String>, token: Option<String>, cache: impl Into<PathBuf>) -> HubClient {
        let endpoint = endpoint.into().trim_end_matches('/').to_string();
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(60))
            .user_agent(concat!("spatial-mllm/", env!("CARGO_PKG_VERSION"), "; hf_hub-compatible"))
            .build();
        HubClient { endpoint, token: token.filter(|t| !t.trim().is_empty()), cache: cache.into(), retry: RetryPolicy::default(), offline: false, agent }
    }

    fn wait(&self, attempt: u32, after: Option<Duration>) -> Duration {
        let backoff = self.retry.base.saturating_mul(1u32 << attempt.min(16));
        after.unwrap_or(backoff).min(self.retry.max_wait)
    }

    /// One request, following redirects; the token only to the hub's origin. Error statuses come
    /// back as responses; Err is a connection failure.
    fn send(&self, method: &str, url: &str, range: Option<&str>) -> Result<ureq::Response, String> {
        let hub = origin(&self.endpoint).to_string();
        let mut url = url.to_string();
        for _ in 0..10 {
            let mut req = self.agent.request(method, &url);
            if let Some(r) = range {
                req = req.set("Range", r);
            }
            if let Some(t) = &self.token {
                if origin(&url) == hub {
                    req = req.set("Authorization", &format!("Bearer {t}"));
                }
            }
            let resp = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(ureq::Error::Transport(t)) => return Err(t.to_string()),
            };
            if matches!(resp.status(), 301 | 302 | 303 | 307 | 308) {
                if let Some(loc) = resp.header("Location") {
                    url = if loc.starts_with("http://") || loc.starts_with("https://") {
                        loc.to_string()
                    } else if loc.starts_with('/') {
                        format!("{}{loc}", origin(&url))
                    } else {
                        format!("{}/{loc}", url.rsplit_once('/').map(|(a, _)| a).unwrap_or(&url))
                    };
                    continue;
                }
            }
            return Ok(resp);
        }
        Err("too many redirects".into())
    }

    /// Retry `f` on 429, 5xx and connection errors.
    fn with_retries<T>(&self, url: &str, progress: &mut dyn FnMut(HubProgress), mut f: impl FnMut(&mut dyn FnMut(HubProgress)) -> Attempt<T>) -> HResult<T> {
        let mut last = (None, String::new());
        for attempt in 0..self.retry.attempts.max(1) {
            match f(progress) {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry { status, msg, after } => {
                    if attempt + 1 < self.retry.attempts {
                        let wait = self.wait(attempt, after);
                        progress(HubProgress::Retry { url, attempt: attempt + 1, wait, why: &msg });
                        std::thread::sleep(wait);
                    }
                    last = (status, msg);
                }
            }
        }
        Err(HubError::Http { url: url.to_string(), status: last.0, msg: last.1, attempts: self.retry.attempts.max(1) })
    }

    /// The error of a 4xx answer about repository `id`.
    fn status_error(&self, resp: &ureq::Response, url: &str, id: &str, revision: &str, file: Option<&str>) -> HubError {
        let status = resp.status();
        let code = resp.header("X-Error-Code").unwrap_or("").to_string();
        let endpoint = self.endpoint.clone();
        match (status, code.as_str()) {
            (404, "RevisionNotFound") => HubError::RevisionNotFound { id: id.into(), revision: revision.into(), endpoint },
            (404, "EntryNotFound") => HubError::FileMissing { id: id.into(), revision: revision.into(), file: file.unwrap_or("?").into(), endpoint },
            (404, "RepoNotFound") => HubError::RepoNotFound { id: id.into(), endpoint },
            (404, _) if file.is_some() => HubError::FileMissing { id: id.into(), revision: revision.into(), file: file.unwrap_or("?").into(), endpoint },
            (404, _) => HubError::RepoNotFound { id: id.into(), endpoint },
            (401 | 403, c) => HubError::Access { id: id.into(), endpoint, status, gated: c == "GatedRepo", has_token: self.token.is_some() },
            _ => {
                let msg = resp.header("X-Error-Message").map(|m| format!("HTTP {status}: {m}")).unwrap_or_else(|| format!("HTTP {status}"));
                HubError::Http { url: url.into(), status: Some(status), msg, attempts: 1 }
            }
        }
    }

    /// The repository at `revision` (a branch, tag or commit): its commit and files.
    pub fn repo_info(&self, id: &str, revision: &str, progress: &mut dyn FnMut(HubProgress)) -> HResult<RepoInfo> {
        let url = format!("{}/api/models/{id}/revision/{}?blobs=true", self.endpoint, encode_segment(revision));
        let v: serde_json::Value = self.with_retries(&url, progress, |_| {
            let resp = match self.send("GET", &url, None) {
                Ok(r) => r,
                Err(msg) => return Attempt::Retry { status: None, msg, after: None },
            };
            match resp.status() {
                200 => {
                    let mut text = String::new();
                    match resp.into_reader().take(256 << 20).read_to_string(&mut text) {
                        Ok(_) => match serde_json::from_str(&text) {
                            Ok(v) => Attempt::Done(v),
                            Err(e) => Attempt::Fail(HubError::BadResponse { url: url.clone(), msg: format!("invalid JSON: {e}") }),
                        },
                        Err(e) => Attempt::Retry { status: None, msg: e.to_string(), after: None },
                    }
                }
                s if retryable(s) => Attempt::Retry { status: Some(s), msg: format!("HTTP {s}"), after: retry_after(&resp) },
                _ => Attempt::Fail(self.status_error(&resp, &url, id, revision, None)),
            }
        })?;
        let bad = |msg: &str| HubError::BadResponse { url: url.clone(), msg: msg.into() };
        let commit = v.get("sha").and_then(|s| s.as_str()).ok_or_else(|| bad("no commit sha"))?.to_string();
        // Every name from the hub becomes a path in the cache: refuse any that could leave it.
        if !super::cache::hex_digest(&commit) || commit.len() != 40 {
            return Err(bad(&format!("the commit {commit:?} is not a 40-digit hex sha")));
        }
        let siblings = v.get("siblings").and_then(|s| s.as_array()).ok_or_else(|| bad("no file list (siblings)"))?;
        let files = siblings
            .iter()
            .filter_map(|s| {
                Some(RepoFile {
                    path: s.get("rfilename")?.as_str()?.to_string(),
                    size: s.get("lfs").and_then(|l| l.get("size")).or(s.get("size")).and_then(|x| x.as_u64()),
                    blob_id: s.get("blobId").and_then(|x| x.as_str()).map(str::to_string),
                    sha256: s.get("lfs").and_then(|l| l.get("sha256")).and_then(|x| x.as_str()).map(str::to_string),
                })
            })
            .collect::<Vec<RepoFile>>();
        for f in &files {
            if !super::cache::safe_relative(&f.path) {
                return Err(bad(&format!("the file name {:?} is not a plain relative path", f.path)));
            }
            if let Some(etag) = f.etag().filter(|e| !super::cache::hex_digest(e)) {
                return Err(bad(&format!("{}: the blob id {etag:?} is not a hex digest", f.path)));
            }
        }
        Ok(RepoInfo { id: id.to_string(), revision: revision.to_string(), commit, files })
    }

    pub fn file_url(&self, info: &RepoInfo, file: &str) -> String {
        format!("{}/{}/resolve/{}/{}", self.endpoint, info.id, info.commit, encode_path(file))
    }

    /// Bytes `start..start+len` of a file (two of these read a safetensors header without
    /// downloading the weights).
    pub fn read_range(&self, info: &RepoInfo, file: &str, start: u64, len: u64, progress: &mut dyn FnMut(HubProgress)) -> HResult<Vec<u8>> {
        let url = self.file_url(info, file);
        let range = format!("bytes={start}-{}", start + len - 1);
        self.with_retries(&url, progress, |_| {
            let resp = match self.send("GET", &url, Some(&range)) {
                Ok(r) => r,
                Err(msg) => return Attempt::Retry { status: None, msg, after: None },
            };
            let skip = match resp.status() {
                206 => 0,
                200 => start, // the server ignored the range
                s if retryable(s) => return Attempt::Retry { status: Some(s), msg: format!("HTTP {s}"), after: retry_after(&resp) },
                _ => return Attempt::Fail(self.status_error(&resp, &url, &info.id, &info.revision, Some(file))),
            };
            let mut r = resp.into_reader();
            if skip > 0 && std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink()).is_err() {
                return Attempt::Retry { status: None, msg: "connection broken".into(), after: None };
            }
            let mut buf = Vec::with_capacity(len as usize);
            match r.take(len).read_to_end(&mut buf) {
                Ok(_) if buf.len() as u64 == len => Attempt::Done(buf),
                Ok(_) => Attempt::Retry { status: None, msg: format!("got {} of {len} bytes", buf.len()), after: None },
                Err(e) => Attempt::Retry { status: None, msg: e.to_string(), after: None },
            }
        })
    }

    /// A file of the repository into the cache (`blobs/`, linked from `snapshots/{commit}/`),
    /// unless there already; its path in the snapshot.
    pub fn fetch(&self, info: &RepoInfo, file: &RepoFile, tally: &mut Tally, progress: &mut dyn FnMut(HubProgress)) -> HResult<PathBuf> {
        let cache = RepoCache::new(&self.cache, &info.id);
        let pointer = cache.pointer(&info.commit, &file.path);
        let size_ok = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && file.size.is_none_or(|s| m.len() == s));
        if size_ok(&pointer) {
            return Ok(pointer);
        }
        let etag = file.etag().ok_or_else(|| HubError::BadResponse {
            url: self.file_url(info, &file.path),
            msg: format!("no blob id for {} (is the hub's API answering with ?blobs=true?)", file.path),
        })?;
        let blob = cache.blob(etag);
        if !size_ok(&blob) {
            self.download_blob(info, file, etag, &cache, tally, progress)?;
        }
        cache.link(&info.commit, &file.path, etag)
    }

    fn download_blob(
        &self,
        info: &RepoInfo,
        file: &RepoFile,
        etag: &str,
        cache: &RepoCache,
        tally: &mut Tally,
        progress: &mut dyn FnMut(HubProgress),
    ) -> HResult<()> {
        let url = self.file_url(info, &file.path);
        let lfs = file.sha256.is_some();
        let blobs = cache.root.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        let part = cache.incomplete(etag);
        let expected_hash = file.sha256.clone().or(if file.size.is_some() { file.blob_id.clone() } else { None });
        let base = tally.done;
        let mut corrupt_once = false;
        let name = file.path.as_str();
        let result = self.with_retries(&url, progress, |progress| {
            // What is on disk already, hashed first so the resumed part joins the same hash.
            let mut out = match std::fs::OpenOptions::new().create(true).append(true).read(true).open(&part) {
                Ok(f) => f,
                Err(e) => return Attempt::Fail(io_err(&part)(e)),
            };
            let mut have = out.metadata().map(|m| m.len()).unwrap_or(0);
            if file.size.is_some_and(|s| have > s) {
                let _ = out.set_len(0);
                have = 0;
            }
            let size = file.size.unwrap_or(0);
            let mut hasher = Hasher::new(lfs, size);
            if have > 0 {
                let mut f = match std::fs::File::open(&part) {
                    Ok(f) => f,
                    Err(e) => return Attempt::Fail(io_err(&part)(e)),
                };
                let mut buf = vec![0u8; 1 << 20];
                let mut left = have;
                while left > 0 {
                    let n = match f.read(&mut buf[..left.min(1 << 20) as usize]) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) => return Attempt::Fail(io_err(&part)(e)),
                    };
                    hasher.update(&buf[..n]);
                    left -= n as u64;
                }
            }
            let complete = file.size.is_some_and(|s| have == s);
            if !complete {
                let range = (have > 0).then(|| format!("bytes={have}-"));
                let resp = match self.send("GET", &url, range.as_deref()) {
                    Ok(r) => r,
                    Err(msg) => return Attempt::Retry { status: None, msg, after: None },
                };
                match resp.status() {
                    200 if have > 0 => {
                        // The server sent the whole file: start again.
                        let _ = out.set_len(0);
                        have = 0;
                        hasher = Hasher::new(lfs, size);
                    }
                    200 => {}
                    206 => {
                        let ok = resp.header("Content-Range").is_some_and(|c| c.starts_with(&format!("bytes {have}-")));
                        if !ok {
                            let _ = out.set_len(0);
                            return Attempt::Retry { status: Some(206), msg: "the server resumed at the wrong offset".into(), after: Some(Duration::ZERO) };
                        }
                    }
                    416 => {
                        let _ = out.set_len(0);
                        return Attempt::Retry { status: Some(416), msg: "range not satisfiable: the partial file is stale".into(), after: Some(Duration::ZERO) };
                    }
                    s if retryable(s) => return Attempt::Retry { status: Some(s), msg: format!("HTTP {s}"), after: retry_after(&resp) },
                    _ => return Attempt::Fail(self.status_error(&resp, &url, &info.id, &info.revision, Some(name))),
                }
                let mut body = resp.into_reader();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = match body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) => {
                            let _ = out.flush();
                            return Attempt::Retry { status: None, msg: format!("connection broken after {have} of {size} bytes: {e}"), after: None };
                        }
                    };
                    if let Err(e) = out.write_all(&buf[..n]) {
                        if disk_full(&e) {
                            return Attempt::Fail(HubError::DiskFull {
                                path: part.display().to_string(),
                                needed: tally.total.saturating_sub(base + have),
                                available: None,
                            });
                        }
                        return Attempt::Fail(io_err(&part)(e));
                    }
                    hasher.update(&buf[..n]);
                    have += n as u64;
                    progress(HubProgress::Bytes { file: name, done: base + have, total: tally.total });
                }
                if let Err(e) = out.sync_all() {
                    if disk_full(&e) {
                        return Attempt::Fail(HubError::DiskFull {
                            path: part.display().to_string(),
                            needed: tally.total.saturating_sub(base + have),
                            available: None,
                        });
                    }
                }
                if file.size.is_some_and(|s| have < s) {
                    return Attempt::Retry { status: None, msg: format!("the connection ended after {have} of {size} bytes"), after: None };
                }
            }
            if let Some(s) = file.size {
                if have != s {
                    let _ = std::fs::remove_file(&part);
                    return Attempt::Fail(HubError::SizeMismatch { id: info.id.clone(), file: name.into(), expected: s, got: have });
                }
            }
            let got = hasher.finish();
            if let Some(exp) = &expected_hash {
                if &got != exp {
                    let _ = std::fs::remove_file(&part);
                    if !corrupt_once {
                        corrupt_once = true;
                        return Attempt::Retry { status: None, msg: format!("{name}: hash mismatch, downloading again"), after: Some(Duration::ZERO) };
                    }
                    return Attempt::Fail(HubError::Corrupt { id: info.id.clone(), file: name.into(), expected: exp.clone(), got });
                }
            }
            Attempt::Done(())
        });
        result?;
        let blob = cache.blob(etag);
        std::fs::rename(&part, &blob).map_err(io_err(&blob))?;
        tally.done = base + file.size.unwrap_or(0);
        Ok(())
    }
}
