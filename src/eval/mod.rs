//! Evaluation: VSI-Bench, ScanQA and SQA3D scored as the Spatial-MLLM reference evaluators score them
//! (spec section 8; the rules and their sources are listed in each module).
//!
//! - [`prompt`]: the reference prompt text per question type (v1.1 and v1.0 VSI-Bench templates, ScanQA/SQA3D).
//! - [`score`]: answer normalisation, multiple-choice exact match, number parsing, Mean Relative Accuracy, the
//!   ScanQA exact match and SQA3D's EM-1 / EM-R1.
//! - [`report`]: one result record per sample, and the aggregation: per task, micro and macro (the three
//!   relative-direction levels averaged into one task first), split into Acc (multiple choice) and MRA
//!   (numerical) as the reference prints them; a printed table.
//! - [`annotations`]: annotation files (JSON array or JSON lines) parsed with every bad entry reported by line
//!   number and skipped; reading them from disk is native only.
//! - `run` (native only): [`evaluate`] runs samples through an answer function, appends one JSON line per
//!   sample to a results file and resumes from it.
//! - [`shard`] (native only): `eval --shard K/N`, the interleaved split of the ordered samples and the shard
//!   results file with its header; [`merge`] (native only): the shard files checked and merged back into one
//!   result set in the unsharded order.
//!
//! Everything except file access is plain Rust and builds for wasm32.

pub mod annotations;
pub mod prompt;
pub mod report;
pub mod score;

#[cfg(not(target_arch = "wasm32"))]
mod error;
#[cfg(not(target_arch = "wasm32"))]
mod run;
#[cfg(not(target_arch = "wasm32"))]
pub mod shard;
#[cfg(not(target_arch = "wasm32"))]
pub mod merge;

#[cfg(not(target_arch = "wasm32"))]
pub use run::{
    evaluate, evaluate_qa, evaluate_with, metrics_from_results_file, qa_metrics_from_results_file, read_results, EvalSummary, Identified, QaEvalSummary, RunSummary,
};

#[cfg(not(target_arch = "wasm32"))]
pub use merge::{merge_shards, shard_files, Merged, MergedRecords};
#[cfg(not(target_arch = "wasm32"))]
pub use error::{BadShard, ShardError};
#[cfg(not(target_arch = "wasm32"))]
pub use shard::{Shard, ShardHeader, ShardPlan};
#[cfg(not(target_arch = "wasm32"))]
pub use annotations::{load_qa_annotations, load_vsi_annotations};
pub use annotations::{parse_qa_annotations, parse_vsi_annotations, AnnotationError, Parsed};
pub use prompt::PromptStyle;
pub use report::{qa_metrics, vsi_metrics, QaMetrics, QaRecord, VsiMetrics, VsiRecord};
pub use score::QuestionType;

/// One VSI-Bench question.
///
/// Annotation fields (the Hugging Face `nyu-visionx/VSI-Bench` test split, which the v1.1 evaluator loads,
/// exported as JSON or JSON lines): `id` (number or string), `dataset` (arkitscenes / scannet / scannetpp),
/// `scene_name`, `question_type` (one of the ten [`QuestionType`]s), `question`, `options` (list of lettered
/// options such as "A. front-left"; null or absent for numerical questions), `ground_truth` (the option letter,
/// or the number as text). An optional `video` gives the video's path explicitly. The v1.0 layout
/// (`evaluate/annotation/eval_vsibench.json`: `problem_id`, `problem`, `original_question_type`, `options`,
/// `solution` such as "<answer>A</answer>", `path` such as "./arkitscenes/41069025.mp4") is read too.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub id: String,
    pub dataset: String,
    pub scene_name: String,
    /// The video's path relative to the video folder when the annotation names it.
    pub video: Option<String>,
    pub question: String,
    pub options: Vec<String>,
    pub ground_truth: String,
    pub question_type: QuestionType,
}

impl Sample {
    /// The video relative to the video folder: the annotation's path, else `{dataset}/{scene_name}.mp4` (the
    /// v1.1 evaluator's first choice; it falls back to a folder of frames `{dataset}/{scene_name}/*.png`,
    /// eval_vsibench.py L94–104).
    pub fn video_path(&self) -> String {
        match &self.video {
            Some(v) => v.clone(),
            None => format!("{}/{}.mp4", self.dataset, self.scene_name),
        }
    }

    /// What the reference refuses: a multiple-choice question without options (eval_vsibench.py L81–83).
    pub fn check(&self) -> Result<(), SampleError> {
        if self.question_type.is_multiple_choice() && self.options.is_empty() {
            return Err(SampleError::NoOptions { question_type: self.question_type });
        }
        Ok(())
    }

    /// The reference prompt text for this sample.
    pub fn prompt(&self, style: PromptStyle) -> String {
        prompt::vsi_prompt(self, style)
    }
}

/// What the reference refuses in a sample (it is skipped, with this message).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// A multiple-choice question without options: give the annotation its `options`.
    #[error("multiple-choice question ({question_type}) without options")]
    NoOptions { question_type: QuestionType },
}

/// Which question-answering benchmark a [`QaSample`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QaBenchmark {
    ScanQa,
    Sqa3d,
}

impl QaBenchmark {
    pub fn as_str(self) -> &'static str {
        match self {
            QaBenchmark::ScanQa => "scanqa",
            QaBenchmark::Sqa3d => "sqa3d",
        }
    }

    /// From an annotation's `metadata.dataset` ("scanQA", "sqa3d", any case).
    pub fn parse(s: &str) -> Option<QaBenchmark> {
        match s.to_ascii_lowercase().as_str() {
            "scanqa" => Some(QaBenchmark::ScanQa),
            "sqa3d" => Some(QaBenchmark::Sqa3d),
            _ => None,
        }
    }
}

/// One ScanQA or SQA3D question, from the LLaVA-style annotation the reference reads (eval_scanqa.py L58–76,
/// L152–167): `id`, `video` ("scannet/scene0000_00"), `conversations` (the human turn, used verbatim as the
/// prompt, then the reference answer), `metadata` (`dataset`, `question_type`, and for ScanQA `answers`, all
/// reference answers).
#[derive(Clone, Debug, PartialEq)]
pub struct QaSample {
    pub id: String,
    pub benchmark: QaBenchmark,
    pub video: String,
    pub prompt: String,
    /// The reference answers; the first is the conversation's answer turn when `metadata.answers` is absent.
    pub answers: Vec<String>,
    pub question_type: String,
}
