//! The wasm-bindgen surface for the browser.

use wasm_bindgen::prelude::*;

use crate::gpu::{Gpu, GpuOptions};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Adapter and negotiated device, as text.
#[wasm_bindgen]
pub async fn gpu_info() -> Result<String, JsValue> {
    let gpu = Gpu::new(GpuOptions::default()).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(gpu.info.to_string())
}

/// Run the kernel suite (cases whose name contains `filter`, all if empty) on this browser's
/// WebGPU adapter. Returns a JSON report: {"device": .., "path": .., "results": [{name, ok, detail, ms}]}.
#[wasm_bindgen]
pub async fn run_kernel_suite(filter: String, seed: f64) -> Result<String, JsValue> {
    let opts = GpuOptions { allow_f16: true, allow_subgroups: false, poison: true };
    let gpu = Gpu::new(opts).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    let mut results = Vec::new();
    for case in crate::testing::all_cases() {
        if !filter.is_empty() && !case.name.contains(&filter) {
            continue;
        }
        let t0 = js_sys::Date::now();
        let r = crate::testing::cases::run_case(&gpu, &case, seed as u64).await;
        let ms = js_sys::Date::now() - t0;
        web_sys::console::log_1(&format!("{} {}: {}", if r.ok { "PASS" } else { "FAIL" }, case.name, r.detail).into());
        results.push(serde_json::json!({"name": case.name, "ok": r.ok, "detail": r.detail, "ms": ms}));
    }
    let report = serde_json::json!({"device": gpu.info.to_string(), "path": format!("{:?}", gpu.act), "results": results});
    Ok(report.to_string())
}
