//! Running an evaluation against a results file (native only).
//!
//! The results file is JSON lines, one [`VsiRecord`] (or [`QaRecord`]) per sample, appended and flushed as each
//! sample is scored, so an interrupted run loses at most the sample in flight. On a rerun with the same file
//! the samples whose id is already there are not asked again; their stored records count in the metrics. A
//! last line cut short by an interruption is dropped (and reported) before appending. A reply the answer
//! function fails to give is reported in the summary and not written, so the next run asks again.
//!
//! The reference writes one JSON array per GPU shard every ten samples (eval_vsibench.py L305–307) and has no
//! resume; the per-sample lines and the resume are this crate's.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::annotations::AnnotationError;
use super::prompt::PromptStyle;
use super::report::{qa_metrics, vsi_metrics_of, QaMetrics, QaRecord, VsiMetrics, VsiRecord};
use super::{QaSample, Sample};

/// Samples and result records, by id.
pub trait Identified {
    fn id(&self) -> &str;
}

impl Identified for Sample {
    fn id(&self) -> &str {
        &self.id
    }
}
impl Identified for QaSample {
    fn id(&self) -> &str {
        &self.id
    }
}
impl Identified for VsiRecord {
    fn id(&self) -> &str {
        &self.id
    }
}
impl Identified for QaRecord {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Parse results-file text: one record per non-blank line; bad lines and repeated ids reported by line number
/// (the first record of an id is kept). A shard file's header line ([`super::shard`]) is skipped.
pub(crate) fn parse_results<R: DeserializeOwned + Identified>(text: &str) -> (Vec<R>, Vec<AnnotationError>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<R>(line) {
            Ok(r) if !seen.insert(r.id().to_string()) => errors.push(AnnotationError { line: i + 1, message: format!("repeated id {:?}, ignored", r.id()) }),
            Ok(r) => records.push(r),
            Err(_) if super::shard::is_header_line(line) => {}
            Err(e) => errors.push(AnnotationError { line: i + 1, message: format!("not a result record: {e}") }),
        }
    }
    (records, errors)
}

/// Read a results file ([`VsiRecord`]s or [`QaRecord`]s); a missing file is an empty one.
pub fn read_results<R: DeserializeOwned + Identified>(path: &Path) -> io::Result<(Vec<R>, Vec<AnnotationError>)> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_results::<R>(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e),
    }
}

/// Open the results file for appending after reading what it holds. A last line without its newline is a write
/// cut short: kept (newline added) when it parses, else cut off and reported.
fn open_results<R: DeserializeOwned + Identified>(path: &Path) -> io::Result<(Vec<R>, Vec<AnnotationError>, File)> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let mut torn = None;
    let mut keep = text.len();
    if !text.is_empty() && !text.ends_with(b"\n") {
        let start = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let tail = String::from_utf8_lossy(&text[start..]);
        if serde_json::from_str::<R>(&tail).is_ok() {
            file.write_all(b"\n")?;
        } else {
            keep = start;
            let line = 1 + text[..start].iter().filter(|&&b| b == b'\n').count();
            torn = Some(AnnotationError { line, message: "incomplete last line (an interrupted write), removed".into() });
            file.set_len(start as u64)?;
        }
    }
    let (records, mut errors) = parse_results::<R>(&String::from_utf8_lossy(&text[..keep]));
    errors.extend(torn);
    Ok((records, errors, file))
}

struct Run<R> {
    records: Vec<R>,
    evaluated: usize,
    resumed: usize,
    failures: Vec<(String, String)>,
    results_errors: Vec<AnnotationError>,
    other_records: usize,
}

fn run_resumable<S: Identified, R: Serialize + DeserializeOwned + Identified>(
    samples: &[S],
    results_path: &Path,
    mut make: impl FnMut(&S) -> Result<R, String>,
) -> io::Result<Run<R>> {
    let (stored, results_errors, mut file) = open_results::<R>(results_path)?;
    let wanted: HashSet<&str> = samples.iter().map(|s| s.id()).collect();
    let other_records = stored.iter().filter(|r| !wanted.contains(r.id())).count();
    let mut done: HashMap<String, R> = stored.into_iter().map(|r| (r.id().to_string(), r)).collect();
    let mut run = Run { records: Vec::new(), evaluated: 0, resumed: 0, failures: Vec::new(), results_errors, other_records };
    for (i, s) in samples.iter().enumerate() {
        if let Some(r) = done.remove(s.id()) {
            run.resumed += 1;
            run.records.push(r);
            continue;
        }
        match make(s) {
            Ok(r) => {
                let mut line = serde_json::to_string(&r).map_err(io::Error::other)?;
                line.push('\n');
                file.write_all(line.as_bytes())?;
                file.flush()?;
                run.evaluated += 1;
                run.records.push(r);
                log::info!("eval: {}/{} {}", i + 1, samples.len(), s.id());
            }
            Err(e) => {
                log::warn!("eval: {} failed: {e}", s.id());
                run.failures.push((s.id().to_string(), e));
            }
        }
    }
    Ok(run)
}

