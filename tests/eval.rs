//! The evaluation scorers against hand-computed cases that follow the reference rules (Spatial-MLLM v1.1
//! `src/evaluation/vsibench/dataset_utils.py`, `eval_vsibench.py` `calculate_metrics`, `score_scanqa.py`, and
//! the SQA3D EM / refined EM of Video-3D-LLM / LEO), the aggregation on a small hand-made result set, annotation
//! errors by line number, and resuming from a results file.
//!
//! The pipeline tests use a fake answer function in place of the model: a test double that replies from a table,
//! so what is under test is the prompt → score → results-file → metrics path, not a model.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use spatial_mllm_web::eval::annotations::parse_vsi_annotations;
use spatial_mllm_web::eval::prompt::{self, PromptStyle};
use spatial_mllm_web::eval::report::{qa_metrics, vsi_metrics, vsi_metrics_of, VsiRecord};
use spatial_mllm_web::eval::score::{
    answer_match, clean_text, mean_relative_accuracy, mra_passes, normalize_number, scanqa_em, sqa3d_clean_answer, sqa3d_em, sqa3d_question_type, vsi_reward,
    QuestionType,
};
use spatial_mllm_web::eval::{self, parse_qa_annotations, QaBenchmark, Sample};

use QuestionType::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// ------------------------------------------------------------------------------------------------ MRA

/// MRA with the reference's float32 arithmetic: rel = |ŷ−y|/(|y|+1e-8) in float32 against 1−θ in float32, θ from
/// a float32 arange. The expected counts were worked out by hand in float32 (and match numpy float32).
#[test]
fn mra_at_the_five_percent_boundary() {
    // 5/100 in float32 is 0.050000001 < 1 − f32(0.95) = 0.050000012: the 0.95 threshold passes.
    assert_eq!(mra_passes(105.0, 100.0), 10);
    assert_eq!(mra_passes(95.0, 100.0), 10);
    assert_eq!(mra_passes(-105.0, -100.0), 10);
    // 1 − f32(0.95) is exactly 1 − θ₀.₉₅ in float32: equal, not below, so θ = 0.95 fails.
    assert_eq!(mra_passes(0.95, 1.0), 9);
    assert_eq!(mra_passes(-0.95, -1.0), 9);
    // f32(1.05) − 1 = 0.049999952: passes all ten.
    assert_eq!(mra_passes(1.05, 1.0), 10);
    // Just below / just above 5 %.
    assert_eq!(mra_passes(104.9, 100.0), 10);
    assert_eq!(mra_passes(105.1, 100.0), 9);
    // Other thresholds hit exactly: 15 % (f32(1.15) − 1 = 0.14999998 = 1 − f32(0.85)) fails 0.85 and up.
    assert_eq!(mra_passes(1.15, 1.0), 7);
    assert_eq!(mra_passes(1.25, 1.0), 5);
    assert_eq!(mra_passes(3.0, 4.0), 5);
    assert_eq!(mra_passes(1.0999, 1.0), 9);
    assert_eq!(mra_passes(1.1001, 1.0), 8);
    // 50 % error passes nothing (rel < 0.5 is strict); 49 % passes θ = 0.5 only.
    assert_eq!(mra_passes(150.0, 100.0), 0);
    assert_eq!(mra_passes(50.0, 100.0), 0);
    assert_eq!(mra_passes(149.0, 100.0), 1);
}

#[test]
fn mra_negative_and_zero_ground_truth() {
    // |−1.1 − (−1)| / 1 = 0.10000002 in float32, equal to 1 − f32(0.9): fails 0.9 and 0.95.
    assert_eq!(mra_passes(-1.1, -1.0), 8);
    // Wrong sign: rel = 2.1.
    assert_eq!(mra_passes(1.1, -1.0), 0);
    assert_eq!(mra_passes(5.0, -5.0), 0);
    // Zero ground truth: only the 1e-8 in the denominator; exact zero is perfect, 1e-9 is a 10 % error.
    assert_eq!(mra_passes(0.0, 0.0), 10);
    assert_eq!(mra_passes(1e-9, 0.0), 9);
    assert_eq!(mra_passes(0.001, 0.0), 0);
    // A zero prediction for a non-zero answer is a 100 % error.
    assert_eq!(mra_passes(0.0, 5.0), 0);
    // NaN and infinity pass nothing.
    assert_eq!(mra_passes(f64::NAN, 1.0), 0);
    assert_eq!(mra_passes(f64::INFINITY, 1.0), 0);
    assert_eq!(mra_passes(1.0, f64::INFINITY), 0);
}

