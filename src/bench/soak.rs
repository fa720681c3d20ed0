//! Long sessions (`bench soak`): many questions in a row about one video, then many videos encoded
//! one after another, on one engine, as a long app session or `eval` runs them. After every step
//! the engine's own GPU tally (`Gpu::memory`: the buffer pool's buffers in use and kept for reuse,
//! the buffers outside the pool, cached bind groups, pipelines) and the process's resident memory
//! are read. After a warm-up (the shapes a session meets are all seen once) nothing may grow by
//! more than a stated bound; and every answer must equal, token for token, the greedy answer a
//! fresh engine gives the same question in a fresh session.

use super::eval::vsi_samples;
use super::spatial::{random_video, RandomVideo};
use crate::eval::PromptStyle;
use crate::gpu::{clock::now_ms, Gpu, MemoryTally};
use crate::model::qwen::chat::QwenTokenizer;
use crate::model::qwen::generate::GenerationConfig;
use crate::model::spatial::{open_session, SpatialMllm, VideoSession, Visual};
use crate::model::vggt::Frames;
use crate::model::MResult;
use crate::rng::Rng;

/// What `bench soak` runs.
#[derive(Clone, Debug)]
pub struct SoakBench {
    /// Questions in a row about one video, in one session.
    pub questions: usize,
    /// Videos encoded one after another (each asked one question, then dropped).
    pub videos: usize,
    /// The first video's frames and the encoders' frame size (multiples of 28); later videos
    /// cycle through [`SoakBench::video_shape`]'s variations of it.
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Tokens per answer (greedy; the answer stops earlier at an end-of-turn token).
    pub answer_tokens: usize,
    /// Sizes each session's context, as `eval`'s `--max-new-tokens`.
    pub max_new_tokens: usize,
    /// Steps of each phase after which the baseline is read (every shape seen once by then).
    pub warmup_questions: usize,
    pub warmup_videos: usize,
    /// Allowed growth after the warm-up: the GPU tally (bytes) and the resident memory (bytes).
    pub gpu_bound: u64,
    pub rss_bound: u64,
    pub seed: u64,
}

/// Video shapes cycle through this many variations (the warm-up must cover them).
pub const SHAPES: usize = 3;

impl SoakBench {
    /// Video `j`'s (frames, height, width): the base shape, one merged patch wider, two frames
    /// more, and again, so that the pool meets new sizes as an app session with several videos does.
    pub fn video_shape(&self, j: usize, unit: usize) -> (usize, usize, usize) {
        match j % SHAPES {
            0 => (self.frames, self.height, self.width),
            1 => (self.frames, self.height, self.width + unit),
            _ => (self.frames + 2, self.height, self.width),
        }
    }

    /// Warm-ups that see every question length class and every video shape at least once.
    pub fn default_warmups(questions: usize, videos: usize) -> (usize, usize) {
        ((questions / 4).clamp(1, 10), SHAPES.min(videos))
    }
}

/// What the engine and the process hold after a step.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    pub gpu: MemoryTally,
    /// The process's resident memory (`/proc/self/statm`), 0 where unknown.
    pub rss_bytes: u64,
    /// The step's wall time.
    pub ms: f64,
}

/// One phase: the reading before its first step, then one after each step.
pub struct Phase {
    pub name: &'static str,
    pub warmup: usize,
    pub readings: Vec<Reading>,
}

impl Phase {
    /// The reading after the warm-up (the baseline).
    pub fn baseline(&self) -> &Reading {
        &self.readings[self.warmup.min(self.readings.len() - 1)]
    }

    /// The most `f` grew over the baseline after the warm-up (0 when it never did).
    pub fn growth(&self, f: impl Fn(&Reading) -> u64) -> u64 {
        let base = f(self.baseline());
        self.readings[self.warmup.min(self.readings.len() - 1)..].iter().map(|r| f(r).saturating_sub(base)).max().unwrap_or(0)
    }
}

/// One answer of the long run.
#[derive(Clone, Debug)]
pub struct SoakAnswer {
    /// "question 12" or "video 3".
    pub what: String,
    pub question: String,
    pub tokens: Vec<u32>,
    pub text: String,
}

pub struct SoakRun {
    pub bench: SoakBench,
    pub questions: Phase,
    pub videos: Phase,
    pub answers: Vec<SoakAnswer>,
}

