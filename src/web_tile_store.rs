//! The browser's store of measured GEMM tilings (`kernels::gemm_memo`): one small entry per
//! device in Cache Storage (its own cache, beside the packages', under the page's origin), so a
//! second visit skips the measurement. Only where Cache Storage takes the origin's URLs (http and
//! https: not inside an extension, whose engine stays up between questions anyway). A store that
//! fails costs only a measurement.

use js_sys::Reflect;
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use crate::gpu::{GemmChoice, Gpu};
use crate::kernels::gemm_memo;
use crate::weights::http::cache_storage;

pub const CACHE_NAME: &str = "spatial-mllm-tuning-v1";

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    key: String,
    tiling: String,
}

/// The entry's URL under the page's (or worker's) own http(s) origin; None elsewhere.
fn entry_url(key: &str) -> Option<String> {
    let origin = Reflect::get(&js_sys::global(), &"location".into()).and_then(|l| Reflect::get(&l, &"origin".into())).ok()?.as_string()?;
    if !(origin.starts_with("http://") || origin.starts_with("https://")) {
        return None;
    }
    Some(format!("{origin}/.spatial-mllm/gemm-tiling/{}", hex::encode(&Sha256::digest(key.as_bytes())[..16])))
}

async fn open() -> Option<Cache> {
    JsFuture::from(cache_storage().ok()?.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

async fn recall(cache: &Cache, url: &str, key: &str) -> Option<String> {
    let resp: Response = JsFuture::from(cache.match_with_str(url)).await.ok()?.dyn_into().ok()?;
    let text = JsFuture::from(resp.text().ok()?).await.ok()?.as_string()?;
    // The key is stored whole: a hash collision or a damaged entry is not taken.
    serde_json::from_str::<Record>(&text).ok().filter(|r| r.key == key).map(|r| r.tiling)
}

async fn keep(cache: &Cache, url: &str, record: &Record) -> Result<(), JsValue> {
    let body = serde_json::to_string(record).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let resp = Response::new_with_opt_str(Some(&body))?;
    JsFuture::from(cache.put_with_str(url, &resp)).await.map(|_| ())
}

/// Decide the device's GEMM tiling: remembered from an earlier visit, else measured (and kept).
pub async fn tune_gemm(gpu: &Gpu) -> crate::gpu::Result<GemmChoice> {
    let key = gemm_memo::key(gpu);
    let store = match (gemm_memo::needs_measuring(gpu), entry_url(&key)) {
        (true, Some(url)) => open().await.map(|c| (c, url)),
        _ => None,
    };
    let recalled = match &store {
        Some((cache, url)) => recall(cache, url, &key).await,
        None => None,
    };
    let (choice, new) = gemm_memo::tune_gemm_with(gpu, recalled.as_deref()).await?;
    if let (Some(tiling), Some((cache, url))) = (new, &store) {
        if let Err(e) = keep(cache, url, &Record { key, tiling }).await {
            log::warn!("could not remember the GEMM tiling: {e:?} (the next visit measures again)");
        }
    }
    Ok(choice)
}