#[test]
fn mra_value_is_the_float32_mean() {
    // conditions.float().mean().item(): the float32 nearest k/10, widened.
    assert_eq!(mean_relative_accuracy(1.15, 1.0), 0.699999988079071);
    assert_eq!(mean_relative_accuracy(1.15, 1.0), 0.7f32 as f64);
    assert_eq!(mean_relative_accuracy(105.0, 100.0), 1.0);
    assert_eq!(mean_relative_accuracy(0.95, 1.0), 0.8999999761581421);
    assert_eq!(mean_relative_accuracy(149.0, 100.0), 0.10000000149011612);
    assert_eq!(mean_relative_accuracy(150.0, 100.0), 0.0);
}

// ------------------------------------------------------------------------------------------------ numbers

#[test]
fn number_parsing_as_python_float() {
    assert_eq!(normalize_number("1,000"), Some(1000.0));
    assert_eq!(normalize_number("3.5"), Some(3.5));
    assert_eq!(normalize_number(" -2e3 "), Some(-2000.0));
    assert_eq!(normalize_number("1_000"), Some(1000.0));
    assert_eq!(normalize_number("inf"), Some(f64::INFINITY));
    for bad in ["three", "", "3 meters", "about 3", "3m", "1/2", "$5", "1.2.3", "0x1A"] {
        assert_eq!(normalize_number(bad), None, "{bad:?}");
    }
}

#[test]
fn unparsable_numbers_score_zero() {
    let r = |pred: &str, gt: &str| vsi_reward(&clean_text(gt), &clean_text(pred), ObjectCounting);
    assert_eq!(r("three", "3"), 0.0);
    assert_eq!(r("3 chairs", "3"), 0.0);
    assert_eq!(r("", "3"), 0.0);
    assert_eq!(r("3", "n/a"), 0.0);
    // The number inside the answer tags, commas dropped, a trailing dot dropped by the cleaning.
    assert_eq!(r("<think>1 or 2?</think><answer>1,000.</answer>", "1000"), 1.0);
    assert_eq!(r("4.", "4"), 1.0);
    // "3 ." cleans to "3 " and float() ignores the space.
    assert_eq!(r("3 .", "3"), 1.0);
    assert_eq!(vsi_reward("2", "2.4", ObjectAbsDistance), 0.6000000238418579);
}

// ------------------------------------------------------------------------------------------------ normalisation

#[test]
fn clean_text_cases() {
    assert_eq!(clean_text("A"), "a");
    assert_eq!(clean_text("A."), "a");
    assert_eq!(clean_text("B..."), "b");
    assert_eq!(clean_text("  The answer\n\nis\tC.  "), "the answer is c");
    assert_eq!(clean_text("<answer>B</answer>"), "b");
    assert_eq!(clean_text("<think>maybe <answer>A</answer></think> <answer> C. </answer>"), "c");
    assert_eq!(clean_text("<answer>\nD\n</answer> trailing"), "d");
    assert_eq!(clean_text("<answer></answer>"), "");
    assert_eq!(clean_text("<answer>open only"), "<answer>open only");
    // The dot goes after the strip: a space before it stays.
    assert_eq!(clean_text("a ."), "a ");
    assert_eq!(clean_text("x\u{a0}\u{3000}y"), "x y");
    assert_eq!(clean_text("ÀB"), "àb");
}

#[test]
fn multiple_choice_is_exact_match_of_cleaned_text() {
    let r = |pred: &str, gt: &str| vsi_reward(&clean_text(gt), &clean_text(pred), ObjectRelDistance);
    assert_eq!(r("A", "A"), 1.0);
    assert_eq!(r("a.", "A"), 1.0);
    assert_eq!(r(" <answer>C</answer>", "C"), 1.0);
    assert_eq!(r("a .", "A"), 1.0); // cleaned "a " stripped again before comparing
    assert_eq!(r("B", "A"), 0.0);
    // No option-letter extraction in the reference: the letter with its text, or a sentence, is wrong.
    assert_eq!(r("A. front-left", "A"), 0.0);
    assert_eq!(r("The answer is A", "A"), 0.0);
    assert_eq!(r("(A)", "A"), 0.0);
    // The v1.0 ground truth carries the tags.
    assert_eq!(r("D", "<answer>D</answer>"), 1.0);
}

