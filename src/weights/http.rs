//! The browser source: a package at an HTTP(S) base URL. The manifest and each shard are taken
//! from Cache Storage when present (no network request); otherwise fetched with a streaming body,
//! resumed with `Range` requests when the connection drops, verified (size + SHA-256), uploaded,
//! and only then put into the cache. One shard at a time is held in wasm memory, never the model.
//! A cached entry that fails its check (damaged storage) is fetched again and replaced; a full
//! quota is named with the space still needed. The manifest is cached last, so a cached manifest
//! means every shard beside it was verified and stored: nothing half-written is ever used. A cached
//! manifest that the host's shards contradict is replaced by the host's.

use std::collections::HashMap;

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Headers, ReadableStreamDefaultReader, Request, RequestInit, Response};

use super::error::{PResult, PackageError};
use super::loader::{upload_shard, verify_shard, GpuParam};
use super::manifest::{Manifest, MANIFEST};
use crate::gpu::Gpu;

pub const CACHE_NAME: &str = "spatial-mllm-packages-v1";
/// Attempts in a row that bring no new byte before a download gives up (a connection that
/// drops but makes progress is resumed for as long as it does).
const MAX_ATTEMPTS: usize = 6;

fn js_msg(v: JsValue) -> String {
    v.as_string().or_else(|| Reflect::get(&v, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| format!("{v:?}"))
}

fn js_name(v: &JsValue) -> String {
    Reflect::get(v, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default()
}

/// Wait `ms` milliseconds (setTimeout of the window or the worker).
async fn sleep(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        if let Ok(f) = Reflect::get(&global, &"setTimeout".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) {
            let _ = f.call2(&global, &resolve, &(ms as f64).into());
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Free bytes for this origin by `navigator.storage.estimate()`, when the browser reports it.
async fn storage_free() -> Option<u64> {
    let storage = Reflect::get(&Reflect::get(&js_sys::global(), &"navigator".into()).ok()?, &"storage".into()).ok()?;
    let estimate: js_sys::Function = Reflect::get(&storage, &"estimate".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = estimate.call0(&storage).ok()?.dyn_into().ok()?;
    let est = JsFuture::from(promise).await.ok()?;
    let num = |k: &str| Reflect::get(&est, &k.into()).ok().and_then(|v| v.as_f64());
    Some((num("quota")? - num("usage")?).max(0.0) as u64)
}

fn http_err(url: &str, msg: impl Into<String>) -> PackageError {
    PackageError::Http { url: url.into(), msg: msg.into() }
}

async fn fetch(url: &str, from: u64) -> Result<Response, JsValue> {
    let init = RequestInit::new();
    init.set_method("GET");
    let headers = Headers::new()?;
    if from > 0 {
        headers.set("Range", &format!("bytes={from}-"))?;
    }
    init.set_headers(&headers);
    let req = Request::new_with_str_and_init(url, &init)?;
    let global = js_sys::global();
    let promise = match global.dyn_ref::<web_sys::Window>() {
        Some(w) => w.fetch_with_request(&req),
        None => global.unchecked_ref::<web_sys::WorkerGlobalScope>().fetch_with_request(&req),
    };
    JsFuture::from(promise).await?.dyn_into()
}

pub(crate) fn cache_storage() -> Result<CacheStorage, JsValue> {
    let global = js_sys::global();
    match global.dyn_ref::<web_sys::Window>() {
        Some(w) => w.caches(),
        None => global.unchecked_ref::<web_sys::WorkerGlobalScope>().caches(),
    }
}

/// Whether Cache Storage can hold this package: only http(s) URLs (a `base` relative to the page
/// resolves against its location). A package inside a browser extension (`chrome-extension://`)
/// is local already and is not cached.
fn cacheable(base: &str) -> bool {
    let scheme = match base.split_once(':') {
        Some((s, _)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)) => s.to_ascii_lowercase(),
        // Relative: the page's (or worker's) own scheme.
        _ => Reflect::get(&js_sys::global(), &"location".into())
            .and_then(|l| Reflect::get(&l, &"protocol".into()))
            .ok()
            .and_then(|p| p.as_string())
            .map(|p| p.trim_end_matches(':').to_ascii_lowercase())
            .unwrap_or_default(),
    };
    scheme == "http" || scheme == "https"
}

async fn open_cache() -> Option<Cache> {
    let storage = cache_storage().ok()?;
    JsFuture::from(storage.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

async fn cached(cache: &Option<Cache>, url: &str) -> Option<Vec<u8>> {
    let hit = JsFuture::from(cache.as_ref()?.match_with_str(url)).await.ok()?;
    let resp: Response = hit.dyn_into().ok()?;
    let buf = JsFuture::from(resp.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buf).to_vec())
}

/// Put `bytes` into the cache. `still_needed`: the bytes of this package not yet cached, this
/// entry's included (a full quota's message says how much space to free).
async fn store(cache: &Option<Cache>, url: &str, bytes: &mut [u8], still_needed: u64) -> PResult<()> {
    let Some(cache) = cache else { return Err(PackageError::Cache("Cache Storage is not available here".into())) };
    let resp = Response::new_with_opt_u8_array(Some(bytes)).map_err(|e| PackageError::Cache(js_msg(e)))?;
    if let Err(e) = JsFuture::from(cache.put_with_str(url, &resp)).await {
        if js_name(&e) == "QuotaExceededError" || js_msg(e.clone()).to_lowercase().contains("quota") {
            // The estimate can lag behind the quota enforced: quoted only when it agrees.
            let free = storage_free().await.filter(|f| *f < still_needed);
            return Err(PackageError::QuotaExceeded { needed: still_needed, free });
        }
        return Err(PackageError::Cache(js_msg(e)));
    }
    Ok(())
}

/// A cache entry that is damaged or not what it should be: dropped, so it is fetched again.
async fn evict(cache: &Option<Cache>, url: &str) {
    if let Some(c) = cache {
        let _ = JsFuture::from(c.delete_with_str(url)).await;
    }
}

/// The file's size as a 206 answer announces it (Content-Range's total). A 200's Content-Length is
/// not used: it counts encoded bytes when the body is compressed; a connection that drops during a
/// body fails the read instead.
fn announced_total(resp: &Response) -> Option<u64> {
    if resp.status() != 206 {
        return None;
    }
    let range = resp.headers().get("content-range").ok().flatten()?;
    range.rsplit('/').next()?.trim().parse().ok()
}

/// Stream a whole file, resuming with Range requests after a dropped connection (with a short
/// backoff), for as long as each attempt brings new bytes. A body whose read fails, or shorter than
/// `expected` (else a 206's announced total), is never returned as whole.
/// Returns the bytes and how many times it resumed.
async fn download(url: &str, expected: Option<u64>, on_bytes: &mut dyn FnMut(u64)) -> PResult<(Vec<u8>, usize)> {
    let mut buf: Vec<u8> = Vec::new();
    let mut resumes = 0;
    let mut fruitless = 0;
    let mut best = 0; // the most bytes held so far: progress is going beyond it
    let mut last_err = String::new();
    let mut total = expected;
    while fruitless < MAX_ATTEMPTS {
        if fruitless > 0 || resumes > 0 || !last_err.is_empty() {
            sleep((100u32 << fruitless.min(5)).min(3_000)).await;
        }
        let from = buf.len() as u64;
        let resp = match fetch(url, from).await {
            Ok(r) => r,
            Err(e) => {
                last_err = js_msg(e);
                fruitless += 1;
                continue;
            }
        };
        match resp.status() {
            200 => buf.clear(), // the server ignored Range: start over
            206 if from > 0 => {}
            s => return Err(http_err(url, format!("HTTP {s} {}", resp.status_text()))),
        }
        if total.is_none() {
            total = announced_total(&resp);
        }
        let Some(body) = resp.body() else { return Err(http_err(url, "the response has no body")) };
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let mut broke = false;
        loop {
            let chunk = match JsFuture::from(reader.read()).await {
                Ok(c) => c,
                Err(e) => {
                    last_err = js_msg(e);
                    broke = true;
                    break;
                }
            };
            if Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                break;
            }
            let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(|e| http_err(url, js_msg(e)))?.unchecked_into();
            let start = buf.len();
            buf.resize(start + value.length() as usize, 0);
            value.copy_to(&mut buf[start..]);
            on_bytes(value.length() as u64);
        }
        let short = total.is_some_and(|n| (buf.len() as u64) < n);
        if !broke && !short {
            return Ok((buf, resumes));
        }
        if !broke {
            last_err = format!("the connection closed after {} of {} bytes", buf.len(), total.unwrap_or(0));
        }
        resumes += 1;
        fruitless = if buf.len() > best { 0 } else { fruitless + 1 };
        best = best.max(buf.len());
    }
    Err(http_err(url, format!("gave up after {MAX_ATTEMPTS} attempts in a row that brought no data: {last_err}")))
}

/// What a load did, for the UI and the tests.
#[derive(Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub model_kind: String,
    pub tensors: usize,
    pub shards: usize,
    pub bytes: u64,
    pub manifest_from_cache: bool,
    pub shards_from_cache: usize,
    pub shards_from_network: usize,
    pub resumes: usize,
    /// Cached shards whose bytes no longer matched the manifest's SHA-256 (damaged storage):
    /// fetched again and replaced in the cache.
    pub damaged_in_cache: Vec<String>,
    /// Set when verified shards could not be cached (quota): the model still loaded.
    pub cache_warning: Option<String>,
}

/// Progress: (shard index, shards, bytes done, bytes total, from cache).
pub type ProgressFn<'a> = dyn FnMut(usize, usize, u64, u64, bool) + 'a;

fn join(base: &str, file: &str) -> String {
    format!("{}/{file}", base.trim_end_matches('/'))
}

/// Load the package at `base` onto the GPU.
pub async fn load(gpu: &Gpu, base: &str, progress: &mut ProgressFn<'_>) -> PResult<(Manifest, HashMap<String, GpuParam>, LoadReport)> {
    load_checked(gpu, base, &|_| Ok(()), progress).await
}

/// As `load`, but `accept` sees the manifest first: an error there (a package of the wrong kind,
/// say) ends the load before any shard is downloaded.
pub async fn load_checked(
    gpu: &Gpu,
    base: &str,
    accept: &dyn Fn(&Manifest) -> PResult<()>,
    progress: &mut ProgressFn<'_>,
) -> PResult<(Manifest, HashMap<String, GpuParam>, LoadReport)> {
    let cacheable = cacheable(base);
    let cache = if cacheable { open_cache().await } else { None };
    let mut report = LoadReport::default();
    let murl = join(base, MANIFEST);
    let Some(cached) = cached_manifest(&cache, &murl, &mut report).await else {
        let fetched = fetch_manifest(&murl).await?;
        return load_shards(gpu, base, &cache, fetched, Trust::Checked, accept, progress, report).await?.map_err(|_| checked_contradicted());
    };
    let first = LoadReport { manifest_from_cache: true, ..LoadReport::default() };
    if let Ok(done) = load_shards(gpu, base, &cache, cached.clone(), Trust::Unchecked, accept, progress, first).await? {
        return Ok(done);
    }
    // A shard contradicts the cached manifest. Either the shard was damaged in storage, or the
    // manifest was (its hashes altered) or the package was replaced under the same URL: the
    // host's manifest decides. Without this a wrong cached manifest failed every visit's load
    // until the user cleared the cache.
    let fetched = fetch_manifest(&murl).await?;
    let manifest = if fetched.0 == cached.0 {
        report.manifest_from_cache = true;
        cached
    } else {
        evict(&cache, &murl).await;
        report.damaged_in_cache.push(MANIFEST.to_string());
        fetched
    };
    load_shards(gpu, base, &cache, manifest, Trust::Checked, accept, progress, report).await?.map_err(|_| checked_contradicted())
}

/// Whether the manifest is known to be the host's (fetched, or compared with the host's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    Checked,
    Unchecked,
}

/// A load with an unchecked manifest stopped at a shard that contradicts it.
struct Contradicted;

fn checked_contradicted() -> PackageError {
    PackageError::Cache("internal: a checked manifest was contradicted".into())
}

fn parse_manifest(url: &str, bytes: Vec<u8>) -> PResult<(String, Manifest)> {
    let text = String::from_utf8(bytes).map_err(|e| PackageError::BadManifest { file: url.to_string(), msg: e.to_string() })?;
    let m = Manifest::parse(&text, url)?;
    Ok((text, m))
}

/// The cached manifest, if there is one that parses; a damaged one is evicted and reported.
async fn cached_manifest(cache: &Option<Cache>, murl: &str, report: &mut LoadReport) -> Option<(String, Manifest)> {
    let parsed = parse_manifest(murl, cached(cache, murl).await?);
    if parsed.is_err() {
        // A damaged cached manifest is not trusted: fetched again.
        evict(cache, murl).await;
        report.damaged_in_cache.push(MANIFEST.to_string());
    }
    parsed.ok()
}

async fn fetch_manifest(murl: &str) -> PResult<(String, Manifest)> {
    parse_manifest(murl, download(murl, None, &mut |_| {}).await?.0)
}

type Loaded = (Manifest, HashMap<String, GpuParam>, LoadReport);

/// Every shard of `manifest`, from the cache when it verifies, else from the network (verified,
/// uploaded, then cached); the manifest itself is cached last. With an unchecked manifest the
/// first shard that contradicts it stops the load before anything is evicted or downloaded.
#[allow(clippy::too_many_arguments)]
async fn load_shards(
    gpu: &Gpu,
    base: &str,
    cache: &Option<Cache>,
    (text, manifest): (String, Manifest),
    trust: Trust,
    accept: &dyn Fn(&Manifest) -> PResult<()>,
    progress: &mut ProgressFn<'_>,
    mut report: LoadReport,
) -> PResult<Result<Loaded, Contradicted>> {
    let cacheable = cacheable(base);
    let murl = join(base, MANIFEST);
    accept(&manifest)?;
    report.model_kind = manifest.model_kind.clone();
    report.tensors = manifest.tensors.len();
    report.shards = manifest.shards.len();
    report.bytes = manifest.total_bytes();
    let total = manifest.total_bytes();
    let mut done = 0u64;
    let mut out = HashMap::new();
    for (i, s) in manifest.shards.iter().enumerate() {
        let url = join(base, &s.file);
        let hit = match cached(cache, &url).await {
            // A cached shard is verified too: storage can be damaged.
            Some(b) if verify_shard(&manifest, i, &b).is_ok() => Some(b),
            Some(_) if trust == Trust::Unchecked => return Ok(Err(Contradicted)),
            Some(_) => {
                evict(cache, &url).await;
                report.damaged_in_cache.push(s.file.clone());
                None
            }
            None => None,
        };
        let from_cache = hit.is_some();
        let mut bytes = match hit {
            Some(b) => b,
            None => {
                let base_done = done;
                let mut got = 0u64;
                let (b, resumes) = download(&url, Some(s.bytes), &mut |n| {
                    got += n;
                    progress(i, manifest.shards.len(), base_done + got, total, false);
                })
                .await?;
                report.resumes += resumes;
                match verify_shard(&manifest, i, &b) {
                    Err(_) if trust == Trust::Unchecked => return Ok(Err(Contradicted)),
                    checked => checked?,
                }
                b
            }
        };
        upload_shard(gpu, &manifest, i, &bytes, &mut out)?;
        if from_cache {
            report.shards_from_cache += 1;
        } else {
            report.shards_from_network += 1;
            // After a full quota the rest is not tried: the warning already says what is needed.
            if cacheable && report.cache_warning.is_none() {
                let still_needed = total - done + text.len() as u64;
                if let Err(e) = store(cache, &url, &mut bytes, still_needed).await {
                    report.cache_warning = Some(e.to_string());
                }
            }
        }
        done += s.bytes;
        progress(i + 1, manifest.shards.len(), done, total, from_cache);
    }
    if cacheable && !report.manifest_from_cache && report.cache_warning.is_none() {
        // Cached last: a manifest in the cache means its shards were verified and stored.
        let n = text.len() as u64;
        if let Err(e) = store(cache, &murl, &mut text.into_bytes(), n).await {
            report.cache_warning = Some(e.to_string());
        }
    }
    gpu.check()?;
    Ok(Ok((manifest, out, report)))
}

/// One file of a package (the tokenizer, say) or any other file next to it: from Cache Storage
/// when present, else downloaded (resumably) and cached.
pub async fn file(base: &str, name: &str) -> PResult<Vec<u8>> {
    let parsed = file_parsed(base, name, |b| Ok::<_, std::convert::Infallible>(b.to_vec())).await?;
    Ok(parsed.unwrap_or_else(|e| match e {}))
}

/// As `file`, read by `parse`: a cached copy that `parse` refuses (damaged storage) is dropped
/// and downloaded again, and the downloaded copy's verdict is returned.
pub async fn file_parsed<T, E>(base: &str, name: &str, parse: impl Fn(&[u8]) -> Result<T, E>) -> PResult<Result<T, E>> {
    let cache = open_cache().await;
    let url = join(base, name);
    if let Some(b) = cached(&cache, &url).await {
        if let Ok(t) = parse(&b) {
            return Ok(Ok(t));
        }
        evict(&cache, &url).await;
    }
    let (mut bytes, _) = download(&url, None, &mut |_| {}).await?;
    let parsed = parse(&bytes);
    if parsed.is_ok() {
        // A full quota costs only the next visit's download.
        let n = bytes.len() as u64;
        let _ = store(&cache, &url, &mut bytes, n).await;
    }
    Ok(parsed)
}

/// Delete every cached package.
pub async fn clear_cache() -> PResult<bool> {
    let storage = cache_storage().map_err(|e| PackageError::Cache(js_msg(e)))?;
    let deleted = JsFuture::from(storage.delete(CACHE_NAME)).await.map_err(|e| PackageError::Cache(js_msg(e)))?;
    Ok(deleted.as_bool().unwrap_or(false))
}
