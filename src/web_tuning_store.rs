//! The browser's store of measured kernel choices (`kernels::tuning_memo`: the GEMM tiling, the
//! attention kernel, a model's decode plan): one small entry per choice and device in Cache Storage
//! (its own cache, beside the packages'), so a second visit, or a browser extension's engine
//! started again after its idle time, skips the measurement. A store that fails costs only a
//! measurement.

use js_sys::Reflect;
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use crate::gpu::Gpu;
use crate::kernels::tuning_memo::{self, AttentionKernel, GemmTiling, Tuned};
use crate::weights::http::cache_storage;

pub const CACHE_NAME: &str = "spatial-mllm-tuning-v2";

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    key: String,
    choice: String,
}

/// The entry's URL: under the page's (or worker's) own origin, so that every cache entry a page
/// keeps is its own origin's. Cache Storage takes only http(s) URLs, so elsewhere (a browser
/// extension's `chrome-extension://` origin) under a reserved host; the cache is the extension's
/// own either way, since Cache Storage is kept per origin.
fn entry_url(key: &str) -> String {
    let origin = Reflect::get(&js_sys::global(), &"location".into())
        .and_then(|l| Reflect::get(&l, &"origin".into()))
        .ok()
        .and_then(|o| o.as_string())
        .filter(|o| o.starts_with("http://") || o.starts_with("https://"))
        .unwrap_or_else(|| "https://spatial-mllm.invalid".into());
    format!("{origin}/.spatial-mllm/tuning/{}", hex::encode(&Sha256::digest(key.as_bytes())[..16]))
}

async fn open() -> Option<Cache> {
    JsFuture::from(cache_storage().ok()?.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

async fn recall(cache: &Cache, url: &str, key: &str) -> Option<String> {
    let resp: Response = JsFuture::from(cache.match_with_str(url)).await.ok()?.dyn_into().ok()?;
    let text = JsFuture::from(resp.text().ok()?).await.ok()?.as_string()?;
    // The key is stored whole: a hash collision or a damaged entry is not taken.
    serde_json::from_str::<Record>(&text).ok().filter(|r| r.key == key).map(|r| r.choice)
}

async fn keep(cache: &Cache, url: &str, record: &Record) -> Result<(), JsValue> {
    let body = serde_json::to_string(record).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let resp = Response::new_with_opt_str(Some(&body))?;
    JsFuture::from(cache.put_with_str(url, &resp)).await.map(|_| ())
}

/// Decide one of the device's choices: remembered from an earlier visit, else measured (and kept).
pub async fn tune<T: Tuned>(t: &mut T, gpu: &Gpu) -> crate::gpu::Result<T::Choice> {
    let key = tuning_memo::key(t, gpu);
    let store = match t.needs_measuring(gpu) {
        true => open().await.map(|c| (c, entry_url(&key))),
        false => None,
    };
    let recalled = match &store {
        Some((cache, url)) => recall(cache, url, &key).await,
        None => None,
    };
    let (choice, new) = tuning_memo::tune_with(t, gpu, recalled.as_deref()).await?;
    if let (Some(choice), Some((cache, url))) = (new, &store) {
        if let Err(e) = keep(cache, url, &Record { key, choice }).await {
            log::warn!("could not remember the {}: {e:?} (the next visit measures again)", T::WHAT);
        }
    }
    Ok(choice)
}

/// Every measured choice of the device: the GEMM tiling, then the attention kernel.
pub async fn tune_device(gpu: &Gpu) -> crate::gpu::Result<()> {
    tune(&mut GemmTiling, gpu).await?;
    tune(&mut AttentionKernel, gpu).await?;
    Ok(())
}