// ------------------------------------------------------------------------------------------------ ScanQA / SQA3D

#[test]
fn scanqa_exact_match() {
    let answers = vec!["brown cabinet".to_string(), "cabinet with tv".to_string()];
    assert!(scanqa_em(" brown cabinet\n", &answers));
    assert!(scanqa_em("cabinet with tv", &answers));
    assert!(!scanqa_em("Brown cabinet", &answers));
    assert!(!scanqa_em("brown cabinet.", &answers));
    assert!(!scanqa_em("cabinet", &answers));
}

#[test]
fn sqa3d_clean_answer_cases() {
    assert_eq!(sqa3d_clean_answer("The TV."), "TV");
    assert_eq!(sqa3d_clean_answer("Two"), "two");
    assert_eq!(sqa3d_clean_answer("2"), "two");
    assert_eq!(sqa3d_clean_answer("none"), "zero");
    assert_eq!(sqa3d_clean_answer("3 chairs"), "three chairs");
    assert_eq!(sqa3d_clean_answer("  Let  "), "left");
    assert_eq!(sqa3d_clean_answer("on the left"), "on left");
    assert_eq!(sqa3d_clean_answer("a an apple"), "apple");
    assert_eq!(sqa3d_clean_answer("mat2"), "mat");
    assert_eq!(sqa3d_clean_answer("Backwards!"), "backward");
    assert_eq!(sqa3d_clean_answer("5 oclock"), "five o'clock");
    assert_eq!(sqa3d_clean_answer("1.5"), "fifteen"); // the dot is removed before the number rules
    assert_eq!(sqa3d_clean_answer("café"), "caf");
    assert_eq!(sqa3d_clean_answer("a . b"), "a  b"); // removing a character can leave two spaces
}

#[test]
fn sqa3d_em_and_refined_em() {
    let gts = |g: &str| vec![g.to_string()];
    assert_eq!(sqa3d_em("Two.", &gts("2")), (true, true));
    assert_eq!(sqa3d_em("left", &gts("on the left")), (false, true));
    assert_eq!(sqa3d_em("the left side", &gts("left")), (false, true));
    assert_eq!(sqa3d_em("right", &gts("left")), (false, false));
    assert_eq!(sqa3d_em("Yes", &gts("yes")), (true, true));
    // Whitespace removed before the containment test.
    assert_eq!(answer_match("coffeetable", &gts("coffee table")), (false, true));
    // As in the reference, an empty reply is contained in every answer.
    assert_eq!(answer_match("", &gts("left")), (false, true));
    assert_eq!(sqa3d_question_type("  What color is it?"), "what");
    assert_eq!(sqa3d_question_type("Is the door open?"), "is");
    assert_eq!(sqa3d_question_type("Which way"), "which");
    assert_eq!(sqa3d_question_type("Where is it?"), "others");
}

// ------------------------------------------------------------------------------------------------ aggregation

fn hand_made_results() -> Vec<(QuestionType, f64)> {
    vec![
        (ObjectCounting, 1.0),
        (ObjectCounting, 0.5),
        (RoomSizeEstimation, 0.2),
        (ObjectRelDirectionEasy, 1.0),
        (ObjectRelDirectionEasy, 1.0),
        (ObjectRelDirectionMedium, 0.0),
        (ObjectRelDirectionHard, 1.0),
        (ObjectRelDirectionHard, 0.0),
        (RoutePlanning, 1.0),
        (ObjAppearanceOrder, 0.0),
        (ObjAppearanceOrder, 0.0),
    ]
}