/// The process's resident memory in bytes (Linux: `/proc/self/statm`), 0 elsewhere.
pub fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok());
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages.map_or(0, |p| p * page.max(0) as u64)
}

fn reading(gpu: &Gpu, ms: f64) -> Reading {
    Reading { gpu: gpu.memory(), rss_bytes: rss_bytes(), ms }
}

/// The questions, in order: VSI-Bench's templates in its task mix with the evaluator's prompt
/// (their lengths vary as real questions' do).
pub fn soak_questions(b: &SoakBench) -> Vec<String> {
    vsi_samples(&mut Rng::new(b.seed), 0, b.questions.max(b.videos)).iter().map(|s| s.prompt(PromptStyle::V1_1)).collect()
}

/// Encode the random video `j` of the soak (its shape from `video_shape`).
async fn encode(gpu: &Gpu, m: &SpatialMllm, b: &SoakBench, j: usize) -> MResult<VideoSession> {
    let unit = m.cfg.vision.patch * m.cfg.vision.merge;
    let (frames, height, width) = b.video_shape(j, unit);
    let RandomVideo { vit, pixels, .. } = random_video(m, frames, height, width, b.seed ^ (j as u64 + 1).wrapping_mul(0x9e37_79b9))?;
    let f = Frames { pixels: &pixels, count: frames, height, width };
    Ok(open_session(gpu, m, Visual::Video { vit: &vit, vggt: f }, b.max_new_tokens, None).await?.session)
}

async fn ask(gpu: &Gpu, m: &SpatialMllm, tok: &QwenTokenizer, s: &mut VideoSession, b: &SoakBench, question: &str) -> MResult<(Vec<u32>, String)> {
    let gen = GenerationConfig::greedy(b.answer_tokens, m.cfg.tokens.eos.clone());
    let r = s.answer(gpu, m, tok, question, &gen, &mut |_| {}, &|| false).await?;
    Ok((r.tokens, r.text))
}

/// The long run on one engine: `questions` in one session about video 0, then `videos` videos
/// encoded one after another, each asked one question and dropped; a reading after every step.
pub async fn run(gpu: &Gpu, m: &SpatialMllm, tok: &QwenTokenizer, b: &SoakBench) -> MResult<SoakRun> {
    let questions = soak_questions(b);
    let mut answers = Vec::new();
    let mut qp = Phase { name: "questions in one session", warmup: b.warmup_questions, readings: vec![reading(gpu, 0.0)] };
    let mut session = encode(gpu, m, b, 0).await?;
    for (i, q) in questions.iter().take(b.questions).enumerate() {
        let t0 = now_ms();
        let (tokens, text) = ask(gpu, m, tok, &mut session, b, q).await?;
        qp.readings.push(reading(gpu, now_ms() - t0));
        answers.push(SoakAnswer { what: format!("question {i}"), question: q.clone(), tokens, text });
    }
    drop(session);
    let mut vp = Phase { name: "videos one after another", warmup: b.warmup_videos, readings: vec![reading(gpu, 0.0)] };
    for (j, q) in questions.iter().enumerate().take(b.videos) {
        let t0 = now_ms();
        let mut s = encode(gpu, m, b, j).await?;
        let (tokens, text) = ask(gpu, m, tok, &mut s, b, q).await?;
        drop(s);
        vp.readings.push(reading(gpu, now_ms() - t0));
        answers.push(SoakAnswer { what: format!("video {j}"), question: q.clone(), tokens, text });
    }
    Ok(SoakRun { bench: b.clone(), questions: qp, videos: vp, answers })
}

/// The answers a fresh session gives, in the order of `run`'s: each question about video 0 and
/// each video's question, every one in a session of its own (video encoded again). Run it on a
/// fresh engine (a new `Gpu` and model) to compare with a long run's answers.
pub async fn fresh_answers(gpu: &Gpu, m: &SpatialMllm, tok: &QwenTokenizer, b: &SoakBench) -> MResult<Vec<Vec<u32>>> {
    let questions = soak_questions(b);
    let mut out = Vec::new();
    for q in questions.iter().take(b.questions) {
        out.push(ask(gpu, m, tok, &mut encode(gpu, m, b, 0).await?, b, q).await?.0);
    }
    for (j, q) in questions.iter().enumerate().take(b.videos) {
        out.push(ask(gpu, m, tok, &mut encode(gpu, m, b, j).await?, b, q).await?.0);
    }
    Ok(out)
}

