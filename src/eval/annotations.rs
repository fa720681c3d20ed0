//! Annotation files: a JSON array of entries (as the v1.0 `eval_vsibench.json` and the ScanQA/SQA3D
//! `*_llava_style.json` files are) or JSON lines (one entry per line, as a Hugging Face dataset exports). Every
//! entry is parsed on its own: a bad one becomes an [`AnnotationError`] naming the line it starts on, and the
//! others still load. (In a JSON array an unterminated string runs to the end of the file, so everything after
//! it is one bad entry; JSON lines have no such reach.)
//!
//! The VSI-Bench fields are documented on [`Sample`], the ScanQA/SQA3D fields on [`QaSample`].

use std::collections::HashMap;

use serde_json::Value;

use super::{QaBenchmark, QaSample, QuestionType, Sample};

/// A bad entry: the line it starts on (1-based) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for AnnotationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for AnnotationError {}

/// What a file gave: the good entries in file order, and one error per bad entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed<T> {
    pub items: Vec<T>,
    pub errors: Vec<AnnotationError>,
}

/// One entry's text, where it starts, and its position among the entries.
struct Entry<'a> {
    line: usize,
    index: usize,
    text: &'a str,
}

fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count()
}

/// Split a file into entries: the elements of a top-level JSON array (by bracket depth, outside strings), or
/// its non-blank lines. Errors for what is not an entry at all (an empty element, text after the array).
fn split_entries(text: &str) -> (Vec<Entry<'_>>, Vec<AnnotationError>) {
    let text_start = text.len() - text.trim_start().len();
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    if !text[text_start..].starts_with('[') {
        for (i, line) in text.split('\n').enumerate() {
            let t = line.trim();
            if !t.is_empty() {
                let index = entries.len();
                entries.push(Entry { line: i + 1, index, text: t });
            }
        }
        return (entries, errors);
    }
    let b = text.as_bytes();
    let (mut depth, mut in_str, mut esc) = (0i64, false, false);
    let mut start = text_start + 1;
    let mut closed_at = None;
    fn push<'a>(text: &'a str, from: usize, to: usize, entries: &mut Vec<Entry<'a>>, errors: &mut Vec<AnnotationError>, last: bool) {
        let raw = &text[from..to];
        let lead = raw.len() - raw.trim_start().len();
        let t = raw.trim();
        if t.is_empty() {
            // "[]" and "[ ]" hold no entries; an empty slot between commas or before "]" after a comma is an error.
            if !(last && entries.is_empty() && errors.is_empty()) {
                errors.push(AnnotationError { line: line_of(text, to), message: "empty array element".into() });
            }
            return;
        }
        let index = entries.len() + errors.len();
        entries.push(Entry { line: line_of(text, from + lead), index, text: t });
    }
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b']' => {
                    push(text, start, i, &mut entries, &mut errors, true);
                    closed_at = Some(i);
                    break;
                }
                b',' if depth == 0 => {
                    push(text, start, i, &mut entries, &mut errors, false);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    match closed_at {
        None => {
            // Truncated array: what is left is one (bad) entry, if anything.
            let raw = &text[start..];
            if !raw.trim().is_empty() {
                let lead = raw.len() - raw.trim_start().len();
                let index = entries.len() + errors.len();
                entries.push(Entry { line: line_of(text, start + lead), index, text: raw.trim() });
            }
            errors.push(AnnotationError { line: line_of(text, text.len()), message: "the JSON array is not closed".into() });
        }
        Some(end) => {
            let rest = &text[end + 1..];
            if !rest.trim().is_empty() {
                let lead = rest.len() - rest.trim_start().len();
                errors.push(AnnotationError { line: line_of(text, end + 1 + lead), message: "text after the closing ]".into() });
            }
        }
    }
    (entries, errors)
}