#[test]
fn micro_and_macro_averages() {
    let m = vsi_metrics(hand_made_results());
    let per = |q: QuestionType| m.per_question_type[q.as_str()];
    assert_eq!(per(ObjectCounting).count, 2);
    assert!(close(per(ObjectCounting).score, 0.75));
    assert!(close(per(ObjectRelDirectionHard).score, 0.5));
    assert_eq!(m.per_question_type.len(), 7);
    assert_eq!(m.count(), 11);
    // Micro: over samples. Multiple choice 4 right of 8; numerical (1 + 0.5 + 0.2) / 3; all 5.7 / 11.
    assert!(close(m.acc.micro, 0.5));
    assert!(close(m.mra.micro, 1.7 / 3.0));
    assert!(close(m.all.micro, 5.7 / 11.0));
    // Macro: direction = (1 + 0 + 0.5) / 3 = 0.5 as one task.
    assert!(close(m.rel_direction().unwrap(), 0.5));
    // Acc: mean(direction 0.5, appearance order 0, route 1) = 0.5.
    assert!(close(m.acc.macro_, 0.5));
    // MRA: mean(counting 0.75, room size 0.2) = 0.475.
    assert!(close(m.mra.macro_, 0.475));
    // All: mean(direction 0.5, appearance 0, route 1, counting 0.75, room 0.2) = 2.45 / 5 = 0.49 — not the
    // mean over the seven types (3.45 / 7).
    assert!(close(m.all.macro_, 0.49));
    assert!(!close(m.all.macro_, 3.45 / 7.0));

    let t = m.table();
    assert!(t.contains("object_rel_direction (3 levels)"), "{t}");
    assert!(t.contains("All"), "{t}");
    assert!(t.lines().any(|l| l.starts_with("MRA (NA)") && l.contains("56.67") && l.contains("47.50")), "{t}");
    println!("{t}");

    // The metrics JSON has the reference's layout.
    let j = serde_json::to_value(&m).unwrap();
    assert!(j["acc"]["macro"].is_number() && j["per_question_type"]["route_planning"]["count"] == 1);
}

#[test]
fn aggregation_edge_cases() {
    let m = vsi_metrics(Vec::new());
    assert_eq!((m.acc.micro, m.all.macro_), (0.0, 0.0));
    // Only numerical questions: no direction task, acc 0 (safe_mean of nothing).
    let m = vsi_metrics(vec![(ObjectSizeEstimation, 0.4), (ObjectAbsDistance, 0.8)]);
    assert!(m.rel_direction().is_none());
    assert_eq!((m.acc.micro, m.acc.macro_), (0.0, 0.0));
    assert!(close(m.all.macro_, 0.6) && close(m.mra.macro_, 0.6));
    // One direction level present: it is the direction task on its own.
    let m = vsi_metrics(vec![(ObjectRelDirectionMedium, 1.0), (ObjectRelDistance, 0.0), (ObjectRelDistance, 0.0)]);
    assert!(close(m.acc.macro_, 0.5) && close(m.acc.micro, 1.0 / 3.0));
}

#[test]
fn qa_aggregation() {
    let s = |id: &str, t: &str, a: &str| eval::QaSample {
        id: id.into(),
        benchmark: QaBenchmark::Sqa3d,
        video: String::new(),
        prompt: String::new(),
        answers: vec![a.into()],
        question_type: t.into(),
    };
    let records = vec![
        eval::QaRecord::new(&s("1", "what", "chair"), "Chair"),
        eval::QaRecord::new(&s("2", "what", "on the left"), "left"),
        eval::QaRecord::new(&s("3", "is", "yes"), "no"),
        eval::QaRecord::new(&s("4", "is", "two"), "2"),
    ];
    let m = qa_metrics(&records);
    assert_eq!(m.all.count, 4);
    assert!(close(m.all.em, 0.5) && close(m.all.em_refined, 0.75));
    assert!(close(m.per_question_type["what"].em, 0.5) && close(m.per_question_type["what"].em_refined, 1.0));
    assert!(close(m.per_question_type["is"].em, 0.5) && close(m.per_question_type["is"].em_refined, 0.5));
}

// ------------------------------------------------------------------------------------------------ annotations