/// What failed: growth past a bound, or answers that differ from a fresh session's.
#[derive(Debug, Default)]
pub struct Verdict {
    pub failures: Vec<String>,
    pub equal_answers: usize,
}

/// Check `run` against its bounds and against `fresh` (from [`fresh_answers`]).
pub fn verdict(run: &SoakRun, fresh: &[Vec<u32>]) -> Verdict {
    let b = &run.bench;
    let mut v = Verdict::default();
    for p in [&run.questions, &run.videos] {
        let gpu = p.growth(|r| r.gpu.total_bytes());
        if gpu > b.gpu_bound {
            v.failures.push(format!("{}: the GPU tally grew by {} after the warm-up, more than the bound {}", p.name, amount(gpu), amount(b.gpu_bound)));
        }
        let rss = p.growth(|r| r.rss_bytes);
        if rss > b.rss_bound {
            v.failures.push(format!("{}: resident memory grew by {} after the warm-up, more than the bound {}", p.name, amount(rss), amount(b.rss_bound)));
        }
    }
    if fresh.len() != run.answers.len() {
        v.failures.push(format!("{} fresh answers for {} long-run answers", fresh.len(), run.answers.len()));
    }
    for (a, f) in run.answers.iter().zip(fresh) {
        if &a.tokens == f {
            v.equal_answers += 1;
        } else {
            v.failures.push(format!("{}: the long session answered {:?}, a fresh session {:?} (question {:?})", a.what, a.tokens, f, a.question));
        }
    }
    v
}

/// "150 bytes", "12.5 KiB" or "3.20 MiB".
fn amount(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1048576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.2} MiB", bytes as f64 / 1048576.0),
    }
}

