//! Result records and their aggregation.
//!
//! VSI-Bench (`src/evaluation/vsibench/eval_vsibench.py` `calculate_metrics`, L211–289):
//! - per question type: mean reward and count (L238–242);
//! - micro: mean over samples, separately over the multiple-choice samples ("acc"), the numerical samples
//!   ("mra") and all ("all") (L244–249);
//! - macro, VSI-Bench style (L251–281): the three relative-direction levels present are first averaged into one
//!   task; acc = mean over that task and the other multiple-choice types present; mra = mean over the numerical
//!   types present; all = mean over the direction task and every other type present;
//! - an empty group averages to 0 (`safe_mean`).
//!
//! ScanQA: EM = the share of samples whose reply is one of the answers (score_scanqa.py L31–51). SQA3D: EM-1 and
//! EM-R1 over all samples and per question type (Video-3D-LLM's SQA3D scorer; see [`crate::eval::score`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::prompt::PromptStyle;
use super::score::{self, QuestionType};
use super::{QaBenchmark, QaSample, Sample};

impl Serialize for QuestionType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for QuestionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        QuestionType::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown question type {s:?}")))
    }
}

/// One VSI-Bench result: one line of the results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VsiRecord {
    pub id: String,
    pub question_type: QuestionType,
    /// The model's reply as it came.
    pub prediction: String,
    pub ground_truth: String,
    /// Reward: 1/0 for multiple choice, MRA for numerical questions.
    pub score: f64,
    /// `score == 1` (the reference's `correct`).
    pub correct: bool,
    pub prediction_clean: String,
    pub ground_truth_clean: String,
    #[serde(default)]
    pub dataset: String,
    #[serde(default)]
    pub scene_name: String,
    #[serde(default)]
    pub prompt: String,
}

impl VsiRecord {
    /// Score one reply to `sample` (asked with `prompt`).
    pub fn new(sample: &Sample, prompt: &str, prediction: &str) -> VsiRecord {
        let s = score::score_vsi(prediction, &sample.ground_truth, sample.question_type);
        VsiRecord {
            id: sample.id.clone(),
            question_type: sample.question_type,
            prediction: prediction.to_string(),
            ground_truth: sample.ground_truth.clone(),
            score: s.reward,
            correct: s.correct(),
            prediction_clean: s.cleaned_prediction,
            ground_truth_clean: s.cleaned_ground_truth,
            dataset: sample.dataset.clone(),
            scene_name: sample.scene_name.clone(),
            prompt: prompt.to_string(),
        }
    }

