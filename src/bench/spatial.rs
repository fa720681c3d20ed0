//! Spatial-MLLM at a real config (random weights from a package): time to first token for a video
//! split into its stages (CPU preprocessing of random frames, ViT, VGGT, connector, prefill),
//! decode tokens/s, peak activation memory, and the package's download size.

use crate::gpu::{clock::now_ms, Gpu, Recorder};
use crate::model::qwen::generate::{generate, GenerationConfig, Prompt};
use crate::model::qwen::rope_index::{rope_index, VisionGrid};
use crate::model::qwen::vision::merge_into_prompt;
use crate::model::qwen::vision_layout::Grid;
use crate::model::qwen::{KvCache, VisionModel};
use crate::model::spatial::SpatialMllm;
use crate::model::vggt::Frames;
use crate::preprocess::{prepare_video, RgbFrames, TorchFloat};
use crate::rng::Rng;

pub struct SpatialRun {
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub vision_tokens: usize,
    pub prompt_tokens: usize,
    /// Source frames resized and normalised for both encoders (CPU, one thread); NaN where the
    /// asked size is below what preprocessing produces.
    pub source: (usize, usize),
    pub preprocess_ms: f64,
    pub vit_ms: f64,
    pub vggt_ms: f64,
    pub connector_ms: f64,
    pub prefill_ms: f64,
    pub decode_tok_s: f64,
    pub activation_bytes: u64,
}

/// One video of `frames` random frames of `height` x `width` (multiples of 28), a ~20-token
/// question, `new_tokens` greedy tokens. Each stage is submitted and waited for on its own.
pub async fn run(gpu: &Gpu, m: &SpatialMllm, frames: usize, height: usize, width: usize, new_tokens: usize) -> Result<SpatialRun, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let c = &m.cfg.vision;
    let unit = c.patch * c.merge;
    if frames % 2 != 0 || height % unit != 0 || width % unit != 0 {
        return Err(format!("{frames} frames of {width}x{height}: an even frame count and sides that are multiples of {unit} are needed"));
    }
    let grid = Grid { t: frames / 2, h: height / c.patch, w: width / c.patch };
    // Random frames of the size that qwen-vl-utils resizes to this one: ScanNet's 640x480 for
    // 644x476 (spec §2.1), else the size itself; both encoders' inputs come from them.
    let source = if (width, height) == (644, 476) { (640, 480) } else { (width, height) };
    let mut rng = Rng::new(9);
    let bytes: Vec<u8> = (0..frames * source.0 * source.1 * 3).map(|_| rng.below(256) as u8).collect();
    let raw = RgbFrames::new(frames, source.1, source.0, bytes).map_err(|e| err(&e))?;
    let t0 = now_ms();
    let prepared = prepare_video(&raw, TorchFloat::Fma).map_err(|e| err(&e))?;
    let preprocess_ms = now_ms() - t0;
    // Below the video pixel budget's minimum (the small sizes for CPU adapters) preprocessing
    // scales frames up, so those runs feed the encoders random inputs of the asked size instead.
    let exact = (prepared.frames.width, prepared.frames.height) == (width, height);
    let (vit_patches, px) = if exact {
        (prepared.vit.pixel_values, prepared.vggt.pixels)
    } else {
        let rows = grid.t * grid.h * grid.w * VisionModel::patch_dim(c);
        ((0..rows).map(|_| rng.uniform(-1.8, 2.1)).collect(), (0..frames * 3 * height * width).map(|_| rng.unit() as f32).collect())
    };
    let preprocess_ms = if exact { preprocess_ms } else { f64::NAN };
    let f = Frames { pixels: &px, count: frames, height, width };
    gpu.clear_pool();
    let stage = |f: &mut dyn FnMut(&mut Recorder) -> Result<(), String>| {
        let t0 = now_ms();
        let mut rec = Recorder::new(gpu);
        let r = f(&mut rec);
        let submitted = r.and_then(|_| rec.submit().map_err(|e| err(&e)));
        async move {
            submitted?;
            gpu.finish().await.map_err(|e| err(&e))?;
            Ok::<f64, String>(now_ms() - t0)
        }
    };
    let mut vit = None;
    let vit_ms = stage(&mut |rec| {
        vit = Some(m.vision.forward(rec, &vit_patches, &[grid], None).map_err(|e| err(&e))?);
        Ok(())
    })
    .await?;
    let mut agg = None;
    let s = m.spatial_encoder("bench spatial").map_err(|e| err(&e))?;
    let last = s.aggregator.dims.depth - 1;
    let vggt_ms = stage(&mut |rec| {
        agg = Some(s.aggregator.forward(rec, &f, &[last], None).map_err(|e| err(&e))?);
        Ok(())
    })
    .await?;
    let (vit, agg) = (vit.expect("ran"), agg.expect("ran"));
    let mut fused = None;
    let connector_ms = stage(&mut |rec| {
        let spatial = s.connector.project(rec, &agg.layers[0].1, frames, agg.patch_start, agg.grid).map_err(|e| err(&e))?;
        fused = Some(s.connector.fuse(rec, &vit, &spatial).map_err(|e| err(&e))?);
        Ok(())
    })
    .await?;
    let fused = fused.expect("ran");
    drop(agg);

    // The prompt: the chat template's tokens around the video block, with a question's worth of text.
    let t = &m.cfg.tokens;
    let n_vis = fused.rows();
    let mut ids: Vec<u32> = (0..14).map(|i| (i * 37 % 1000) as u32).collect();
    ids.push(t.vision_start);
    ids.extend(std::iter::repeat_n(t.video_pad, n_vis));
    ids.push(t.vision_end);
    ids.extend((0..20).map(|i| (i * 53 % 1000) as u32));
    let vg = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: 1.0 };
    let (positions, delta) = rope_index(&ids, &[vg], t, c.merge, c.tokens_per_second).map_err(|e| err(&e))?;
    let mut rec = Recorder::new(gpu);
    let embeds = m.text.embed(&mut rec, &gpu.upload_u32(&ids, &[ids.len()]).map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    merge_into_prompt(&mut rec, &embeds, &ids, [t.image_pad, t.video_pad], &fused).map_err(|e| err(&e))?;
    rec.submit().map_err(|e| err(&e))?;
    let mut cache = KvCache::new(gpu, &m.text.cfg, ids.len() + new_tokens).map_err(|e| err(&e))?;
    let g = generate(gpu, &m.text, &mut cache, Prompt { embeds, positions, delta }, &GenerationConfig::greedy(new_tokens, vec![]), &mut |_| true)
        .await
        .map_err(|e| err(&e))?;
    let decoded = g.tokens.len().saturating_sub(1);
    Ok(SpatialRun {
        frames,
        height,
        width,
        vision_tokens: n_vis,
        prompt_tokens: ids.len(),
        source,
        preprocess_ms,
        vit_ms,
        vggt_ms,
        connector_ms,
        prefill_ms: g.prefill_ms,
        decode_tok_s: if decoded > 0 { decoded as f64 / g.decode_ms * 1e3 } else { f64::NAN },
        activation_bytes: gpu.stats.activation_bytes(),
    })
}

