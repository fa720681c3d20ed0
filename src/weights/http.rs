//! The browser source: a package at an HTTP(S) base URL. The manifest and each shard are taken
//! from Cache Storage when present (no network request); otherwise fetched with a streaming body,
//! resumed with `Range` requests when the connection drops, verified (size + SHA-256), uploaded,
//! and only then put into the cache. One shard at a time is held in wasm memory, never the model.

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
const MAX_ATTEMPTS: usize = 6;

fn js_msg(v: JsValue) -> String {
    v.as_string().or_else(|| Reflect::get(&v, &"message".into()).ok().and_then(|m| m.as_string())).unwrap_or_else(|| format!("{v:?}"))
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

fn cache_storage() -> Result<CacheStorage, JsValue> {
    let global = js_sys::global();
    match global.dyn_ref::<web_sys::Window>() {
        Some(w) => w.caches(),
        None => global.unchecked_ref::<web_sys::WorkerGlobalScope>().caches(),
    }
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

async fn store(cache: &Option<Cache>, url: &str, bytes: &mut [u8]) -> PResult<()> {
    let Some(cache) = cache else { return Err(PackageError::Cache("Cache Storage is not available here".into())) };
    let resp = Response::new_with_opt_u8_array(Some(bytes)).map_err(|e| PackageError::Cache(js_msg(e)))?;
    JsFuture::from(cache.put_with_str(url, &resp)).await.map_err(|e| PackageError::Cache(js_msg(e)))?;
    Ok(())
}

/// Stream a whole file, resuming with Range requests after a dropped connection.
/// Returns the bytes and how many times it resumed.
async fn download(url: &str, expected: Option<u64>, on_bytes: &mut dyn FnMut(u64)) -> PResult<(Vec<u8>, usize)> {
    let mut buf: Vec<u8> = Vec::new();
    let mut resumes = 0;
    let mut last_err = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            resumes += 1;
        }
        let from = buf.len() as u64;
        let resp = match fetch(url, from).await {
            Ok(r) => r,
            Err(e) => {
                last_err = js_msg(e);
                continue;
            }
        };
        match resp.status() {
            200 => buf.clear(), // the server ignored Range: start over
            206 if from > 0 => {}
            s => return Err(http_err(url, format!("HTTP {s} {}", resp.status_text()))),
        }
        let Some(body) = resp.body() else { return Err(http_err(url, "the response has no body")) };
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        loop {
            let chunk = match JsFuture::from(reader.read()).await {
                Ok(c) => c,
                Err(e) => {
                    last_err = js_msg(e);
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
        match expected {
            Some(n) if (buf.len() as u64) < n => {
                if last_err.is_empty() {
                    last_err = format!("the connection closed after {} of {n} bytes", buf.len());
                }
            }
            _ => return Ok((buf, resumes)),
        }
    }
    Err(http_err(url, format!("gave up after {MAX_ATTEMPTS} attempts: {last_err}")))
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
    let cache = open_cache().await;
    let mut report = LoadReport::default();
    let murl = join(base, MANIFEST);
    let mbytes = match cached(&cache, &murl).await {
        Some(b) => {
            report.manifest_from_cache = true;
            b
        }
        None => download(&murl, None, &mut |_| {}).await?.0,
    };
    let text = String::from_utf8(mbytes).map_err(|e| PackageError::BadManifest { file: murl.clone(), msg: e.to_string() })?;
    let manifest = Manifest::parse(&text, &murl)?;
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
        let hit = match cached(&cache, &url).await {
            // A cached shard is verified too: storage can be damaged.
            Some(b) if verify_shard(&manifest, i, &b).is_ok() => Some(b),
            _ => None,
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
                verify_shard(&manifest, i, &b)?;
                b
            }
        };
        upload_shard(gpu, &manifest, i, &bytes, &mut out)?;
        if from_cache {
            report.shards_from_cache += 1;
        } else {
            report.shards_from_network += 1;
            if let Err(e) = store(&cache, &url, &mut bytes).await {
                report.cache_warning = Some(e.to_string());
            }
        }
        done += s.bytes;
        progress(i + 1, manifest.shards.len(), done, total, from_cache);
    }
    if !report.manifest_from_cache && report.cache_warning.is_none() {
        // Cached last: a manifest in the cache means its shards were verified and stored.
        if let Err(e) = store(&cache, &murl, &mut text.into_bytes()).await {
            report.cache_warning = Some(e.to_string());
        }
    }
    gpu.check()?;
    Ok((manifest, out, report))
}

/// One file of a package (the tokenizer, say) or any other file next to it: from Cache Storage
/// when present, else downloaded (resumably) and cached.
pub async fn file(base: &str, name: &str) -> PResult<Vec<u8>> {
    let cache = open_cache().await;
    let url = join(base, name);
    if let Some(b) = cached(&cache, &url).await {
        return Ok(b);
    }
    let (mut bytes, _) = download(&url, None, &mut |_| {}).await?;
    // A full quota costs only the next visit's download.
    let _ = store(&cache, &url, &mut bytes).await;
    Ok(bytes)
}

/// Delete every cached package.
pub async fn clear_cache() -> PResult<bool> {
    let storage = cache_storage().map_err(|e| PackageError::Cache(js_msg(e)))?;
    let deleted = JsFuture::from(storage.delete(CACHE_NAME)).await.map_err(|e| PackageError::Cache(js_msg(e)))?;
    Ok(deleted.as_bool().unwrap_or(false))
}
