//! The wasm-bindgen surface for the browser (the test suites' surface: `web_suites`, test build only).

use wasm_bindgen::prelude::*;

use crate::gpu::{Gpu, GpuOptions};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Adapter and negotiated device, as the developer's one-line summary.
#[wasm_bindgen]
pub async fn gpu_info() -> Result<String, JsValue> {
    let gpu = Gpu::new(GpuOptions::default()).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(gpu.info.to_string())
}

/// The negotiated device as the facts the app's device line reads (`Engine.device_facts`).
#[wasm_bindgen]
pub async fn gpu_facts() -> Result<js_sys::Object, JsValue> {
    let gpu = Gpu::new(GpuOptions::default()).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(crate::web_engine::device_facts(&gpu))
}

/// Load a model package from an HTTP(S) base URL onto this browser's GPU (Cache Storage first,
/// then the network with resumable downloads). `on_progress(shard, shards, bytes_done, bytes_total,
/// from_cache)` is called as shards arrive. Resolves to a JSON report.
#[wasm_bindgen]
pub async fn load_package(base_url: String, on_progress: Option<js_sys::Function>) -> Result<String, JsValue> {
    let gpu = Gpu::new(GpuOptions::default()).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    let mut progress = |i: usize, n: usize, done: u64, total: u64, cached: bool| {
        if let Some(f) = &on_progress {
            let args = js_sys::Array::of5(&(i as f64).into(), &(n as f64).into(), &(done as f64).into(), &(total as f64).into(), &cached.into());
            let _ = f.apply(&JsValue::NULL, &args);
        }
    };
    let (_, _, report) = crate::weights::http::load(&gpu, &base_url, &mut progress).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(serde_json::to_string(&report).expect("report serialises"))
}

/// Delete all cached model packages. Resolves to whether anything was deleted.
#[wasm_bindgen]
pub async fn clear_package_cache() -> Result<bool, JsValue> {
    crate::weights::http::clear_cache().await.map_err(|e| JsValue::from_str(&e.to_string()))
}