fn parse_entries<T>(text: &str, mut item: impl FnMut(&Value, usize) -> Result<T, String>, id_of: impl Fn(&T) -> &str) -> Parsed<T> {
    let (entries, mut errors) = split_entries(text);
    let mut items = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in entries {
        let parsed = serde_json::from_str::<Value>(e.text).map_err(|err| format!("not JSON: {err}")).and_then(|v| item(&v, e.index));
        match parsed {
            Ok(t) => {
                let id = id_of(&t).to_string();
                if let Some(first) = seen.get(&id) {
                    errors.push(AnnotationError { line: e.line, message: format!("duplicate id {id:?} (first on line {first})") });
                } else {
                    seen.insert(id, e.line);
                    items.push(t);
                }
            }
            Err(message) => errors.push(AnnotationError { line: e.line, message }),
        }
    }
    errors.sort_by_key(|e| e.line);
    Parsed { items, errors }
}

fn field<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn string(o: &serde_json::Map<String, Value>, key: &str) -> Result<String, String> {
    match field(o, key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("`{key}` is not a string: {other}")),
        None => Err(format!("missing `{key}`")),
    }
}

fn opt_string(o: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match field(o, key) {
        None => Ok(None),
        Some(_) => string(o, key).map(Some),
    }
}

/// A string, or a number written as JSON wrote it.
fn string_or_number(o: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match field(o, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{key}` is neither a string nor a number: {other}")),
    }
}

fn string_list(o: &serde_json::Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match field(o, key) {
        None => Ok(None),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_str().map(str::to_string).ok_or_else(|| format!("`{key}` holds a non-string: {x}"))).collect::<Result<Vec<_>, _>>().map(Some)
        }
        Some(other) => Err(format!("`{key}` is not a list: {other}")),
    }
}

fn vsi_sample(v: &Value, index: usize) -> Result<Sample, String> {
    let o = v.as_object().ok_or_else(|| format!("not a JSON object: {v}"))?;
    let v10 = !o.contains_key("question") && o.contains_key("problem");
    let (id_key, q_key, type_key, gt_key) =
        if v10 { ("problem_id", "problem", "original_question_type", "solution") } else { ("id", "question", "question_type", "ground_truth") };
    let id = string_or_number(o, id_key)?.unwrap_or_else(|| index.to_string());
    let question = string(o, q_key)?;
    let type_name = string(o, type_key)?;
    let question_type = QuestionType::parse(&type_name).ok_or_else(|| format!("unknown question type {type_name:?}"))?;
    let ground_truth = string_or_number(o, gt_key)?.ok_or_else(|| format!("missing `{gt_key}`"))?;
    let options = string_list(o, "options")?.unwrap_or_default();
    let video = if v10 { opt_string(o, "path")? } else { opt_string(o, "video")? };
    let (mut dataset, mut scene_name) = (opt_string(o, "dataset")?, opt_string(o, "scene_name")?);
    if let Some(path) = &video {
        // "./arkitscenes/41069025.mp4" → dataset "arkitscenes", scene "41069025".
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        if let [.., d, file] = parts.as_slice() {
            dataset.get_or_insert_with(|| d.to_string());
            scene_name.get_or_insert_with(|| file.rsplit_once('.').map_or(*file, |(stem, _)| stem).to_string());
        }
    }
    let (dataset, scene_name) = match (dataset, scene_name, &video) {
        (Some(d), Some(s), _) => (d, s),
        (d, s, Some(_)) => (d.unwrap_or_default(), s.unwrap_or_default()),
        _ => return Err("no video: needs `dataset` and `scene_name`, or `video`".into()),
    };
    let sample = Sample { id, dataset, scene_name, video, question, options, ground_truth, question_type };
    sample.check().map_err(|e| e.to_string())?;
    Ok(sample)
}

/// Parse a VSI-Bench annotation file's text (v1.1 / Hugging Face layout or v1.0 layout, JSON array or JSON
/// lines). An entry without an id gets its position (0-based) as id. Bad entries, duplicate ids included, are
/// reported and skipped.
pub fn parse_vsi_annotations(text: &str) -> Parsed<Sample> {
    parse_entries(text, vsi_sample, |s| &s.id)
}

fn qa_sample(v: &Value, default: Option<QaBenchmark>) -> Result<QaSample, String> {
    let o = v.as_object().ok_or_else(|| format!("not a JSON object: {v}"))?;
    let id = string_or_number(o, "id")?.ok_or("missing `id`")?;
    let video = opt_string(o, "video")?.unwrap_or_default();
    let turns = match field(o, "conversations") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(_) => return Err("`conversations` is not a non-empty list".into()),
        None => return Err("missing `conversations`".into()),
    };
    let turn_text = |i: usize| -> Result<Option<String>, String> {
        match turns.get(i) {
            None => Ok(None),
            Some(Value::Object(t)) => string(t, "value").map(Some).map_err(|e| format!("conversation turn {i}: {e}")),
            Some(other) => Err(format!("conversation turn {i} is not an object: {other}")),
        }
    };
    let prompt = turn_text(0)?.ok_or("no question turn")?;
    let answer = turn_text(1)?;
    let empty = serde_json::Map::new();
    let meta = match field(o, "metadata") {
        Some(Value::Object(m)) => m,
        Some(other) => return Err(format!("`metadata` is not an object: {other}")),
        None => &empty,
    };
    let benchmark = match opt_string(meta, "dataset")? {
        Some(d) => QaBenchmark::parse(&d).or(default).ok_or_else(|| format!("unknown dataset {d:?} (scanqa or sqa3d)"))?,
        None => default.ok_or("no `metadata.dataset` and no benchmark given")?,
    };
    let question_type = opt_string(meta, "question_type")?.unwrap_or_else(|| "unknown".into());
    let answers = match string_list(meta, "answers")? {
        Some(a) if !a.is_empty() => a,
        _ => vec![answer.ok_or("no reference answer (neither `metadata.answers` nor an answer turn)")?],
    };
    Ok(QaSample { id, benchmark, video, prompt, answers, question_type })
}

/// Parse a ScanQA / SQA3D LLaVA-style annotation file's text. The benchmark comes from each entry's
/// `metadata.dataset`, else `default`.
pub fn parse_qa_annotations(text: &str, default: Option<QaBenchmark>) -> Parsed<QaSample> {
    parse_entries(text, |v, _| qa_sample(v, default), |s| &s.id)
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::Path;

    use super::*;

    /// Read and parse a VSI-Bench annotation file ([`parse_vsi_annotations`]).
    pub fn load_vsi_annotations(path: &Path) -> std::io::Result<Parsed<Sample>> {
        Ok(parse_vsi_annotations(&std::fs::read_to_string(path)?))
    }

    /// Read and parse a ScanQA / SQA3D annotation file ([`parse_qa_annotations`]).
    pub fn load_qa_annotations(path: &Path, default: Option<QaBenchmark>) -> std::io::Result<Parsed<QaSample>> {
        Ok(parse_qa_annotations(&std::fs::read_to_string(path)?, default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_elements_carry_their_lines() {
        let text = "[\n  {\"a\": \"x,]\"},\n  {\"b\": [1, 2]}\n  ,\n  3\n]\n";
        let (entries, errors) = split_entries(text);
        assert!(errors.is_empty());
        let got: Vec<(usize, &str)> = entries.iter().map(|e| (e.line, e.text)).collect();
        assert_eq!(got, vec![(2, "{\"a\": \"x,]\"}"), (3, "{\"b\": [1, 2]}"), (5, "3")]);
        let (entries, errors) = split_entries("[]");
        assert!(entries.is_empty() && errors.is_empty());
        let (_, errors) = split_entries("[1,\n,2]");
        assert_eq!(errors, vec![AnnotationError { line: 2, message: "empty array element".into() }]);
        let (entries, errors) = split_entries("[1,\n{\"a\": 1");
        assert_eq!(entries.len(), 2);
        assert_eq!(errors[0].message, "the JSON array is not closed");
    }
}