/// What a run did: metrics `M` over records `R`.
#[derive(Clone, Debug)]
pub struct RunSummary<M, R> {
    /// Over the given samples' records (this run's and the resumed ones).
    pub metrics: M,
    /// The given samples' records, in sample order (failed samples absent).
    pub records: Vec<R>,
    /// Samples asked and written this run.
    pub evaluated: usize,
    /// Samples whose record was already in the results file.
    pub resumed: usize,
    /// (id, error) for each sample the answer function gave no reply for, or the reference would refuse.
    pub failures: Vec<(String, String)>,
    /// Unreadable lines of the existing results file, by line number.
    pub results_errors: Vec<AnnotationError>,
    /// Records in the results file for ids not among the samples (kept in the file, not counted).
    pub other_records: usize,
}

impl<M, R> RunSummary<M, R> {
    fn of(run: Run<R>, metrics: impl FnOnce(&[R]) -> M) -> Self {
        RunSummary {
            metrics: metrics(&run.records),
            records: run.records,
            evaluated: run.evaluated,
            resumed: run.resumed,
            failures: run.failures,
            results_errors: run.results_errors,
            other_records: run.other_records,
        }
    }
}

/// What a VSI-Bench run did.
pub type EvalSummary = RunSummary<VsiMetrics, VsiRecord>;
/// What a ScanQA / SQA3D run did.
pub type QaEvalSummary = RunSummary<QaMetrics, QaRecord>;

/// Run VSI-Bench samples with the v1.1 reference prompts ([`evaluate_with`]).
pub fn evaluate(samples: &[Sample], answer_fn: impl FnMut(&Sample, &str) -> Result<String, String>, results_path: &Path) -> io::Result<EvalSummary> {
    evaluate_with(samples, PromptStyle::V1_1, answer_fn, results_path)
}

/// Run VSI-Bench samples: for each sample not yet in `results_path`, build the reference prompt text of `style`,
/// ask `answer_fn(sample, prompt)` for the model's reply (the caller wraps the text with the video in the chat
/// template, [`super::prompt::user_turn`]), score it and append the record. Only an IO error on the results
/// file stops the run.
pub fn evaluate_with(
    samples: &[Sample],
    style: PromptStyle,
    mut answer_fn: impl FnMut(&Sample, &str) -> Result<String, String>,
    results_path: &Path,
) -> io::Result<EvalSummary> {
    let run = run_resumable(samples, results_path, |s: &Sample| {
        s.check().map_err(|e| e.to_string())?;
        let prompt = s.prompt(style);
        let reply = answer_fn(s, &prompt)?;
        Ok(VsiRecord::new(s, &prompt, &reply))
    })?;
    Ok(RunSummary::of(run, |r| vsi_metrics_of(r)))
}

/// Metrics over every record of a results file (as the reference's `--results_json` path computes them), with
/// its unreadable lines.
pub fn metrics_from_results_file(path: &Path) -> io::Result<(VsiMetrics, Vec<AnnotationError>)> {
    let (records, errors) = read_results::<VsiRecord>(path)?;
    Ok((vsi_metrics_of(&records), errors))
}

/// Run ScanQA / SQA3D samples: the prompt is the annotation's question turn, verbatim.
pub fn evaluate_qa(samples: &[QaSample], mut answer_fn: impl FnMut(&QaSample, &str) -> Result<String, String>, results_path: &Path) -> io::Result<QaEvalSummary> {
    let run = run_resumable(samples, results_path, |s: &QaSample| {
        let reply = answer_fn(s, &s.prompt)?;
        Ok(QaRecord::new(s, &reply))
    })?;
    Ok(RunSummary::of(run, qa_metrics))
}

/// ScanQA / SQA3D metrics over every record of a results file, with its unreadable lines.
pub fn qa_metrics_from_results_file(path: &Path) -> io::Result<(QaMetrics, Vec<AnnotationError>)> {
    let (records, errors) = read_results::<QaRecord>(path)?;
    Ok((qa_metrics(&records), errors))
}