/// A row of the table: its name, what it reads, its unit in bytes (1 for counts), its bound as shown.
type Measure = (&'static str, fn(&Reading) -> u64, u64, String);

/// The table: per phase and measure, start, after the warm-up, end, the most it grew after the
/// warm-up and the bound; then the answers' agreement and the verdict.
pub fn format_table(gpu: &Gpu, package: &str, run: &SoakRun, v: &Verdict) -> String {
    let b = &run.bench;
    let mut s = format!("device: {}\npath: {:?} activations\npackage: {package}\n", gpu.info, gpu.act);
    s += &format!(
        "{} questions in one session about a video of {} frames of {}x{}, then {} videos encoded one after another (shapes cycling through {} variations), answers of up to {} tokens (greedy), contexts sized for {} new tokens\n\n",
        b.questions, b.frames, b.width, b.height, b.videos, SHAPES, b.answer_tokens, b.max_new_tokens
    );
    s += "| phase | measure | start | after warm-up | end | most growth after warm-up | bound |\n|---|---|---|---|---|---|---|\n";
    for p in [&run.questions, &run.videos] {
        let (first, base, last) = (&p.readings[0], p.baseline(), p.readings.last().expect("a start reading"));
        let warm = format!("{} (step {})", p.name, p.warmup);
        // Unit (bytes per shown unit, 1 for counts) and the bound in that unit.
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        let rows: [Measure; 5] = [
            ("GPU tally (pool + owned), KiB", |r| r.gpu.total_bytes(), KIB, format!("{:.0}", b.gpu_bound as f64 / KIB as f64)),
            ("of it: pool kept for reuse, KiB", |r| r.gpu.pooled_bytes, KIB, "-".into()),
            ("bind groups cached", |r| r.gpu.bind_groups as u64, 1, "-".into()),
            ("pipelines", |r| r.gpu.pipelines as u64, 1, "-".into()),
            ("process resident memory, MiB", |r| r.rss_bytes, MIB, format!("{:.2}", b.rss_bound as f64 / MIB as f64)),
        ];
        for (measure, f, unit, bound) in rows {
            let show = |x: u64| match unit {
                1 => x.to_string(),
                KIB => format!("{:.0}", x as f64 / KIB as f64),
                _ => format!("{:.2}", x as f64 / unit as f64),
            };
            s += &format!("| {warm} | {measure} | {} | {} | {} | {} | {bound} |\n", show(f(first)), show(f(base)), show(f(last)), show(p.growth(f)));
        }
        let ms: Vec<f64> = p.readings[1..].iter().map(|r| r.ms).collect();
        if let (Some(a), Some(z)) = (ms.first(), ms.last()) {
            s += &format!("| {warm} | step ms (first / last) | {a:.1} | | {z:.1} | | |\n");
        }
    }
    s += &format!("\nanswers equal to a fresh session's: {} of {}\n", v.equal_answers, run.answers.len());
    if v.failures.is_empty() {
        s += "verdict: ok (no growth beyond the bounds after the warm-up; every answer equal to a fresh session's)\n";
    } else {
        s += &format!("verdict: FAILED\n{}\n", v.failures.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(values: &[u64], warmup: usize) -> Phase {
        let readings = values.iter().map(|&v| Reading { rss_bytes: v, ..Default::default() }).collect();
        Phase { name: "p", warmup, readings }
    }

    #[test]
    fn growth_counts_only_after_the_warm_up() {
        // Start 10, grows during the warm-up (2 steps), then 30 -> 31 -> 30.
        assert_eq!(phase(&[10, 20, 30, 31, 30], 2).growth(|r| r.rss_bytes), 1);
        // Shrinking is no growth.
        assert_eq!(phase(&[10, 50, 40, 20], 1).growth(|r| r.rss_bytes), 0);
        // A warm-up longer than the run: the last reading is the baseline.
        assert_eq!(phase(&[10, 20], 5).growth(|r| r.rss_bytes), 0);
    }

    fn bench() -> SoakBench {
        SoakBench {
            questions: 200,
            videos: 50,
            frames: 2,
            height: 56,
            width: 56,
            answer_tokens: 4,
            max_new_tokens: 16,
            warmup_questions: 10,
            warmup_videos: 3,
            gpu_bound: 0,
            rss_bound: 0,
            seed: 1,
        }
    }

    #[test]
    fn the_verdict_names_growth_and_different_answers() {
        let gpu = |bytes: u64| Reading { gpu: MemoryTally { pool_bytes: bytes, ..Default::default() }, ..Default::default() };
        let answer = |t: u32| SoakAnswer { what: format!("question {t}"), question: "q".into(), tokens: vec![t], text: String::new() };
        let b = SoakBench { warmup_questions: 1, warmup_videos: 1, gpu_bound: 100, ..bench() };
        let run = SoakRun {
            bench: b,
            // Growth during the warm-up is allowed; 150 bytes after it is not.
            questions: Phase { name: "questions", warmup: 1, readings: vec![gpu(0), gpu(5000), gpu(5050), gpu(5150)] },
            videos: Phase { name: "videos", warmup: 1, readings: vec![gpu(0), gpu(7000), gpu(7100)] },
            answers: vec![answer(1), answer(2)],
        };
        let v = verdict(&run, &[vec![1], vec![3]]);
        assert_eq!(v.equal_answers, 1);
        assert_eq!(v.failures.len(), 2, "{:?}", v.failures);
        assert!(v.failures[0].starts_with("questions: the GPU tally grew by 150 bytes after the warm-up, more than the bound 100 bytes"), "{:?}", v.failures);
        assert!(v.failures[1].starts_with("question 2: the long session answered [2], a fresh session [3]"), "{:?}", v.failures);
        assert!(verdict(&run, &[vec![1]]).failures.iter().any(|f| f.contains("1 fresh answers for 2")));
    }

    #[test]
    fn video_shapes_cycle_and_warmups_cover_them() {
        let b = bench();
        let shapes: std::collections::BTreeSet<_> = (0..50).map(|j| b.video_shape(j, 28)).collect();
        assert_eq!(shapes.len(), SHAPES);
        assert_eq!(b.video_shape(3, 28), b.video_shape(0, 28));
        assert_eq!(SoakBench::default_warmups(200, 50), (10, SHAPES));
        assert_eq!(SoakBench::default_warmups(2, 1), (1, 1));
        if cfg!(target_os = "linux") {
            assert!(rss_bytes() > 0, "resident memory is readable on Linux");
        }
    }
}
