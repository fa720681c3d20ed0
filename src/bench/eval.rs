//! Evaluation throughput (`bench eval`): VSI-Bench simulated with random frames and a model of
//! any weights. Each video is preprocessed and encoded once; its questions, drawn from
//! VSI-Bench's question templates in the benchmark's task mix, get the evaluator's prompts
//! (`eval::prompt`, the chat template through the tokenizer) and short greedy answers in the one
//! session, as `spatial-mllm eval` asks the questions of one video. Reported: seconds per video
//! and per question, questions per hour, and projections to the whole benchmark next to the
//! upstream figure (Spatial-MLLM issue #23: the 5 130 questions in about 3 hours on one GPU).

use super::spatial::{random_video, RandomVideo};
use crate::eval::{PromptStyle, QuestionType, Sample, VsiRecord};
use crate::gpu::{clock::now_ms, Gpu};
use crate::model::qwen::chat::QwenTokenizer;
use crate::model::qwen::generate::GenerationConfig;
use crate::model::spatial::{open_session, SpatialMllm, Visual};
use crate::model::vggt::Frames;
use crate::model::MResult;
use crate::rng::Rng;

/// VSI-Bench's questions (the eval set the spec counts, §8.1).
pub const VSI_QUESTIONS: usize = 5130;
/// VSI-Bench's videos (one room-size question per video: 288).
pub const VSI_VIDEOS: usize = 288;
/// The upstream evaluation time for the 5 130 questions on one GPU (Spatial-MLLM issue #23, v1.1-135K), hours.
pub const UPSTREAM_HOURS: f64 = 3.0;

/// Questions per type in VSI-Bench (spec §8.1): the mix questions are drawn from.
pub const VSI_MIX: [(QuestionType, usize); 10] = [
    (QuestionType::ObjectCounting, 565),
    (QuestionType::ObjectAbsDistance, 834),
    (QuestionType::ObjectSizeEstimation, 953),
    (QuestionType::RoomSizeEstimation, 288),
    (QuestionType::ObjectRelDistance, 710),
    (QuestionType::ObjectRelDirectionEasy, 217),
    (QuestionType::ObjectRelDirectionMedium, 378),
    (QuestionType::ObjectRelDirectionHard, 373),
    (QuestionType::RoutePlanning, 194),
    (QuestionType::ObjAppearanceOrder, 618),
];

/// Object categories of the rooms (ScanNet / ScanNet++ / ARKitScenes labels).
const OBJECTS: [&str; 16] =
    ["chair", "table", "sofa", "bed", "door", "window", "lamp", "tv", "sink", "toilet", "desk", "refrigerator", "cabinet", "stool", "pillow", "trash can"];

/// `k` distinct objects.
fn objects(rng: &mut Rng, k: usize) -> Vec<&'static str> {
    let mut pool: Vec<&str> = OBJECTS.to_vec();
    (0..k).map(|_| pool.swap_remove(rng.below(pool.len()))).collect()
}

fn lettered(options: &[String]) -> Vec<String> {
    options.iter().enumerate().map(|(i, o)| format!("{}. {o}", (b'A' + i as u8) as char)).collect()
}

