//! A plain Qwen2.5-VL package (tests/fixtures/qwen2.5-vl converted to f32) through the path the
//! CLI and the app use: `native::answer` (package loading, preprocessing from the decoded pixels,
//! `VideoSession`). The session's prompt ids and M-RoPE positions equal transformers' and its
//! greedy reply equals transformers' 32 tokens for the fixture's text-only question, its 4-frame
//! video (ViT alone, no VGGT) and its image; the staged encoding reports only the ViT.
#![cfg(feature = "cli")]

mod common;

use spatial_mllm_web::gpu::{Gpu, Recorder};
use spatial_mllm_web::model::qwen::chat::QwenTokenizer;
use spatial_mllm_web::model::qwen::generate::GenerationConfig;
use spatial_mllm_web::model::qwen::rope_index::VisionGrid;
use spatial_mllm_web::model::qwen::vision_layout::Grid;
use spatial_mllm_web::model::spatial::memory::estimate_package;
use spatial_mllm_web::model::spatial::{SpatialMllm, VideoInput, VideoSession};
use spatial_mllm_web::native::answer::{encode_frames, encode_image, encode_prepared, load_model, EncodedVideo};
use spatial_mllm_web::preprocess::{qwen_video_input, vggt_input, PreparedVideo, RgbFrames};
use spatial_mllm_web::testing::reference_file::ReferenceFile;
use spatial_mllm_web::weights::convert::{convert, ConvertOptions};
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::package::Package;
use spatial_mllm_web::weights::policy::Policy;

/// Each case's question, as the fixture generator asked it (`reference.json` has the prompts).
const CASES: [(&str, &str); 3] = [("text", "How many chairs are there? 房间 123  !"), ("image", "What is this?"), ("video", "How far is the sofa?")];
/// Greedy tokens the reference generated (no stop token).
const NEW_TOKENS: usize = 32;

struct Setup {
    gpu: Gpu,
    m: SpatialMllm,
    tok: QwenTokenizer,
    r: ReferenceFile,
    meta: serde_json::Value,
    pkg: Package,
    _dir: tempfile::TempDir,
}

/// The fixture converted to an f32 package and loaded by the CLI's loader.
fn setup() -> Setup {
    let gpu = common::gpu(false);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("pkg");
    let opts = ConvertOptions { policy: Policy::parse("=f32").unwrap(), max_shard: 128 << 20 };
    convert(&common::fixture_dir("qwen2.5-vl"), &dst, &opts, &mut |_| {}).unwrap();
    let (m, tok) = load_model(&gpu, &dst).unwrap();
    let meta = serde_json::from_slice(&std::fs::read(common::fixture_dir("qwen2.5-vl").join("reference.json")).unwrap()).unwrap();
    Setup { gpu, m, tok, r: common::reference("qwen2.5-vl"), meta, pkg: Package::open(&dst).unwrap(), _dir: dir }
}

fn question(case: &str) -> &'static str {
    CASES.iter().find(|(c, _)| *c == case).expect("a case").1
}

fn ints(r: &ReferenceFile, name: &str) -> Vec<i64> {
    r.f64s(name).unwrap().into_iter().map(|v| v as i64).collect()
}

fn u8_frames(r: &ReferenceFile, name: &str) -> RgbFrames {
    let shape = r.shape(name).unwrap();
    let (s, h, w) = match shape[..] {
        [s, h, w, 3] => (s, h, w),
        [h, w, 3] => (1, h, w),
        _ => panic!("{name} of shape {shape:?}"),
    };
    let data = r.u8s(name).unwrap();
    RgbFrames::new(s, h, w, data).unwrap()
}

/// The session's prompt for the case's question equals transformers' ids, positions and delta.
fn check_prompt(s: &Setup, session: &VideoSession, case: &str) {
    let p = session.prompt(&s.m, &s.tok, question(case)).unwrap();
    let want: Vec<u32> = ints(&s.r, &format!("{case}.input_ids")).into_iter().map(|v| v as u32).collect();
    assert_eq!(p.ids, want, "{case}: the session's prompt ids differ from transformers'");
    let pos = ints(&s.r, &format!("{case}.position_ids")); // [3, seq]
    let n = p.ids.len();
    for (i, q) in p.positions.iter().enumerate() {
        for c in 0..3 {
            assert_eq!(q[c] as i64, pos[c * n + i], "{case}: position {i} component {c}");
        }
    }
    assert_eq!(Some(p.delta), s.meta["cases"][case]["rope_delta"].as_i64(), "{case}: rope delta");
}

/// Ask the case's question; the reply must be transformers' greedy tokens and their text.
fn check_reply(s: &Setup, v: &mut EncodedVideo, case: &str) -> String {
    check_prompt(s, v.session(), case);
    let gen = GenerationConfig::greedy(NEW_TOKENS, vec![]);
    let mut streamed = String::new();
    let reply = v.ask(&s.gpu, &s.m, &s.tok, question(case), &gen, &mut |p| streamed += p).unwrap();
    let want: Vec<u32> = ints(&s.r, &format!("{case}.generated")).into_iter().map(|v| v as u32).collect();
    assert_eq!(reply.tokens, want, "{case}: greedy tokens differ from transformers'");
    assert_eq!(reply.text, s.tok.decode(&want, true).unwrap(), "{case}: reply text");
    assert_eq!(streamed, reply.text, "{case}: streamed pieces");
    format!("{case}: {} prompt ids, {NEW_TOKENS} greedy tokens identical", v.session().last_prompt_tokens)
}