#[test]
fn bad_annotation_lines_are_reported_and_skipped() {
    let text = r#"{"id": 1, "dataset": "arkitscenes", "scene_name": "41069025", "question_type": "object_counting", "question": "How many chair(s) are in this room?", "options": null, "ground_truth": "2"}
{"id": 2, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_rel_distance", "question": "Which is closest?", "options": ["A. bed", "B. desk"], "ground_truth": "A"
{"id": 3, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_height", "question": "How tall?", "ground_truth": "2"}

{"id": 4, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "route_planning", "question": "Which route?", "options": [], "ground_truth": "B"}
{"id": 5, "dataset": "scannetpp", "scene_name": "0a5c013435", "question_type": "object_rel_direction_hard", "question": "Where?", "options": ["A. front-left", "B. back-right"], "ground_truth": "B"}
{"id": 1, "dataset": "scannet", "scene_name": "x", "question_type": "object_counting", "question": "Again?", "ground_truth": "3"}
{"id": 7, "dataset": "scannet", "scene_name": "x", "question_type": "object_counting", "question": "No answer"}
"#;
    let parsed = parse_vsi_annotations(text);
    let ids: Vec<&str> = parsed.items.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["1", "5"]);
    let lines: Vec<usize> = parsed.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 5, 7, 8], "{:?}", parsed.errors);
    let msg = |line: usize| parsed.errors.iter().find(|e| e.line == line).unwrap().to_string();
    assert!(msg(2).starts_with("line 2: not JSON"), "{}", msg(2));
    assert!(msg(3).contains("unknown question type \"object_height\""), "{}", msg(3));
    assert!(msg(5).contains("without options"), "{}", msg(5));
    assert!(msg(7).contains("duplicate id \"1\" (first on line 1)"), "{}", msg(7));
    assert!(msg(8).contains("missing `ground_truth`"), "{}", msg(8));

    let s = &parsed.items[1];
    assert_eq!(s.question_type, ObjectRelDirectionHard);
    assert_eq!(s.options, ["A. front-left", "B. back-right"]);
    assert_eq!(s.video_path(), "scannetpp/0a5c013435.mp4");
}

#[test]
fn json_array_and_v10_layout() {
    let text = r#"[
    {
        "problem_id": 0,
        "problem": "How many table(s) are in this room?",
        "problem_type": "regression",
        "original_question_type": "object_counting",
        "options": null,
        "solution": "<answer>4</answer>",
        "path": "./arkitscenes/41069025.mp4"
    },
    {
        "problem_id": 1,
        "problem": "broken",
        "original_question_type": 17,
        "solution": "<answer>4</answer>"
    },
    {
        "problem_id": 957,
        "problem": "Is the tv to my front-left or back-right?",
        "problem_type": "multiple choice",
        "original_question_type": "object_rel_direction_hard",
        "options": ["A. front-left", "B. back-right"],
        "solution": "<answer>A</answer>",
        "path": "./arkitscenes/41069025.mp4"
    }
]"#;
    let parsed = parse_vsi_annotations(text);
    assert_eq!(parsed.items.len(), 2);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].line, 11);
    assert!(parsed.errors[0].message.contains("`original_question_type` is not a string"));
    let s = &parsed.items[0];
    assert_eq!((s.id.as_str(), s.dataset.as_str(), s.scene_name.as_str()), ("0", "arkitscenes", "41069025"));
    assert_eq!(s.video_path(), "./arkitscenes/41069025.mp4");
    assert_eq!(vsi_reward(&clean_text(&s.ground_truth), &clean_text("4"), s.question_type), 1.0);
    assert_eq!(
        s.prompt(PromptStyle::V1_0),
        "How many table(s) are in this room? Please answer with the only numerical value (e.g., 42, 3.14, etc.) within the <answer> </answer> tags."
    );
}

#[test]
fn qa_annotations() {
    let text = r#"[
{"id": "scanqa_val-scene0050-0_0", "video": "scannet/scene0050_00", "conversations": [{"from": "human", "value": "<image> What is in the corner? Answer the question simply."}, {"from": "gpt", "value": "cabinet"}], "metadata": {"dataset": "scanQA", "question_type": "unknow", "answers": ["brown cabinet", "cabinet"]}},
{"id": 220602000037, "video": "scannet/scene0249_00", "conversations": [{"from": "human", "value": "<image> I am wiping a table. Which direction should I go? Answer the question using a single word or phrase."}, {"from": "gpt", "value": "right"}], "metadata": {"dataset": "sqa3d", "question_type": "which"}},
{"id": "x", "conversations": []}
]"#;
    let parsed = parse_qa_annotations(text, None);
    assert_eq!(parsed.items.len(), 2);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].line, 4);
    let (a, b) = (&parsed.items[0], &parsed.items[1]);
    assert_eq!((a.benchmark, b.benchmark), (QaBenchmark::ScanQa, QaBenchmark::Sqa3d));
    assert_eq!(a.answers, ["brown cabinet", "cabinet"]);
    assert_eq!(b.answers, ["right"]);
    assert_eq!(b.id, "220602000037");
    assert!(b.prompt.starts_with("<image> I am wiping"));
    assert_eq!(prompt::sqa3d_prompt("I am wiping a table.", "Which direction should I go?"), b.prompt["<image> ".len()..]);
}

