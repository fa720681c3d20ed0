//! Converter: an upstream Hugging Face checkpoint directory (safetensors, any supported key
//! layout) → a model package. The conversion is planned from the files' headers
//! (`conversion::ConversionPlan`, shared with the browser's converter), then each shard is written
//! part by part from memory-mapped files, a bounded slice of rows at a time. Also writes packages
//! of random weights at any config.

use std::path::{Path, PathBuf};

use super::conversion::{ConversionPlan, TOKENIZER};
use super::error::{io_err, PResult, PackageError};
use super::layout::ModelKind;
use super::manifest::Manifest;
use super::packer::PartPacker;
use super::policy::Policy;
use super::shapes::{check_config, expected};
use super::source::{header_len, SourceFile};
use super::writer::{prepare_dir, write_manifest, PackageWriter, ShardSink};

pub struct ConvertOptions {
    pub policy: Policy,
    pub max_shard: u64,
}

/// Progress of a conversion: parts done of total, and the tensor being written.
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub name: &'a str,
}

/// Source bytes packed at a time: bounds the memory a conversion holds beyond the mapped files.
const CHUNK_BYTES: u64 = 64 << 20;

fn read_json(path: &Path) -> PResult<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|e| PackageError::BadManifest { file: path.display().to_string(), msg: e.to_string() })
}

/// The checkpoint's safetensors files: those the index names, else `model.safetensors`, else
/// every `.safetensors` file in the directory.
pub fn shard_files(dir: &Path) -> PResult<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    let single = dir.join("model.safetensors");
    let files: Vec<PathBuf> = if single.exists() && !index.exists() {
        vec![single]
    } else if index.exists() {
        let v = read_json(&index)?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| PackageError::BadManifest { file: index.display().to_string(), msg: "no weight_map".into() })?;
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

/// A mapped source file and its parsed header.
fn open_source(index: usize, path: &Path) -> PResult<(memmap2::Mmap, SourceFile)> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    // SAFETY: read-only map of a file that the converter does not modify.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io_err(path))?;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let n = header_len(&name, &map)?;
    let header = map.get(8..8 + n as usize).ok_or_else(|| PackageError::Safetensors { file: name.clone(), msg: "truncated inside its header".into() })?;
    let source = SourceFile::parse(index, &name, header)?;
    if (map.len() as u64) < source.size {
        return Err(PackageError::Truncated { file: path.display().to_string(), expected: source.size, got: map.len() as u64 });
    }
    Ok((map, source))
}

pub fn convert(src: &Path, dst: &Path, opts: &ConvertOptions, progress: &mut dyn FnMut(Progress)) -> PResult<Manifest> {
    let files = shard_files(src)?;
    let (maps, sources): (Vec<memmap2::Mmap>, Vec<SourceFile>) =
        files.iter().enumerate().map(|(i, p)| open_source(i, p)).collect::<PResult<Vec<_>>>()?.into_iter().unzip();
    let config_path = src.join("config.json");
    let config = if config_path.exists() { read_json(&config_path)? } else { serde_json::json!({}) };
    let tok = src.join(TOKENIZER);
    let plan = ConversionPlan::new(&src.display().to_string(), sources, config, tok.exists(), &opts.policy, opts.max_shard)?;
    prepare_dir(dst)?;
    let total = plan.parts.len();
    let mut hashes = Vec::new();
    let mut done = 0;
    for (i, shard) in plan.shards.iter().enumerate() {
        let mut sink = ShardSink::create(dst, shard)?;
        for part in plan.parts.iter().filter(|p| p.shard == i) {
            progress(Progress { done, total, name: &part.tensor });
            let mut packer = PartPacker::new(&part.key, part.format, part.dtype, part.rows, part.cols)?;
            let row = packer.source_row_bytes() as u64;
            let step = (CHUNK_BYTES / row).max(1) * row;
            let data = &maps[part.file][part.start as usize..part.end as usize];
            for chunk in data.chunks(step as usize) {
                sink.write(&packer.push(chunk)?)?;
            }
            sink.write(&packer.finish()?)?;
            done += 1;
        }
        hashes.push(sink.finish()?.sha256);
    }
    progress(Progress { done: total, total, name: "" });
    if plan.tokenizer.is_some() {
        std::fs::copy(&tok, dst.join(TOKENIZER)).map_err(io_err(&tok))?;
    }
    let manifest = plan.manifest(&hashes)?;
    write_manifest(dst, &manifest)?;
    Ok(manifest)
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
    check_config(kind, &config).map_err(|msg| PackageError::Structure { file: dst.display().to_string(), msg: format!("config: {msg}") })?;
    let list = expected(kind, &config);
    let mut writer = PackageWriter::new(dst, kind.id(), config, opts.max_shard)?;
    let mut rng = crate::rng::Rng::new(seed);
    for (i, e) in list.iter().enumerate() {
        progress(Progress { done: i, total: list.len(), name: &e.name });
        let n: usize = e.shape.iter().product();
        let base = if e.name.contains("norm") && e.name.ends_with(".weight") || e.name.ends_with("ln_q.weight") { 1.0 } else { 0.0 };
        let scale = if e.name.ends_with(".gamma") { 0.01 } else { 0.02 };
        // Uniform with the normal's standard deviation: as good for speed tests, and cheap
        // enough that a 5 B-parameter package is written in minutes.
        let half_width = scale * 3f32.sqrt();
        // Each 4M-value chunk draws from its own stream, so all cores can fill it.
        let tensor_seed = rng.next_u64();
        let mut data = vec![0f32; n];
        super::parallel::for_each_chunk_mut(&mut data, 1 << 22, |c, chunk| {
            let mut r = crate::rng::Rng::new(tensor_seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            chunk.iter_mut().for_each(|x| *x = base + r.uniform(-half_width, half_width));
        });
        writer.add(&e.name, &e.shape, &data, opts.policy.format(&e.name, &e.shape))?;
    }
    progress(Progress { done: list.len(), total: list.len(), name: "" });
    writer.finish()
}