    /// Score one reply, asked with the reference prompt of `style`.
    pub fn score(sample: &Sample, style: PromptStyle, prediction: &str) -> VsiRecord {
        VsiRecord::new(sample, &sample.prompt(style), prediction)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeScore {
    pub score: f64,
    pub count: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MicroMacro {
    pub micro: f64,
    #[serde(rename = "macro")]
    pub macro_: f64,
}

/// VSI-Bench metrics, laid out as the reference's `metrics_*.json`. Scores are fractions (0..1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VsiMetrics {
    pub per_question_type: BTreeMap<String, TypeScore>,
    /// Multiple choice: accuracy.
    pub acc: MicroMacro,
    /// Numerical: mean relative accuracy.
    pub mra: MicroMacro,
    pub all: MicroMacro,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Aggregate (question type, score) pairs as the reference does.
pub fn vsi_metrics<I: IntoIterator<Item = (QuestionType, f64)>>(results: I) -> VsiMetrics {
    let results: Vec<(QuestionType, f64)> = results.into_iter().collect();
    if results.is_empty() {
        return VsiMetrics::default();
    }
    let mut groups: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for &(q, s) in &results {
        groups.entry(q.as_str()).or_default().push(s);
    }
    let per: BTreeMap<String, TypeScore> = groups.iter().map(|(q, v)| (q.to_string(), TypeScore { score: mean(v), count: v.len() })).collect();

    let scores = |pick: &dyn Fn(QuestionType) -> bool| -> Vec<f64> { results.iter().filter(|(q, _)| pick(*q)).map(|&(_, s)| s).collect() };
    let micro_acc = mean(&scores(&|q| q.is_multiple_choice()));
    let micro_mra = mean(&scores(&|q| !q.is_multiple_choice()));
    let micro_all = mean(&scores(&|_| true));

    let kind = |name: &str| QuestionType::parse(name).expect("grouped by known types");
    let direction: Vec<f64> = score::REL_DIRECTION_TYPES.iter().filter_map(|q| per.get(*q)).map(|t| t.score).collect();
    let direction_macro = if direction.is_empty() { None } else { Some(mean(&direction)) };
    let with_direction = |others: Vec<f64>| -> Vec<f64> { direction_macro.into_iter().chain(others).collect() };

    let acc_others = per.iter().filter(|(q, _)| kind(q).is_multiple_choice() && !kind(q).is_rel_direction()).map(|(_, t)| t.score).collect();
    let macro_acc = mean(&with_direction(acc_others));
    let macro_mra = mean(&per.iter().filter(|(q, _)| !kind(q).is_multiple_choice()).map(|(_, t)| t.score).collect::<Vec<_>>());
    let all_others = per.iter().filter(|(q, _)| !kind(q).is_rel_direction()).map(|(_, t)| t.score).collect();
    let macro_all = mean(&with_direction(all_others));

    VsiMetrics {
        per_question_type: per,
        acc: MicroMacro { micro: micro_acc, macro_: macro_acc },
        mra: MicroMacro { micro: micro_mra, macro_: macro_mra },
        all: MicroMacro { micro: micro_all, macro_: macro_all },
    }
}

/// Aggregate result records.
pub fn vsi_metrics_of<'a, I: IntoIterator<Item = &'a VsiRecord>>(records: I) -> VsiMetrics {
    vsi_metrics(records.into_iter().map(|r| (r.question_type, r.score)))
}

impl VsiMetrics {
    /// The relative-direction task: the mean over the levels present.
    pub fn rel_direction(&self) -> Option<f64> {
        let v: Vec<f64> = score::REL_DIRECTION_TYPES.iter().filter_map(|q| self.per_question_type.get(*q)).map(|t| t.score).collect();
        if v.is_empty() {
            None
        } else {
            Some(mean(&v))
        }
    }

    /// Samples counted.
    pub fn count(&self) -> usize {
        self.per_question_type.values().map(|t| t.count).sum()
    }

    /// A table in percent: per task (the paper's column order; numerical tasks first), the relative-direction
    /// task, then Acc (multiple choice), MRA (numerical) and All, micro and macro.
    pub fn table(&self) -> String {
        let mut s = format!("VSI-Bench: {} samples\n", self.count());
        s += &format!("{:<32} {:>6} {:>8}\n", "task", "n", "score");
        let row = |s: &mut String, name: &str, n: Option<usize>, v: f64| {
            let n = n.map(|n| n.to_string()).unwrap_or_default();
            *s += &format!("{name:<32} {n:>6} {:>8.2}\n", v * 100.0);
        };
        for q in QuestionType::ALL {
            if let Some(t) = self.per_question_type.get(q.as_str()) {
                let kind = if q.is_multiple_choice() { "MCA" } else { "NA" };
                row(&mut s, &format!("{} ({kind})", q.as_str()), Some(t.count), t.score);
            }
            if q == QuestionType::ObjectRelDirectionHard {
                if let Some(d) = self.rel_direction() {
                    row(&mut s, "object_rel_direction (3 levels)", None, d);
                }
            }
        }
        s += &format!("{:<32} {:>6} {:>8}\n", "", "micro", "macro");
        for (name, m) in [("Acc (MCA)", self.acc), ("MRA (NA)", self.mra), ("All", self.all)] {
            s += &format!("{name:<32} {:>6.2} {:>8.2}\n", m.micro * 100.0, m.macro_ * 100.0);
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------------------
// ScanQA / SQA3D

/// One ScanQA / SQA3D result: one line of the results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QaRecord {
    pub id: String,
    pub benchmark: String,
    pub question_type: String,
    /// The reply, stripped (as the reference stores `pred_response`).
    pub prediction: String,
    pub answers: Vec<String>,
    /// ScanQA: the reply is one of the answers verbatim (score_scanqa.py). SQA3D: EM-1 after `clean_answer`.
    pub em: bool,
    /// Refined exact match (`answer_match` on the cleaned reply and answers); the SQA3D EM-R1. For ScanQA an
    /// extra, with the same rule over all its answers.
    pub em_refined: bool,
    #[serde(default)]
    pub prompt: String,
}

impl QaRecord {
    pub fn new(sample: &QaSample, prediction: &str) -> QaRecord {
        let em = match sample.benchmark {
            QaBenchmark::ScanQa => score::scanqa_em(prediction, &sample.answers),
            QaBenchmark::Sqa3d => score::sqa3d_em(prediction, &sample.answers).0,
        };
        let em_refined = score::sqa3d_em(prediction, &sample.answers).1;
        QaRecord {
            id: sample.id.clone(),
            benchmark: sample.benchmark.as_str().to_string(),
            question_type: sample.question_type.clone(),
            prediction: score::py_strip(prediction).to_string(),
            answers: sample.answers.clone(),
            em,
            em_refined,
            prompt: sample.prompt.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmScore {
    pub count: usize,
    pub em: f64,
    pub em_refined: f64,
}

/// ScanQA / SQA3D exact-match metrics (fractions).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QaMetrics {
    pub all: EmScore,
    /// Per `question_type` (SQA3D: what / is / how / can / which / others).
    pub per_question_type: BTreeMap<String, EmScore>,
}

fn em_score<'a>(records: impl Iterator<Item = &'a QaRecord>) -> EmScore {
    let (mut n, mut em, mut emr) = (0usize, 0usize, 0usize);
    for r in records {
        n += 1;
        em += r.em as usize;
        emr += r.em_refined as usize;
    }
    if n == 0 {
        return EmScore::default();
    }
    EmScore { count: n, em: em as f64 / n as f64, em_refined: emr as f64 / n as f64 }
}

pub fn qa_metrics(records: &[QaRecord]) -> QaMetrics {
    let mut types: Vec<&str> = records.iter().map(|r| r.question_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    QaMetrics {
        all: em_score(records.iter()),
        per_question_type: types.into_iter().map(|t| (t.to_string(), em_score(records.iter().filter(|r| r.question_type == t)))).collect(),
    }
}

impl QaMetrics {
    pub fn table(&self) -> String {
        let mut s = format!("{:<12} {:>6} {:>8} {:>8}\n", "type", "n", "EM", "EM-R");
        let mut row = |name: &str, e: &EmScore| {
            s += &format!("{name:<12} {:>6} {:>8.2} {:>8.2}\n", e.count, e.em * 100.0, e.em_refined * 100.0);
        };
        row("all", &self.all);
        for (t, e) in &self.per_question_type {
            row(t, e);
        }
        s
    }
}