pub fn format_table(gpu: &Gpu, package_bytes: u64, weights: &str, runs: &[SpatialRun]) -> String {
    let mut s = format!("device: {}\npath: {:?} activations\npackage: {:.2} GB download ({weights})\n\n", gpu.info, gpu.act, package_bytes as f64 / 1e9);
    s += "| frames | size | vision tokens | prompt | preprocessing ms | ViT ms | VGGT ms | connector ms | prefill ms | time to first token ms | decode tok/s | peak activations GB |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in runs {
        let ttft = r.preprocess_ms.max(0.0) + r.vit_ms + r.vggt_ms + r.connector_ms + r.prefill_ms;
        s += &format!(
            "| {} | {}x{} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |\n",
            r.frames,
            r.width,
            r.height,
            r.vision_tokens,
            r.prompt_tokens,
            if r.preprocess_ms.is_finite() { format!("{:.0}", r.preprocess_ms) } else { "n/a".into() },
            r.vit_ms,
            r.vggt_ms,
            r.connector_ms,
            r.prefill_ms,
            ttft,
            r.decode_tok_s,
            r.activation_bytes as f64 / 1e9
        );
    }
    if let Some(r) = runs.iter().find(|r| r.preprocess_ms.is_finite()) {
        s += &format!(
            "\n(preprocessing: {} random {}x{} frames resized to {}x{} and normalised for both encoders on the CPU, one thread; \
             decoding the video is not included — the app decodes with WebCodecs and preprocesses as frames arrive)\n",
            r.frames, r.source.0, r.source.1, r.width, r.height
        );
    }
    s
}
