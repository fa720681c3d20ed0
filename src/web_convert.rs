//! The browser's converter, wasm side: the same plan and packing as `spatial-mllm convert`
//! (`weights::conversion`, `weights::packer`), driven from JavaScript (`www/hub/convert.js`),
//! which fetches the source bytes by Range request and writes the shards into Cache Storage. What
//! JS needs and Rust has: the plan from the files' headers, a packer per part, a SHA-256 whose
//! state survives a page reload, and the manifest once every shard's hash is known.

use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::web_engine::{Fail, PACKAGE};
use crate::weights::conversion::ConversionPlan as Plan;
use crate::weights::packer::PartPacker as Packer;
use crate::weights::policy::Policy;
use crate::weights::sha::ResumableSha256;
use crate::weights::source::{header_len, SourceFile};
use crate::weights::PackageError;

fn package_err(e: PackageError) -> JsValue {
    Fail::from(e).into()
}

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// The header length of a safetensors file from its first 8 bytes.
#[wasm_bindgen(js_name = safetensors_header_len)]
pub fn safetensors_header_len(file: &str, first8: &[u8]) -> Result<f64, JsValue> {
    header_len(file, first8).map(|n| n as f64).map_err(package_err)
}

/// A conversion planned from the checkpoint's headers.
#[wasm_bindgen]
pub struct ConversionPlan {
    plan: Plan,
}

#[wasm_bindgen]
impl ConversionPlan {
    /// `files`: `[{name, header: Uint8Array}]` (each safetensors file's JSON header, in the order
    /// the converter lists them); `config_json`: config.json's text (`"{}"` when there is none);
    /// `policy`: format rules as the CLI's `--policy` ("" for the default); `max_shard`: bytes.
    #[wasm_bindgen(constructor)]
    pub fn new(label: &str, files: Array, config_json: &str, has_tokenizer: bool, policy: &str, max_shard: f64) -> Result<ConversionPlan, JsValue> {
        let config: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| package_err(PackageError::BadManifest { file: format!("{label}/config.json"), msg: e.to_string() }))?;
        let mut sources = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let name = get(&f, "name").as_string().unwrap_or_default();
            let header: Uint8Array = get(&f, "header").dyn_into().map_err(|_| Fail::new(PACKAGE, format!("{name}: no header bytes")))?;
            sources.push(SourceFile::parse(i, &name, &header.to_vec()).map_err(package_err)?);
        }
        let policy = Policy::parse(policy).map_err(package_err)?;
        let plan = Plan::new(label, sources, config, has_tokenizer, &policy, max_shard as u64).map_err(package_err)?;
        Ok(ConversionPlan { plan })
    }

    /// "spatial-mllm-v1.1", "qwen2.5-vl", ...
    pub fn kind(&self) -> String {
        self.plan.kind.id().to_string()
    }

    pub fn package_bytes(&self) -> f64 {
        self.plan.package_bytes() as f64
    }

    pub fn source_bytes(&self) -> f64 {
        self.plan.source_bytes() as f64
    }

    /// Each source file's `{name, size}` (size: what its header implies).
    pub fn sources(&self) -> Array {
        self.plan
            .sources
            .iter()
            .map(|s| {
                let o = js_sys::Object::new();
                let _ = Reflect::set(&o, &"name".into(), &s.name.as_str().into());
                let _ = Reflect::set(&o, &"size".into(), &(s.size as f64).into());
                JsValue::from(o)
            })
            .collect()
    }

    /// The parts in package order: `[{id, tensor, part, shard, format, dtype, rows, cols, bytes,
    /// key, file, start, end}]` (`file` indexes `sources()`; `start..end` the source bytes).
    pub fn parts(&self) -> Result<JsValue, JsValue> {
        let parts: Vec<serde_json::Value> = self
            .plan
            .parts
            .iter()
            .enumerate()
            .map(|(id, p)| {
                serde_json::json!({
                    "id": id, "tensor": p.tensor, "part": p.part, "shard": p.shard, "format": p.format.name(),
                    "dtype": format!("{:?}", p.dtype), "rows": p.rows, "cols": p.cols, "bytes": p.bytes,
                    "key": p.key, "file": p.file, "start": p.start, "end": p.end,
                })
            })
            .collect();
        js_sys::JSON::parse(&serde_json::Value::Array(parts).to_string())
    }

    /// The shards: `[{file, bytes}]`.
    pub fn shards(&self) -> Result<JsValue, JsValue> {
        let shards: Vec<serde_json::Value> = self.plan.shards.iter().map(|s| serde_json::json!({"file": s.file, "bytes": s.bytes})).collect();
        js_sys::JSON::parse(&serde_json::Value::Array(shards).to_string())
    }

    /// Shard `index`'s header bytes (what the shard file starts with).
    pub fn shard_header(&self, index: usize) -> Vec<u8> {
        self.plan.shards[index].header.clone()
    }

    /// A packer for part `id` (of `parts()`).
    pub fn packer(&self, id: usize) -> Result<PartPacker, JsValue> {
        let p = self.plan.parts.get(id).ok_or_else(|| Fail::new(PACKAGE, format!("no part {id}")))?;
        Ok(PartPacker { inner: Some(Packer::new(&p.key, p.format, p.dtype, p.rows, p.cols).map_err(package_err)?) })
    }

    /// The manifest's text, given each shard's SHA-256 (hex) in order.
    pub fn manifest_json(&self, sha256: Vec<String>) -> Result<String, JsValue> {
        let m = self.plan.manifest(&sha256).map_err(package_err)?;
        Ok(serde_json::to_string_pretty(&m).expect("manifest serialises"))
    }
}

/// Packs one part from its source rows (see `weights::packer`).
#[wasm_bindgen]
pub struct PartPacker {
    inner: Option<Packer>,
}

#[wasm_bindgen]
impl PartPacker {
    /// Bytes of one source row: pushes must be whole rows.
    pub fn source_row_bytes(&self) -> usize {
        self.inner.as_ref().map_or(0, |p| p.source_row_bytes())
    }

    /// Pack whole source rows; returns their codes.
    pub fn push(&mut self, src: &[u8]) -> Result<Vec<u8>, JsValue> {
        let p = self.inner.as_mut().ok_or_else(|| Fail::new(PACKAGE, "this part is already finished"))?;
        p.push(src).map_err(package_err)
    }

    /// The scales (empty for f16 / f32), once every row was pushed.
    pub fn finish(&mut self) -> Result<Vec<u8>, JsValue> {
        let p = self.inner.take().ok_or_else(|| Fail::new(PACKAGE, "this part is already finished"))?;
        p.finish().map_err(package_err)
    }
}

/// SHA-256 whose state can be saved (`state()`, a string) and restored (`Sha256Stream.restore`).
#[wasm_bindgen]
pub struct Sha256Stream {
    inner: ResumableSha256,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Sha256Stream {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256Stream {
        Sha256Stream { inner: ResumableSha256::new() }
    }

    pub fn restore(state: &str) -> Result<Sha256Stream, JsValue> {
        let inner = serde_json::from_str(state).map_err(|e| Fail::new(PACKAGE, format!("a saved hash state is damaged ({e}): the file is read again")))?;
        Ok(Sha256Stream { inner })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// Bytes hashed so far.
    pub fn length(&self) -> f64 {
        self.inner.len as f64
    }

    pub fn state(&self) -> String {
        serde_json::to_string(&self.inner).expect("state serialises")
    }

    /// The digest as lowercase hex.
    pub fn hex(&self) -> String {
        self.inner.clone().finish_hex()
    }
}
