//! The browser test harness's wasm surface (feature `testing`, in the engine's test build
//! `pkg-test/` only): the kernel suite (`testing::cases`) and the models' parity suites, driven by
//! `tests/browser/suite.html` and the app's kernel self-test page.

use wasm_bindgen::prelude::*;

use crate::gpu::{Gpu, GpuOptions};

/// Run the kernel suite (`testing::cases`, those whose name contains `filter`, all if empty) on
/// this browser's WebGPU adapter, every row of every case past failures. Returns a JSON report:
/// {"device": .., "path": .., "seed": .., "results": [{name, op, ok, detail, ms, rows: [{label,
/// err, tol, ok, detail}]}]}.
#[wasm_bindgen]
pub async fn run_kernel_suite(filter: String, seed: f64) -> Result<String, JsValue> {
    let opts = GpuOptions { allow_f16: true, allow_subgroups: false, allow_coop_matrix: false, poison: true };
    let gpu = Gpu::new(opts).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
    let mut results = Vec::new();
    for case in crate::testing::cases() {
        if !filter.is_empty() && !case.name.contains(&filter) {
            continue;
        }
        let t0 = js_sys::Date::now();
        let r = crate::testing::run_case(&gpu, &case, seed as u64).await;
        let ms = js_sys::Date::now() - t0;
        for row in r.rows.iter().filter(|row| !row.ok) {
            web_sys::console::log_1(&format!("FAIL {} {}: {}", case.name, row.label, row.detail).into());
        }
        let mut entry = suite_result(case.name, if r.ok() { Ok(r.summary()) } else { Err(r.summary()) }, ms);
        let rows: Vec<serde_json::Value> =
            r.rows.iter().map(|row| serde_json::json!({"label": row.label, "err": row.err, "tol": row.tol, "ok": row.ok, "detail": row.detail})).collect();
        entry["op"] = case.op.into();
        entry["rows"] = rows.into();
        results.push(entry);
    }
    let mut report: serde_json::Value = serde_json::from_str(&suite_report(&gpu, results)).expect("report is JSON");
    report["seed"] = (seed as u64).into();
    Ok(report.to_string())
}

/// Run the Qwen2.5-VL parity checks (`testing::qwen_parity`, names containing `filter`) with the
/// package at `package_url` (the tiny fixture converted to f32) against the reference outputs at
/// `fixture_url`. Returns the same JSON report as `run_kernel_suite`.
#[wasm_bindgen]
pub async fn run_qwen_parity(package_url: String, fixture_url: String, filter: String) -> Result<String, JsValue> {
    use crate::model::qwen::{DecodeKernels, DecodePlan, QwenConfig, TextModel, VisionModel};
    use crate::testing::qwen_parity::{run_check, Fixture, CHECKS};
    use crate::weights::http;
    let js = |e: &dyn std::fmt::Display| JsValue::from_str(&e.to_string());
    let (gpu, manifest, params) = suite_setup(&package_url).await?;
    let tokenizer = manifest.tokenizer.as_deref().ok_or_else(|| JsValue::from_str("the package has no tokenizer"))?;
    let tokenizer = http::file(&package_url, tokenizer).await.map_err(|e| js(&e))?;
    let reference = http::file(&fixture_url, "reference.safetensors").await.map_err(|e| js(&e))?;
    let meta = http::file(&fixture_url, "reference.json").await.map_err(|e| js(&e))?;
    let fx = Fixture::new(reference, &String::from_utf8_lossy(&meta), &tokenizer, &manifest.config).map_err(|e| js(&e))?;
    let cfg = QwenConfig::from_json(&manifest.config).map_err(|e| js(&e))?;
    let mut text = TextModel::new(&gpu, &cfg.text, &params).map_err(|e| js(&e))?;
    let vision = VisionModel::new(&gpu, &cfg.vision, &params).map_err(|e| js(&e))?;
    let mut results = Vec::new();
    for name in CHECKS.iter().filter(|n| filter.is_empty() || n.contains(filter.as_str())) {
        let t0 = js_sys::Date::now();
        let r = run_check(&gpu, &fx, &text, &vision, name).await;
        results.push(suite_result(name, r, js_sys::Date::now() - t0));
    }
    // The decode step a GPU runs (4 dispatches a layer), which a CPU adapter such as SwiftShader
    // does not choose by itself: transformers' greedy tokens through it too (the video prompt's
    // run natively, tests/qwen.rs; SwiftShader takes 25 s for this one).
    let default = text.decode;
    text.decode = DecodePlan::all(DecodeKernels::Folded);
    for name in ["text greedy"].into_iter().filter(|n| default != text.decode && (filter.is_empty() || n.contains(filter.as_str()))) {
        let t0 = js_sys::Date::now();
        let r = run_check(&gpu, &fx, &text, &vision, name).await;
        results.push(suite_result(&format!("{name}, folded decode"), r, js_sys::Date::now() - t0));
    }
    Ok(suite_report(&gpu, results))
}