/// A question of `question_type` in VSI-Bench's phrasing (its templates, random objects), its
/// lettered options (multiple choice) and a ground truth.
pub fn vsi_question(rng: &mut Rng, question_type: QuestionType) -> (String, Vec<String>, String) {
    use QuestionType::*;
    let letter = |rng: &mut Rng, n: usize| ((b'A' + rng.below(n) as u8) as char).to_string();
    let o = objects(rng, 4);
    let (q, opts): (String, Vec<String>) = match question_type {
        ObjectCounting => (format!("How many {}(s) are in this room?", o[0]), vec![]),
        ObjectAbsDistance => {
            (format!("Measuring from the closest point of each object, what is the direct distance between the {} and the {} (in meters)?", o[0], o[1]), vec![])
        }
        ObjectSizeEstimation => {
            (format!("What is the length of the longest dimension (length, width, or height) of the {}, measured in centimeters?", o[0]), vec![])
        }
        RoomSizeEstimation => ("What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the combined space.".into(), vec![]),
        ObjectRelDistance => {
            let c = objects(rng, 5);
            (
                format!("Measuring from the closest point of each object, which of these objects ({}, {}, {}, {}) is the closest to the {}?", c[0], c[1], c[2], c[3], c[4]),
                c[..4].iter().map(|s| s.to_string()).collect(),
            )
        }
        ObjectRelDirectionEasy => (
            format!("If I am standing by the {} and facing the {}, is the {} to the left or the right of the {}?", o[0], o[1], o[2], o[1]),
            vec!["left".into(), "right".into()],
        ),
        ObjectRelDirectionMedium => (
            format!(
                "If I am standing by the {} and facing the {}, is the {} to my left, right, or back? An object is to my back if I would have to turn at least 135 degrees in order to face it.",
                o[0], o[1], o[2]
            ),
            vec!["left".into(), "right".into(), "back".into()],
        ),
        ObjectRelDirectionHard => (
            format!(
                "If I am standing by the {} and facing the {}, is the {} to my front-left, front-right, back-left, or back-right? The directions refer to the quadrants of a Cartesian plane (if I am standing at the origin and facing along the positive y-axis).",
                o[0], o[1], o[2]
            ),
            ["front-left", "front-right", "back-left", "back-right"].iter().map(|s| s.to_string()).collect(),
        ),
        RoutePlanning => (
            format!(
                "You are a robot beginning at the {} facing the {}. You want to navigate to the {}. You will perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' or 'turn right.'): 1. Go forward until the {} 2. [please fill in] 3. Go forward until the {} 4. [please fill in] 5. Go forward until the {}. You have reached the final destination.",
                o[0], o[1], o[3], o[1], o[2], o[3]
            ),
            ["Turn Left, Turn Right", "Turn Right, Turn Back", "Turn Back, Turn Left", "Turn Left, Turn Left"].iter().map(|s| s.to_string()).collect(),
        ),
        ObjAppearanceOrder => {
            let orders: Vec<String> = (0..4).map(|_| objects(rng, 4).join(", ")).collect();
            (format!("What will be the first-time appearance order of the following categories in the video: {}?", o.join(", ")), orders)
        }
    };
    let truth = match question_type {
        ObjectCounting => (1 + rng.below(6)).to_string(),
        ObjectAbsDistance => format!("{:.1}", 0.5 + rng.unit() * 4.0),
        ObjectSizeEstimation => (20 + rng.below(200)).to_string(),
        RoomSizeEstimation => format!("{:.1}", 8.0 + rng.unit() * 40.0),
        _ => letter(rng, opts.len()),
    };
    (q, lettered(&opts), truth)
}

/// `n` VSI-Bench samples about video `video`, their types drawn in the benchmark's mix.
pub fn vsi_samples(rng: &mut Rng, video: usize, n: usize) -> Vec<Sample> {
    let total: usize = VSI_MIX.iter().map(|(_, c)| c).sum();
    (0..n)
        .map(|i| {
            let mut pick = rng.below(total);
            let mut question_type = VSI_MIX[0].0;
            for (t, c) in VSI_MIX {
                if pick < c {
                    question_type = t;
                    break;
                }
                pick -= c;
            }
            let (question, options, ground_truth) = vsi_question(rng, question_type);
            Sample {
                id: format!("bench-{video}-{i}"),
                dataset: "scannet".into(),
                scene_name: format!("bench{video:04}_00"),
                video: None,
                question,
                options,
                ground_truth,
                question_type,
            }
        })
        .collect()
}

/// What `bench eval` runs.
#[derive(Clone, Debug)]
pub struct EvalBench {
    pub videos: usize,
    pub questions: usize,
    /// Frames per video (even) and the encoders' frame size (multiples of 28).
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Tokens per answer, all decoded (no stop token: random weights rarely stop).
    pub answer_tokens: usize,
    /// The most new tokens the evaluator allows (1024 for VSI-Bench): it sizes each video's context.
    pub max_new_tokens: usize,
    pub style: PromptStyle,
    pub seed: u64,
}