// ------------------------------------------------------------------------------------------------ pipeline

fn samples() -> Vec<Sample> {
    let text = r#"{"id": 10, "dataset": "scannet", "scene_name": "s0", "question_type": "object_counting", "question": "How many chair(s) are in this room?", "ground_truth": "4"}
{"id": 11, "dataset": "scannet", "scene_name": "s0", "question_type": "object_rel_direction_easy", "question": "Is the bed to the left or right of the desk?", "options": ["A. left", "B. right"], "ground_truth": "A"}
{"id": 12, "dataset": "scannet", "scene_name": "s1", "question_type": "object_rel_direction_medium", "question": "Where is the door?", "options": ["A. left", "B. right", "C. back"], "ground_truth": "C"}
{"id": 13, "dataset": "scannet", "scene_name": "s1", "question_type": "room_size_estimation", "question": "How big is this room (in square meters)?", "ground_truth": "20"}
{"id": 14, "dataset": "scannet", "scene_name": "s1", "question_type": "route_planning", "question": "Which route?", "options": ["A. Turn Left", "B. Turn Right"], "ground_truth": "B"}
"#;
    let parsed = parse_vsi_annotations(text);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.items
}

/// The fake model: replies from a table by sample id, counting the calls and recording the prompts.
struct FakeModel {
    replies: HashMap<&'static str, Result<&'static str, &'static str>>,
    calls: RefCell<Vec<(String, String)>>,
}

impl FakeModel {
    fn new() -> FakeModel {
        let replies = HashMap::from([
            ("10", Ok("<answer>5</answer>")), // MRA(5, 4): rel 0.25 → 5 of 10
            ("11", Ok("A.")),
            ("12", Ok("B")),
            ("13", Ok("twenty")), // unparsable → 0
            ("14", Ok("B")),
        ]);
        FakeModel { replies, calls: RefCell::new(Vec::new()) }
    }
    fn answer(&self, s: &Sample, prompt: &str) -> Result<String, String> {
        self.calls.borrow_mut().push((s.id.clone(), prompt.to_string()));
        self.replies[s.id.as_str()].map(str::to_string).map_err(str::to_string)
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn evaluate_writes_one_line_per_sample_with_reference_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/results.jsonl");
    let samples = samples();
    let model = FakeModel::new();
    let summary = eval::evaluate(&samples, |s, p| model.answer(s, p), &path).unwrap();
    assert_eq!((summary.evaluated, summary.resumed, summary.failures.len()), (5, 0, 0));

    let calls = model.calls.borrow();
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0].1, "How many chair(s) are in this room?\nPlease answer the question using a single word or phrase.");
    assert_eq!(
        calls[1].1,
        "Is the bed to the left or right of the desk?\nOptions:\nA. left\nB. right\nAnswer with the option's letter from the given choices directly."
    );

    let rows = lines(&path);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["id"], "10");
    assert_eq!(rows[0]["question_type"], "object_counting");
    assert_eq!(rows[0]["prediction"], "<answer>5</answer>");
    assert_eq!(rows[0]["prediction_clean"], "5");
    assert_eq!(rows[0]["ground_truth"], "4");
    assert_eq!(rows[0]["score"], 0.5);
    assert_eq!(rows[1]["score"], 1.0);
    assert_eq!(rows[1]["correct"], true);
    assert_eq!(rows[3]["score"], 0.0);

    // Scores 0.5, 1, 0, 0, 1. Direction = (1 + 0) / 2; MCA macro = mean(0.5, route 1) = 0.75; MCA micro 2/3.
    let m = &summary.metrics;
    assert!(close(m.acc.micro, 2.0 / 3.0));
    assert!(close(m.acc.macro_, 0.75));
    assert!(close(m.mra.micro, 0.25) && close(m.mra.macro_, 0.25));
    assert!(close(m.all.micro, 2.5 / 5.0));
    assert!(close(m.all.macro_, (0.5 + 1.0 + 0.5 + 0.0) / 4.0));
    let (from_file, errors) = eval::metrics_from_results_file(&path).unwrap();
    assert!(errors.is_empty());
    assert_eq!(&from_file, m);
}

