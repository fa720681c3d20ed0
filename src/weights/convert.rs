//! Converter: an upstream Hugging Face checkpoint directory (safetensors, any supported key
//! layout) → a model package. Tensors are read one at a time from memory-mapped files, so the
//! whole bf16 model is never held in memory. Also writes packages of random weights at any config.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::error::{io_err, PResult, PackageError};
use super::layout::{canonical, detect, ModelKind};
use super::manifest::Manifest;
use super::policy::Policy;
use super::shapes::expected;
use super::writer::PackageWriter;

pub struct ConvertOptions {
    pub policy: Policy,
    pub max_shard: u64,
}

/// Progress of a conversion: tensors done of total, bytes of source read.
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub name: &'a str,
}

fn read_json(path: &Path) -> PResult<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| PackageError::BadManifest { file: path.display().to_string(), msg: e.to_string() })
}

/// The checkpoint's safetensors files: those the index names, else `model.safetensors`, else
/// every `.safetensors` file in the directory.
fn shard_files(dir: &Path) -> PResult<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    let single = dir.join("model.safetensors");
    let files: Vec<PathBuf> = if single.exists() && !index.exists() {
        vec![single]
    } else if index.exists() {
        let v = read_json(&index)?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| PackageError::BadManifest {
            file: index.display().to_string(),
            msg: "no weight_map".into(),
        })?;
        let mut f: Vec<PathBuf> = map.values().filter_map(|v| v.as_str()).map(|s| dir.join(s)).collect();
        f.sort();
        f.dedup();
        f
    } else {
        let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        f.sort();
        f
    };
    if files.is_empty() {
        return Err(PackageError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no .safetensors files in this directory"),
        });
    }
    Ok(files)
}

/// Upstream data as f32.
fn to_f32(what: &str, dtype: Dtype, bytes: &[u8]) -> PResult<Vec<f32>> {
    Ok(match dtype {
        Dtype::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        other => return Err(PackageError::Dtype { what: what.into(), dtype: format!("{other:?}") }),
    })
}

pub fn convert(src: &Path, dst: &Path, opts: &ConvertOptions, progress: &mut dyn FnMut(Progress)) -> PResult<Manifest> {
    let files = shard_files(src)?;
    let maps: Vec<memmap2::Mmap> = files
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p).map_err(io_err(p))?;
            // SAFETY: read-only map of a file that the converter does not modify.
            unsafe { memmap2::Mmap::map(&f) }.map_err(io_err(p))
        })
        .collect::<PResult<_>>()?;
    let tensors: Vec<SafeTensors> = maps
        .iter()
        .zip(&files)
        .map(|(m, p)| SafeTensors::deserialize(m).map_err(|e| PackageError::Safetensors { file: p.display().to_string(), msg: e.to_string() }))
        .collect::<PResult<_>>()?;
    // Upstream key → (file index).
    let mut keys: Vec<(String, usize)> =
        tensors.iter().enumerate().flat_map(|(i, t)| t.names().into_iter().map(move |n| (n.to_string(), i))).collect();
    keys.sort();
    let kind = detect(keys.iter().map(|(k, _)| k.as_str())).ok_or_else(|| PackageError::UnknownLayout {
        dir: src.display().to_string(),
        sample: keys.iter().take(5).map(|(k, _)| k.clone()).collect(),
    })?;
    let config_path = src.join("config.json");
    let config = if config_path.exists() { read_json(&config_path)? } else { serde_json::json!({}) };
    let tied = config.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(true);

    let want: HashMap<String, (Vec<usize>, bool)> =
        expected(kind, &config).into_iter().map(|e| (e.name, (e.shape, e.required))).collect();
    let mut plan: Vec<(String, String, usize)> = Vec::new(); // canonical, upstream, file
    for (key, file) in &keys {
        let Some(name) = canonical(kind, key) else { continue };
        if name == "llm.lm_head.weight" && tied {
            continue; // the tied head is the embedding
        }
        plan.push((name, key.clone(), *file));
    }
    for (name, (_, required)) in &want {
        if *required && !plan.iter().any(|(n, _, _)| n == name) {
            return Err(PackageError::MissingTensor { name: name.clone(), file: src.display().to_string() });
        }
    }
    let mut writer = PackageWriter::new(dst, kind.id(), config.clone(), opts.max_shard)?;
    let total = plan.len();
    for (i, (name, key, file)) in plan.iter().enumerate() {
        progress(Progress { done: i, total, name });
        let view = tensors[*file].tensor(key).expect("listed key");
        let shape = view.shape().to_vec();
        if let Some((exp, _)) = want.get(name) {
            if *exp != shape {
                return Err(PackageError::ShapeMismatch { name: key.clone(), expected: exp.clone(), got: shape });
            }
        }
        let data = to_f32(key, view.dtype(), view.data())?;
        writer.add(name, &shape, &data, opts.policy.format(name, &shape))?;
    }
    progress(Progress { done: total, total, name: "" });
    let tok = src.join("tokenizer.json");
    if tok.exists() {
        writer.add_file(&tok, "tokenizer.json")?;
    }
    writer.finish()
}

/// A package of random weights (uniform with std 0.02; norms and LayerScale near 1 and 0.01) at any
/// config of `kind`, for full-size benchmarks without a download. Optional heads included.
pub fn write_random(
    dst: &Path,
    kind: ModelKind,
    config: serde_json::Value,
    opts: &ConvertOptions,
    seed: u64,
    progress: &mut dyn FnMut(Progress),
) -> PResult<Manifest> {
    let list = expected(kind, &config);
    let mut writer = PackageWriter::new(dst, kind.id(), config, opts.max_shard)?;
    let mut rng = crate::testing::Rng::new(seed);
    for (i, e) in list.iter().enumerate() {
        progress(Progress { done: i, total: list.len(), name: &e.name });
        let n: usize = e.shape.iter().product();
        let base = if e.name.contains("norm") && e.name.ends_with(".weight") || e.name.ends_with("ln_q.weight") {
            1.0
        } else {
            0.0
        };
        let scale = if e.name.ends_with(".gamma") { 0.01 } else { 0.02 };
        // Uniform with the normal's standard deviation: as good for speed tests, and cheap
        // enough that a 5 B-parameter package is written in minutes.
        let half_width = scale * 3f32.sqrt();
        // Each 4M-value chunk draws from its own stream, so all cores can fill it.
        let tensor_seed = rng.next_u64();
        let mut data = vec![0f32; n];
        super::parallel::for_each_chunk_mut(&mut data, 1 << 22, |c, chunk| {
            let mut r = crate::testing::Rng::new(tensor_seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            chunk.iter_mut().for_each(|x| *x = base + r.uniform(-half_width, half_width));
        });
        writer.add(&e.name, &e.shape, &data, opts.policy.format(&e.name, &e.shape))?;
    }
    progress(Progress { done: list.len(), total: list.len(), name: "" });
    writer.finish()
}