/// One video: its preprocessing (NaN with random encoder inputs) and encoding.
#[derive(Clone, Debug)]
pub struct VideoRun {
    pub vision_tokens: usize,
    pub preprocess_ms: f64,
    pub encode_ms: f64,
}

/// One question.
#[derive(Clone, Debug)]
pub struct QuestionRun {
    pub video: usize,
    /// The question's place among its video's (0: the first, which prefills the visual block).
    pub index: usize,
    pub question_type: QuestionType,
    pub prompt_tokens: usize,
    pub prefilled_tokens: usize,
    pub answer_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Wall time of the whole answer: prompt text, tokenisation, prefill, decode, detokenisation, scoring.
    pub answer_ms: f64,
}

pub struct EvalRun {
    pub bench: EvalBench,
    /// Encodings run (`open_session` calls): one per video, whatever the questions.
    pub encodings: usize,
    pub source: (usize, usize),
    pub videos: Vec<VideoRun>,
    pub questions: Vec<QuestionRun>,
    pub activation_bytes: u64,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

impl EvalRun {
    /// Per video: preprocessing where measured, plus encoding (ms).
    pub fn video_ms(&self) -> f64 {
        mean(self.videos.iter().map(|v| v.preprocess_ms.max(0.0) + v.encode_ms))
    }
    pub fn encode_ms(&self) -> f64 {
        mean(self.videos.iter().map(|v| v.encode_ms))
    }
    pub fn preprocess_ms(&self) -> f64 {
        mean(self.videos.iter().map(|v| v.preprocess_ms))
    }
    pub fn answer_ms(&self) -> f64 {
        mean(self.questions.iter().map(|q| q.answer_ms))
    }
    /// Per answer: the first question of a video (prefilling the visual block) or a later one
    /// (prefilling its own text only); NaN when there were none.
    pub fn answer_ms_of(&self, first: bool) -> f64 {
        mean(self.questions.iter().filter(|q| (q.index == 0) == first).map(|q| q.answer_ms))
    }
    fn prefilled_of(&self, first: bool) -> f64 {
        mean(self.questions.iter().filter(|q| (q.index == 0) == first).map(|q| q.prefilled_tokens as f64))
    }
    /// The whole run (every video's preprocessing and encoding, every answer), ms.
    pub fn total_ms(&self) -> f64 {
        self.videos.iter().map(|v| v.preprocess_ms.max(0.0) + v.encode_ms).sum::<f64>() + self.questions.iter().map(|q| q.answer_ms).sum::<f64>()
    }
    pub fn questions_per_hour(&self) -> f64 {
        self.questions.len() as f64 / self.total_ms() * 3.6e6
    }
    /// VSI-Bench's 5 130 questions over its 288 videos, each video encoded once and its questions
    /// asked in its session (the first at the first-answer cost, the rest at the later one), ms.
    pub fn projected_grouped_ms(&self) -> f64 {
        let later = if self.answer_ms_of(false).is_finite() { self.answer_ms_of(false) } else { self.answer_ms_of(true) };
        VSI_VIDEOS as f64 * (self.video_ms() + self.answer_ms_of(true)) + (VSI_QUESTIONS - VSI_VIDEOS) as f64 * later
    }
    /// VSI-Bench with the video encoded again for every question (as the upstream evaluator
    /// does, and `eval` does when consecutive questions are about different videos), ms.
    pub fn projected_per_question_ms(&self) -> f64 {
        VSI_QUESTIONS as f64 * (self.video_ms() + self.answer_ms_of(true))
    }
}

/// Run `b` through the pipeline `eval` uses: per video, random frames preprocessed (or random
/// encoder inputs at small sizes, [`random_video`]) and encoded once in one submission
/// (`open_session`, the context sized for the evaluator's `max_new_tokens`); per question, the
/// evaluator's prompt text answered in that session (`VideoSession::answer`: the chat template,
/// the shared prefix reused from the cache) and scored as `eval` scores it.
pub async fn run(gpu: &Gpu, m: &SpatialMllm, tok: &QwenTokenizer, b: &EvalBench) -> MResult<EvalRun> {
    let gen = GenerationConfig::greedy(b.answer_tokens, vec![]);
    let mut rng = Rng::new(b.seed);
    let mut run = EvalRun { bench: b.clone(), encodings: 0, source: (b.width, b.height), videos: Vec::new(), questions: Vec::new(), activation_bytes: 0 };
    for v in 0..b.videos {
        let RandomVideo { vit, pixels, source, preprocess_ms } = random_video(m, b.frames, b.height, b.width, b.seed ^ (v as u64 + 1).wrapping_mul(0x9e37_79b9))?;
        run.source = source;
        let frames = Frames { pixels: &pixels, count: b.frames, height: b.height, width: b.width };
        let opened = open_session(gpu, m, Visual::Video { vit: &vit, vggt: frames }, b.max_new_tokens, None).await?;
        run.encodings += 1;
        let mut session = opened.session;
        run.videos.push(VideoRun { vision_tokens: session.visual_tokens(), preprocess_ms, encode_ms: opened.encode_ms });
        for (i, sample) in vsi_samples(&mut rng, v, b.questions).iter().enumerate() {
            let t0 = now_ms();
            let prompt = sample.prompt(b.style);
            let reply = session.answer(gpu, m, tok, &prompt, &gen, &mut |_| {}, &|| false).await?;
            let _scored = VsiRecord::new(sample, &prompt, &reply.text);
            run.questions.push(QuestionRun {
                video: v,
                index: i,
                question_type: sample.question_type,
                prompt_tokens: reply.prompt_tokens,
                prefilled_tokens: reply.prefilled_tokens,
                answer_tokens: reply.tokens.len(),
                prefill_ms: reply.prefill_ms,
                decode_ms: reply.decode_ms,
                answer_ms: now_ms() - t0,
            });
        }
    }
    run.activation_bytes = gpu.stats.activation_bytes();
    Ok(run)
}

/// "1 234" (thousands separated by a space, as the docs write figures).
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Seconds, three decimals below one.
fn secs(ms: f64) -> String {
    if ms.is_finite() && ms < 1e3 {
        format!("{:.3}", ms / 1e3)
    } else if ms.is_finite() {
        format!("{:.2}", ms / 1e3)
    } else {
        "n/a".into()
    }
}

pub fn format_table(gpu: &Gpu, package: &str, tokenizer: &str, r: &EvalRun) -> String {
    let b = &r.bench;
    let vis = r.videos.first().map_or(0, |v| v.vision_tokens);
    let mut s = format!("device: {}\npath: {:?} activations\npackage: {package}\ntokenizer: {tokenizer}\n", gpu.info, gpu.act);
    s += &crate::bench::gemm_line(gpu);
    s += &format!(
        "simulated VSI-Bench: {} videos x {} questions, {} random frames of {}x{} per video ({vis} vision tokens), {} prompts, answers of {} tokens (greedy, no stop token), context sized for {} new tokens\n\n",
        b.videos,
        b.questions,
        b.frames,
        b.width,
        b.height,
        if b.style == PromptStyle::V1_0 { "v1.0" } else { "v1.1" },
        b.answer_tokens,
        b.max_new_tokens
    );
    s += "| videos | questions | encodings | preprocess s/video | encode s/video | answer s/question | first answer s | later answers s | prompt tokens | prefilled tokens first / later | questions/hour |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    let later_prefill = r.prefilled_of(false);
    s += &format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} / {} | {} |\n\n",
        r.videos.len(),
        r.questions.len(),
        r.encodings,
        secs(r.preprocess_ms()),
        secs(r.encode_ms()),
        secs(r.answer_ms()),
        secs(r.answer_ms_of(true)),
        secs(r.answer_ms_of(false)),
        mean(r.questions.iter().map(|q| q.prompt_tokens as f64)),
        r.prefilled_of(true),
        if later_prefill.is_finite() { format!("{later_prefill:.0}") } else { "n/a".into() },
        thousands(r.questions_per_hour()),
    );
    let upstream_qph = VSI_QUESTIONS as f64 / UPSTREAM_HOURS;
    s += &format!("| VSI-Bench: {} questions, {} videos | questions/hour | hours | vs upstream |\n|---|---|---|---|\n", thousands(VSI_QUESTIONS as f64), VSI_VIDEOS);
    let mut row = |what: String, ms: f64, per_hour: f64| {
        s += &format!("| {what} | {} | {:.2} | {:.2}x |\n", thousands(per_hour), ms / 3.6e6, per_hour / upstream_qph);
    };
    let per_video = r.questions.len() as f64 / r.videos.len().max(1) as f64;
    row(format!("this run ({per_video:.1} questions per video)"), VSI_QUESTIONS as f64 / r.questions_per_hour() * 3.6e6, r.questions_per_hour());
    let g = r.projected_grouped_ms();
    row(format!("projected, each video encoded once ({:.1} questions per video)", VSI_QUESTIONS as f64 / VSI_VIDEOS as f64), g, VSI_QUESTIONS as f64 / g * 3.6e6);
    let p = r.projected_per_question_ms();
    row("projected, the video encoded again for each question".into(), p, VSI_QUESTIONS as f64 / p * 3.6e6);
    row("upstream (Spatial-MLLM issue #23: one GPU, about 3 h)".into(), UPSTREAM_HOURS * 3.6e6, upstream_qph);
    let mut mix = String::new();
    for (t, _) in VSI_MIX {
        let n = r.questions.iter().filter(|q| q.question_type == t).count();
        if n > 0 {
            mix += &format!("{}{t} {n}", if mix.is_empty() { "" } else { ", " });
        }
    }
    s += &format!("\nquestions asked: {mix}\npeak activations: {:.2} GB\n", r.activation_bytes as f64 / 1e9);
    if r.preprocess_ms().is_finite() {
        s += &format!(
            "(preprocessing: random {}x{} frames resized and normalised for both encoders on the CPU, one thread; decoding the video with ffmpeg, which `eval` also does, is not included)\n",
            r.source.0, r.source.1
        );
    } else {
        s += "(preprocessing: n/a, the size asked is below qwen-vl-utils' pixel budget, so the encoders got random inputs of that size)\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_mix_and_the_evaluator_prompts() {
        let mut rng = Rng::new(1);
        let samples = vsi_samples(&mut rng, 3, 2000);
        for s in &samples {
            s.check().expect("multiple-choice questions have options");
            let p = s.prompt(PromptStyle::V1_1);
            assert!(p.starts_with(&s.question), "{p}");
            if s.question_type.is_multiple_choice() {
                assert!(s.options[0].starts_with("A. ") && p.contains("\nOptions:\nA. "), "{p}");
                assert!(s.ground_truth.len() == 1 && (b'A'..b'A' + s.options.len() as u8).contains(&s.ground_truth.as_bytes()[0]), "{s:?}");
            } else {
                assert!(s.options.is_empty() && s.ground_truth.parse::<f64>().is_ok(), "{s:?}");
            }
        }
        // Every type appears, roughly in VSI-Bench's proportions (object_size_estimation 953 of 5 130).
        for (t, count) in VSI_MIX {
            let n = samples.iter().filter(|s| s.question_type == t).count();
            let want = count as f64 / VSI_QUESTIONS as f64 * samples.len() as f64;
            assert!((n as f64 - want).abs() < want * 0.5 + 10.0, "{t}: {n}, expected about {want:.0}");
        }
        let mc = samples.iter().filter(|s| s.question_type.is_multiple_choice()).count() as f64 / samples.len() as f64;
        assert!((mc - 2490.0 / 5130.0).abs() < 0.05, "{mc}");
        assert_eq!(VSI_MIX.iter().map(|(_, c)| c).sum::<usize>(), VSI_QUESTIONS);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1710.0), "1 710");
        assert_eq!(thousands(123.4), "123");
        assert_eq!(thousands(1234567.0), "1 234 567");
        assert_eq!(thousands(f64::NAN), "n/a");
    }
}