/// A test suite's device (poisoned buffers; the f16 path where the adapter has it) and the
/// package at `package_url`, loaded.
async fn suite_setup(package_url: &str) -> Result<(Gpu, crate::weights::Manifest, crate::model::Params), JsValue> {
    let js = |e: &dyn std::fmt::Display| JsValue::from_str(&e.to_string());
    let opts = GpuOptions { allow_f16: true, allow_subgroups: false, allow_coop_matrix: false, poison: true };
    let gpu = Gpu::new(opts).await.map_err(|e| js(&e))?;
    let (manifest, params, _) = crate::weights::http::load(&gpu, package_url, &mut |_, _, _, _, _| {}).await.map_err(|e| js(&e))?;
    Ok((gpu, manifest, crate::model::Params::new(params)))
}

/// One check's entry in a suite report, logged to the console as it lands.
fn suite_result(name: &str, r: crate::testing::CaseOutcome, ms: f64) -> serde_json::Value {
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(e) => (false, e),
    };
    web_sys::console::log_1(&format!("{} {name}: {detail}", if ok { "PASS" } else { "FAIL" }).into());
    serde_json::json!({"name": name, "ok": ok, "detail": detail, "ms": ms})
}

fn suite_report(gpu: &Gpu, results: Vec<serde_json::Value>) -> String {
    serde_json::json!({"device": gpu.info.to_string(), "path": format!("{:?}", gpu.act), "results": results}).to_string()
}

/// Run the VGGT parity checks (`testing::vggt_parity`, names containing `filter`) with the package
/// at `package_url` (the tiny fixture converted to f32) against the reference at `fixture_url`.
#[wasm_bindgen]
pub async fn run_vggt_parity(package_url: String, fixture_url: String, filter: String) -> Result<String, JsValue> {
    use crate::model::vggt::Aggregator;
    use crate::testing::reference_file::ReferenceFile;
    use crate::testing::vggt_parity::{run_check, VggtUnderTest, CHECKS};
    use crate::weights::{http, layout::ModelKind, shapes::VggtDims};
    let js = |e: &dyn std::fmt::Display| JsValue::from_str(&e.to_string());
    let (gpu, manifest, params) = suite_setup(&package_url).await?;
    let reference = ReferenceFile::new(http::file(&fixture_url, "reference.safetensors").await.map_err(|e| js(&e))?).map_err(|e| js(&e))?;
    let kind = ModelKind::from_id(&manifest.model_kind).ok_or_else(|| JsValue::from_str("unknown model kind"))?;
    let agg = Aggregator::new(&gpu, VggtDims::from_config(kind, &manifest.config), &params).await.map_err(|e| js(&e))?;
    let mut m = VggtUnderTest { agg, params: &params, config: &manifest.config };
    let mut results = Vec::new();
    for name in CHECKS.iter().filter(|n| filter.is_empty() || n.contains(filter.as_str())) {
        let t0 = js_sys::Date::now();
        let r = run_check(&gpu, &reference, &mut m, name).await;
        results.push(suite_result(name, r, js_sys::Date::now() - t0));
    }
    Ok(suite_report(&gpu, results))
}

/// Run the Spatial-MLLM parity checks (`testing::spatial_parity`) with the package at
/// `package_url` (a tiny v1.0 or v1.1 fixture converted to f32) against the reference at `fixture_url`.
#[wasm_bindgen]
pub async fn run_spatial_parity(package_url: String, fixture_url: String, filter: String) -> Result<String, JsValue> {
    use crate::model::spatial::SpatialMllm;
    use crate::testing::spatial_parity::{run_check, SpatialFixture, CHECKS};
    use crate::weights::http;
    let js = |e: &dyn std::fmt::Display| JsValue::from_str(&e.to_string());
    let (gpu, manifest, params) = suite_setup(&package_url).await?;
    let tokenizer = manifest.tokenizer.as_deref().ok_or_else(|| JsValue::from_str("the package has no tokenizer"))?;
    let tokenizer = http::file(&package_url, tokenizer).await.map_err(|e| js(&e))?;
    let reference = http::file(&fixture_url, "reference.safetensors").await.map_err(|e| js(&e))?;
    let meta = http::file(&fixture_url, "reference.json").await.map_err(|e| js(&e))?;
    let fx = SpatialFixture::new(reference, &String::from_utf8_lossy(&meta), &tokenizer).map_err(|e| js(&e))?;
    let model = SpatialMllm::new(&gpu, &manifest.model_kind, &manifest.config, &params).await.map_err(|e| js(&e))?;
    let mut results = Vec::new();
    for name in CHECKS.iter().filter(|n| filter.is_empty() || n.contains(filter.as_str())) {
        let t0 = js_sys::Date::now();
        let r = run_check(&gpu, &fx, &model, name).await;
        results.push(suite_result(name, r, js_sys::Date::now() - t0));
    }
    Ok(suite_report(&gpu, results))
}