#[test]
fn a_qwen_package_loads_without_the_spatial_encoder() {
    let s = setup();
    assert_eq!(s.m.kind, ModelKind::QwenVl);
    assert!(!s.m.has_spatial_encoder() && s.m.spatial.is_none());
    let e = s.m.spatial_encoder("space-aware fusion").err().expect("no spatial encoder");
    assert!(e.to_string().contains("qwen2.5-vl"), "{e}");
    // Memory estimates know the kind: no VGGT buffer, and the largest is the ViT's or a weight.
    let est = estimate_package(&s.pkg.manifest, 4, 140, 56, 4, false).unwrap();
    assert!(est.activation_bytes > 0 && !est.largest.contains("VGGT"), "{est:?}");
}

#[test]
fn a_text_only_question_matches_transformers() {
    let s = setup();
    let mut v = EncodedVideo::text_only(&s.gpu, &s.m, NEW_TOKENS).unwrap();
    assert_eq!((v.input, v.session().visual_tokens()), ("text", 0));
    println!("{}", check_reply(&s, &mut v, "text"));
    // Asked again, the shared prefix comes from the cache and the reply is the same.
    let first = v.session().last_prefill_tokens;
    println!("{}", check_reply(&s, &mut v, "text"));
    assert!(v.session().last_prefill_tokens < first, "the second question reused no cached prefix");
}

#[test]
fn a_video_without_vggt_matches_transformers() {
    let s = setup();
    let frames = u8_frames(&s.r, "video.frames_u8");
    // The fixture's frames went to the processor as they are (already multiples of 28): no resize.
    let prepared = PreparedVideo { vit: qwen_video_input(&frames).unwrap(), vggt: vggt_input(&frames), frames: frames.clone() };
    let want_rows = s.r.f32s("video.pixel_values_videos").unwrap();
    assert!(prepared.vit.pixel_values == want_rows, "our ViT rows differ from the processor's");
    let mut v = encode_prepared(&s.gpu, &s.m, &prepared, NEW_TOKENS).unwrap();
    assert_eq!((v.input, v.frame_size), ("video", (140, 56)));
    println!("{}", check_reply(&s, &mut v, "video"));

    // Staged encoding (the web engine's): only the ViT runs, and the reply is the same.
    let g = prepared.vit.grid_thw;
    let grid = Grid { t: g[0], h: g[1], w: g[2] };
    let input = VideoInput { vit_patches: &prepared.vit.pixel_values, grid, frames: prepared.vggt.as_frames() };
    let mut stages = Vec::new();
    let visual = pollster::block_on(s.m.encode_video_staged(&s.gpu, &input, &mut |st| stages.push(st.to_string()))).unwrap();
    assert_eq!(stages, ["ViT"]);
    let mut rec = Recorder::new(&s.gpu);
    let direct = s.m.encode_video(&mut rec, &input, None).unwrap();
    rec.submit().unwrap();
    let (a, b) = (pollster::block_on(s.gpu.read_f32(&visual)).unwrap(), pollster::block_on(s.gpu.read_f32(&direct)).unwrap());
    assert_eq!(a, b, "staged and one-submission encodings differ");
    let vg = VisionGrid { t: grid.t, h: grid.h, w: grid.w, second_per_grid_t: 1.0 };
    let mut session = VideoSession::new(&s.gpu, &s.m, visual, vg, 256).unwrap();
    check_prompt(&s, &session, "video");
    let out = pollster::block_on(session.ask(&s.gpu, &s.m, &s.tok, question("video"), &GenerationConfig::greedy(NEW_TOKENS, vec![]), &mut |_| true)).unwrap();
    let want: Vec<u32> = ints(&s.r, "video.generated").into_iter().map(|v| v as u32).collect();
    assert_eq!(out.tokens, want, "staged encoding: greedy tokens");

    // The CLI's path resizes to the video budget (here upwards); it must still encode and answer.
    let mut resized = encode_frames(&s.gpu, &s.m, &frames, 4).unwrap();
    assert_eq!((resized.frames.len(), resized.frame_size.0 % 28, resized.frame_size.1 % 28), (4, 0, 0));
    let r = resized.ask(&s.gpu, &s.m, &s.tok, question("video"), &GenerationConfig::greedy(4, vec![]), &mut |_| {}).unwrap();
    assert_eq!(r.tokens.len(), 4);
}

#[test]
fn an_image_matches_transformers() {
    let s = setup();
    let image = u8_frames(&s.r, "image.image_u8");
    let mut v = encode_image(&s.gpu, &s.m, &image, NEW_TOKENS).unwrap();
    // The processor resizes 61 x 139 to 56 x 140.
    assert_eq!((v.input, v.frame_size), ("image", (140, 56)));
    println!("{}", check_reply(&s, &mut v, "image"));
}