#[test]
fn resume_from_a_partial_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let samples = samples();

    // An interrupted run: samples 10 and 12 written, then a line cut short mid-write.
    let done: Vec<VsiRecord> = [(0, "<answer>4</answer>"), (2, "C")].iter().map(|&(i, reply)| VsiRecord::score(&samples[i], PromptStyle::V1_1, reply)).collect();
    let mut text: String = done.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    text += r#"{"id": "11", "question_type": "object_rel_dir"#;
    std::fs::write(&path, &text).unwrap();

    // The rerun asks only the three samples not in the file; sample 11's reply fails this time.
    let mut model = FakeModel::new();
    model.replies.insert("11", Err("out of memory"));
    let summary = eval::evaluate(&samples, |s, p| model.answer(s, p), &path).unwrap();
    let asked: Vec<String> = model.calls.borrow().iter().map(|c| c.0.clone()).collect();
    assert_eq!(asked, ["11", "13", "14"]);
    assert_eq!((summary.evaluated, summary.resumed), (2, 2));
    assert_eq!(summary.failures, [("11".to_string(), "out of memory".to_string())]);
    assert_eq!(summary.results_errors.len(), 1);
    assert_eq!(summary.results_errors[0].line, 3);
    // The stored records count: 10 scored 1.0 (from the file, not the fake model's 0.5).
    assert_eq!(summary.records.iter().find(|r| r.id == "10").unwrap().score, 1.0);
    let ids: Vec<String> = lines(&path).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["10", "12", "13", "14"]);

    // The next rerun asks only the failed one; after that nothing is asked.
    let model = FakeModel::new();
    let summary = eval::evaluate(&samples, |s, p| model.answer(s, p), &path).unwrap();
    assert_eq!(model.calls.borrow().iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["11"]);
    assert_eq!((summary.evaluated, summary.resumed, summary.failures.len()), (1, 4, 0));
    assert!(summary.results_errors.is_empty());
    assert_eq!(lines(&path).len(), 5);
    // Scores 1, 1, 1, 0, 1.
    assert!(close(summary.metrics.all.micro, 0.8));

    let model = FakeModel::new();
    let summary = eval::evaluate(&samples, |s, p| model.answer(s, p), &path).unwrap();
    assert!(model.calls.borrow().is_empty());
    assert_eq!((summary.evaluated, summary.resumed), (0, 5));
    assert_eq!(vsi_metrics_of(&summary.records), summary.metrics);
}

#[test]
fn resume_keeps_a_complete_last_line_without_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let samples = samples();
    let r = VsiRecord::score(&samples[0], PromptStyle::V1_1, "4");
    std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
    let model = FakeModel::new();
    let summary = eval::evaluate(&samples, |s, p| model.answer(s, p), &path).unwrap();
    assert_eq!((summary.evaluated, summary.resumed), (4, 1));
    assert!(summary.results_errors.is_empty());
    assert_eq!(lines(&path).len(), 5);
}

#[test]
fn evaluate_qa_with_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sqa3d.jsonl");
    let text = r#"{"id": 1, "conversations": [{"from": "human", "value": "Q1"}, {"from": "gpt", "value": "left"}], "metadata": {"question_type": "which"}}
{"id": 2, "conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "two"}], "metadata": {"question_type": "how"}}
"#;
    let samples = parse_qa_annotations(text, Some(QaBenchmark::Sqa3d)).items;
    let mut asked = Vec::new();
    let mut answer = |s: &eval::QaSample, p: &str| -> Result<String, String> {
        asked.push(p.to_string());
        Ok(if s.id == "1" { "the left side".into() } else { "2".into() })
    };
    let summary = eval::evaluate_qa(&samples[..1], &mut answer, &path).unwrap();
    assert_eq!(summary.evaluated, 1);
    let summary = eval::evaluate_qa(&samples, &mut answer, &path).unwrap();
    assert_eq!((summary.evaluated, summary.resumed), (1, 1));
    assert_eq!(asked, ["Q1", "Q2"]);
    assert!(close(summary.metrics.all.em, 0.5) && close(summary.metrics.all.em_refined, 1.0));
    let (m, _) = eval::qa_metrics_from_results_file(&path).unwrap();
    assert_eq!(m, summary.metrics);
}
