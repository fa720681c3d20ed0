//! Scorers, following the reference evaluators rule for rule.
//!
//! VSI-Bench (Spatial-MLLM v1.1, `src/evaluation/vsibench/dataset_utils.py`):
//! - [`clean_text`] (L27–41): the content of the last `<answer>…</answer>` if there is one, `\n` and `\r` to
//!   spaces, whitespace runs collapsed to one space, stripped, trailing dots dropped, lowercased.
//! - [`normalize_number`] (L44–50): commas removed, then Python's `float()`; anything `float()` refuses is
//!   unparsable.
//! - [`mean_relative_accuracy`] (L53–70): MRA over θ ∈ {0.50, 0.55, …, 0.95} with `|ŷ−y| / (|y|+1e-8) < 1−θ`,
//!   computed in float32 the way torch computes it on the CPU (see the function).
//! - [`vsi_reward`] (L73–85): multiple choice = exact match of the stripped cleaned strings (no option-letter
//!   extraction: "A. front-left" does not match "A"); numerical = MRA, 0 when either side is unparsable.
//!
//! ScanQA (`src/evaluation/scanqa/score_scanqa.py` L38, with `eval_scanqa.py` L161 stripping the reply):
//! [`scanqa_em`] = the stripped reply is, character for character, one of the reference answers.
//!
//! SQA3D: Spatial-MLLM's repository has no SQA3D scorer. Its `score_scanqa.py` is a trimmed copy of
//! Video-3D-LLM's evaluation script, whose SQA3D branch (itself from LEO, embodied-generalist
//! `data/data_utils.py` `clean_answer`, `evaluator/scanqa_eval.py` `answer_match`) defines the two numbers in
//! the paper's Table 2: EM-1 = exact match of the cleaned reply and cleaned answer ([`sqa3d_clean_answer`]),
//! EM-R1 = refined match: also counted when one of the two, with all whitespace removed, contains the other
//! ([`answer_match`]). Implemented here from that definition.

/// The multiple-choice question types (dataset_utils.py L12–19).
pub const MCA_QUESTION_TYPES: [&str; 6] =
    ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard", "object_rel_distance", "route_planning", "obj_appearance_order"];

/// The numerical-answer question types (dataset_utils.py L20–25).
pub const NA_QUESTION_TYPES: [&str; 4] = ["object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation"];

/// The three relative-direction levels, averaged into one task for the macro average (dataset_utils.py L6–10).
pub const REL_DIRECTION_TYPES: [&str; 3] = ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"];

/// A VSI-Bench question type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuestionType {
    ObjectCounting,
    ObjectAbsDistance,
    ObjectSizeEstimation,
    RoomSizeEstimation,
    ObjectRelDistance,
    ObjectRelDirectionEasy,
    ObjectRelDirectionMedium,
    ObjectRelDirectionHard,
    RoutePlanning,
    ObjAppearanceOrder,
}

impl QuestionType {
    /// All ten, in the column order of the paper's Table 1.
    pub const ALL: [QuestionType; 10] = [
        QuestionType::ObjectCounting,
        QuestionType::ObjectAbsDistance,
        QuestionType::ObjectSizeEstimation,
        QuestionType::RoomSizeEstimation,
        QuestionType::ObjectRelDistance,
        QuestionType::ObjectRelDirectionEasy,
        QuestionType::ObjectRelDirectionMedium,
        QuestionType::ObjectRelDirectionHard,
        QuestionType::RoutePlanning,
        QuestionType::ObjAppearanceOrder,
    ];

    /// The name used in the annotations and results.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionType::ObjectCounting => "object_counting",
            QuestionType::ObjectAbsDistance => "object_abs_distance",
            QuestionType::ObjectSizeEstimation => "object_size_estimation",
            QuestionType::RoomSizeEstimation => "room_size_estimation",
            QuestionType::ObjectRelDistance => "object_rel_distance",
            QuestionType::ObjectRelDirectionEasy => "object_rel_direction_easy",
            QuestionType::ObjectRelDirectionMedium => "object_rel_direction_medium",
            QuestionType::ObjectRelDirectionHard => "object_rel_direction_hard",
            QuestionType::RoutePlanning => "route_planning",
            QuestionType::ObjAppearanceOrder => "obj_appearance_order",
        }
    }

    pub fn parse(s: &str) -> Option<QuestionType> {
        QuestionType::ALL.into_iter().find(|q| q.as_str() == s)
    }

    /// Multiple choice (scored by exact match, "Acc"); otherwise numerical (scored by MRA).
    pub fn is_multiple_choice(self) -> bool {
        MCA_QUESTION_TYPES.contains(&self.as_str())
    }

    pub fn is_rel_direction(self) -> bool {
        REL_DIRECTION_TYPES.contains(&self.as_str())
    }
}

impl std::fmt::Display for QuestionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Python's `str.isspace()`, which is also what `\s`, `str.strip()` and `str.split()` use: Unicode White_Space
/// plus the four information separators U+001C..U+001F.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// The content of the last `<answer>…</answer>` (non-greedy, across lines), or the whole text when there is
/// none: `re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)[-1]` (dataset_utils.py L27–30). The content is
/// not stripped; an empty block gives "".
pub fn extract_answer(text: &str) -> &str {
    const OPEN: &str = "<answer>";
    const CLOSE: &str = "</answer>";
    let mut last = None;
    let mut pos = 0;
    // Leftmost start, nearest close, then on from after the close: the regex's non-overlapping matches. When an
    // opening tag has no closing tag after it, no later opening tag has one either.
    while let Some(a) = text[pos..].find(OPEN).map(|i| pos + i + OPEN.len()) {
        match text[a..].find(CLOSE) {
            Some(b) => {
                last = Some(&text[a..a + b]);
                pos = a + b + CLOSE.len();
            }
            None => break,
        }
    }
    last.unwrap_or(text)
}

/// `clean_text` (v1.1 dataset_utils.py L33–41): last `<answer>` content, `\n`/`\r` → space, every run of
/// whitespace → one space, strip, drop trailing `.`s, lowercase. Note the order: a space before the final dot
/// survives (`"a ."` → `"a "`); [`vsi_reward`] strips again before comparing.
pub fn clean_text(text: &str) -> String {
    let cleaned = extract_answer(text);
    let mut collapsed = String::with_capacity(cleaned.len());
    let mut in_space = false;
    for c in cleaned.chars() {
        // "\n" and "\r" become spaces first; they are whitespace to the collapse anyway.
        if py_isspace(c) {
            if !in_space {
                collapsed.push(' ');
            }
            in_space = true;
        } else {
            collapsed.push(c);
            in_space = false;
        }
    }
    py_strip(&collapsed).trim_end_matches('.').to_lowercase()
}

/// The code points of the ten-digit runs that Python's `float()` reads as decimal digits (the Unicode 14 `Nd`
/// characters, Python 3.11's `unicodedata.decimal`): each entry is the code point of that run's zero.
const UNICODE_DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946,
    0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

fn unicode_decimal(c: char) -> Option<u32> {
    let u = c as u32;
    UNICODE_DIGIT_ZEROS.iter().find(|&&z| u >= z && u < z + 10).map(|&z| u - z)
}

/// Python's `float(s)` for a `str`: surrounding whitespace ignored; Unicode decimal digits read as digits;
/// underscores allowed only between two digits (PEP 515); then `[sign] (digits[.digits] | .digits)
/// [e[sign]digits]` or `[sign] inf | infinity | nan`, case-insensitive. Overflow gives ±inf as in Python.
pub fn py_float(s: &str) -> Option<f64> {
    let mut ascii = String::with_capacity(s.len());
    for c in py_strip(s).chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else if let Some(d) = unicode_decimal(c) {
            ascii.push(char::from(b'0' + d as u8));
        } else {
            return None;
        }
    }
    let b = ascii.as_bytes();
    if b.contains(&b'_') {
        for (i, &c) in b.iter().enumerate() {
            if c == b'_' && !(i > 0 && b[i - 1].is_ascii_digit() && i + 1 < b.len() && b[i + 1].is_ascii_digit()) {
                return None;
            }
        }
        ascii.retain(|c| c != '_');
    }
    // Rust's grammar for f64 is Python's (same optional sign, digits, point, exponent, inf/infinity/nan in any
    // case); neither accepts whitespace inside, hex, or a lone point.
    ascii.parse::<f64>().ok()
}

/// `normalize_number` (dataset_utils.py L44–50): commas removed, then `float()`; `None` when it fails.
pub fn normalize_number(num_str: &str) -> Option<f64> {
    py_float(&num_str.replace(',', ""))
}

/// The ten MRA thresholds as torch builds them: `torch.arange(0.5, 0.95 + 0.05/2, 0.05, dtype=float32)`. On the
/// CPU torch computes `start + i·step` in double (its accumulate type for float) and rounds each to float32:
/// 0.5, 0.55000001, 0.60000002, 0.64999998, 0.69999999, 0.75, 0.80000001, 0.85000002, 0.89999998, 0.94999999.
/// The count is `ceil((0.975 − 0.5) / 0.05)` = 10.
pub fn mra_thresholds() -> [f32; 10] {
    let (start, end, interval) = (0.5f64, 0.95f64, 0.05f64);
    let n = ((end + interval / 2.0 - start) / interval).ceil() as usize;
    debug_assert_eq!(n, 10);
    std::array::from_fn(|i| (start + interval * i as f64) as f32)
}

/// How many of the ten thresholds the prediction passes (0..=10), in the float32 arithmetic of
/// dataset_utils.py L53–70: both numbers rounded to float32, `rel = |ŷ − y| / (|y| + 1e-8)` in float32, and
/// `rel < 1 − θ` (the subtraction exact in float32). So a relative error that is "exactly" 5 % passes θ = 0.95
/// or not depending on its float32 rounding: 105 vs 100 gives rel = 0.050000001 < 0.050000012 (passes), 0.95 vs
/// 1 gives rel = 0.050000012, equal to 1 − θ (fails). NaN and infinities pass none.
pub fn mra_passes(pred: f64, target: f64) -> u32 {
    let p = pred as f32;
    let t = target as f32;
    let rel = (p - t).abs() / (t.abs() + 1e-8f32);
    mra_thresholds().iter().filter(|&&th| rel < 1.0f32 - th).count() as u32
}

/// Mean Relative Accuracy (dataset_utils.py L53–70). The mean is a float32 (`conditions.float().mean()`), so
/// the value is the float32 nearest k/10 widened to f64, e.g. 0.699999988079071 for 7/10, exactly what the
/// reference stores as the reward.
pub fn mean_relative_accuracy(pred: f64, target: f64) -> f64 {
    (mra_passes(pred, target) as f32 / 10.0f32) as f64
}

/// `vsi_reward` (dataset_utils.py L73–85) on already cleaned strings ([`clean_text`]).
pub fn vsi_reward(clean_gt: &str, clean_pred: &str, question_type: QuestionType) -> f64 {
    if question_type.is_multiple_choice() {
        return if py_strip(clean_pred) == py_strip(clean_gt) { 1.0 } else { 0.0 };
    }
    match (normalize_number(clean_gt), normalize_number(clean_pred)) {
        (Some(gt), Some(pred)) => mean_relative_accuracy(pred, gt),
        _ => 0.0,
    }
}

/// One VSI-Bench sample scored from the raw model output and raw ground truth, as `postprocess_batch`
/// (eval_vsibench.py L186–208) does it.
#[derive(Clone, Debug, PartialEq)]
pub struct VsiScore {
    pub cleaned_prediction: String,
    pub cleaned_ground_truth: String,
    pub reward: f64,
}

impl VsiScore {
    /// A reward of exactly 1 (the reference's `correct`).
    pub fn correct(&self) -> bool {
        self.reward == 1.0
    }
}

pub fn score_vsi(model_output: &str, ground_truth: &str, question_type: QuestionType) -> VsiScore {
    let cleaned_prediction = clean_text(model_output);
    let cleaned_ground_truth = clean_text(ground_truth);
    let reward = vsi_reward(&cleaned_ground_truth, &cleaned_prediction, question_type);
    VsiScore { cleaned_prediction, cleaned_ground_truth, reward }
}

// ---------------------------------------------------------------------------------------------------------
// ScanQA and SQA3D

/// ScanQA exact match: the reply, stripped (eval_scanqa.py L161), is one of the reference answers verbatim
/// (score_scanqa.py L38; case and punctuation count).
pub fn scanqa_em(model_output: &str, answers: &[String]) -> bool {
    let pred = py_strip(model_output);
    answers.iter().any(|a| a == pred)
}

/// Python `\w` on the characters that can reach the word rules of [`sqa3d_clean_answer`] (only ASCII letters and
/// digits survive its character filter; `_` is removed by it too).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Replace each whole-word occurrence of `word` (bounded by `\b` on both sides) with `to`, left to right.
fn replace_word(s: &str, word: &str, to: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let before_ok = s[..i].chars().next_back().is_none_or(|c| !is_word(c));
        if before_ok && rest.starts_with(word) {
            let after = rest[word.len()..].chars().next();
            if after.is_none_or(|c| !is_word(c)) {
                out.push_str(to);
                i += word.len();
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `\bo'[ ]+clock\b` → `o'clock`.
fn join_oclock(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let before_ok = s[..i].chars().next_back().is_none_or(|c| !is_word(c));
        if before_ok && rest.starts_with("o'") {
            let spaces = rest[2..].bytes().take_while(|&b| b == b' ').count();
            let tail = &rest[2 + spaces..];
            if spaces > 0 && tail.starts_with("clock") && tail[5..].chars().next().is_none_or(|c| !is_word(c)) {
                out.push_str("o'clock");
                i += 2 + spaces + 5;
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `\b([a-zA-Z]+)([0-9])\b` → the letters: a word of letters ending in one digit loses the digit ("mat2").
fn drop_trailing_digit(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let b = word.as_bytes();
        let n = b.len();
        if n >= 2 && b[n - 1].is_ascii_digit() && b[..n - 1].iter().all(u8::is_ascii_alphabetic) {
            out.push_str(&word[..n - 1]);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `\b<article>\b ([a-zA-Z]+)` → the letters: the article and its one following space dropped before a word
/// that starts with a letter. Non-overlapping, left to right, as `re.sub` scans: "a an apple" → "an apple".
fn drop_article(s: &str, article: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let before_ok = s[..i].chars().next_back().is_none_or(|c| !is_word(c));
        if before_ok && rest.starts_with(article) && rest[article.len()..].starts_with(' ') {
            let tail = &rest[article.len() + 1..];
            let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            if letters > 0 {
                out.push_str(&tail[..letters]);
                i += article.len() + 1 + letters;
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The SQA3D answer normalisation (LEO `clean_answer`, as used by Video-3D-LLM's SQA3D scorer), step by step:
/// lowercase; trailing spaces removed (also those just before a final `\n`, as Python's `$` matches there),
/// leading spaces removed; runs of spaces → one; every character other than ASCII letters, digits, `,`, `'`,
/// whitespace, `-`, `:` removed (so `.`, `?`, accents go; the later `ç`/`’` rules can no longer fire but are kept);
/// a fixed list of typo fixes (letf/let → left, tehre → there, rigth/rght → right, behine → behind, tv → TV,
/// chai → chair, wasing → washing, waslked → walked, oclock / o' clock → o'clock); the numbers 0–20 and 23 and
/// "none" to words; a letters-then-one-digit word loses the digit; "a", "an", "the" before a word dropped;
/// backwards → backward. All word rules match whole words only.
pub fn sqa3d_clean_answer(text: &str) -> String {
    let mut s = text.to_lowercase();
    // '[ ]+$': `$` also matches just before a final newline.
    if let Some(body) = s.strip_suffix('\n') {
        s = format!("{}\n", body.trim_end_matches(' '));
    }
    s = s.trim_end_matches(' ').to_string();
    s = s.trim_start_matches(' ').to_string();
    // ' {2,}' → ' '
    let mut t = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c == ' ' && t.ends_with(' ')) {
            t.push(c);
        }
    }
    // '\.[ ]{2,}' → '. ' can no longer match after the collapse above.
    s = t.chars().filter(|&c| c.is_ascii_alphanumeric() || matches!(c, ',' | '\'' | '-' | ':') || py_isspace(c)).collect();
    s = s.replace('ç', "c").replace('’', "'");
    for (from, to) in [
        ("letf", "left"),
        ("let", "left"),
        ("tehre", "there"),
        ("rigth", "right"),
        ("rght", "right"),
        ("behine", "behind"),
        ("tv", "TV"),
        ("chai", "chair"),
        ("wasing", "washing"),
        ("waslked", "walked"),
        ("oclock", "o'clock"),
    ] {
        s = replace_word(&s, from, to);
    }
    s = join_oclock(&s);
    for (from, to) in [
        ("0", "zero"),
        ("none", "zero"),
        ("1", "one"),
        ("2", "two"),
        ("3", "three"),
        ("4", "four"),
        ("5", "five"),
        ("6", "six"),
        ("7", "seven"),
        ("8", "eight"),
        ("9", "nine"),
        ("10", "ten"),
        ("11", "eleven"),
        ("12", "twelve"),
        ("13", "thirteen"),
        ("14", "fourteen"),
        ("15", "fifteen"),
        ("16", "sixteen"),
        ("17", "seventeen"),
        ("18", "eighteen"),
        ("19", "nineteen"),
        ("20", "twenty"),
        ("23", "twenty-three"),
    ] {
        s = replace_word(&s, from, to);
    }
    s = drop_trailing_digit(&s);
    for article in ["a", "an", "the"] {
        s = drop_article(&s, article);
    }
    replace_word(&s, "backwards", "backward")
}

/// Python's `''.join(s.split())`: every whitespace character removed.
fn squeeze(s: &str) -> String {
    s.chars().filter(|&c| !py_isspace(c)).collect()
}

/// `answer_match(pred, gts)` → (EM, refined EM): (1, 1) when the prediction is one of the answers; else (0, 1)
/// when for some answer one of the two, with whitespace removed, is a substring of the other; else (0, 0). As in
/// the reference, an empty prediction is a substring of every answer and so counts for the refined match.
pub fn answer_match(pred: &str, gts: &[String]) -> (bool, bool) {
    if gts.iter().any(|g| g == pred) {
        return (true, true);
    }
    let p = squeeze(pred);
    let refined = gts.iter().any(|g| {
        let g = squeeze(g);
        g.contains(&p) || p.contains(&g)
    });
    (false, refined)
}

/// SQA3D EM-1 and EM-R1 for one sample: both sides through [`sqa3d_clean_answer`], then [`answer_match`].
pub fn sqa3d_em(model_output: &str, answers: &[String]) -> (bool, bool) {
    let pred = sqa3d_clean_answer(model_output);
    let gts: Vec<String> = answers.iter().map(|a| sqa3d_clean_answer(a)).collect();
    answer_match(&pred, &gts)
}

/// The SQA3D question type by the question's first word (Video-3D-LLM `process_sqa3d.py`
/// `get_sqa_question_type`): what, is, how, can, which, others.
pub fn sqa3d_question_type(question: &str) -> &'static str {
    let q = question.trim_start_matches(py_isspace).to_lowercase();
    for t in ["what", "is", "how", "can", "which"] {
        if q.starts_with(t) {
            return t;
        }
    }
    "others"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_torch_float32_arange() {
        // The float32 values widened to f64, as numpy prints them for np.float32(0.5 + 0.05 * i).
        let expect = [
            0.5,
            0.550000011920929,
            0.6000000238418579,
            0.6499999761581421,
            0.699999988079071,
            0.75,
            0.800000011920929,
            0.8500000238418579,
            0.8999999761581421,
            0.949999988079071,
        ];
        assert_eq!(mra_thresholds().map(f64::from), expect);
        let one_minus = mra_thresholds().map(|t| f64::from(1.0f32 - t));
        assert_eq!(one_minus[9], 0.050000011920928955);
        assert_eq!(one_minus[8], 0.10000002384185791);
        assert_eq!(one_minus[1], 0.44999998807907104);
    }

    #[test]
    fn python_float_grammar() {
        assert_eq!(py_float(" 1_0 "), Some(10.0));
        assert_eq!(py_float("1e400"), Some(f64::INFINITY));
        assert!(py_float("-NaN").unwrap().is_nan());
        assert_eq!(py_float("+Infinity"), Some(f64::INFINITY));
        assert_eq!(py_float("\u{661}\u{662}"), Some(12.0));
        assert_eq!(py_float("\u{ff13}.5"), Some(3.5));
        assert_eq!(py_float("1."), Some(1.0));
        assert_eq!(py_float(".5"), Some(0.5));
        assert_eq!(py_float("\u{1c}2\u{3000}"), Some(2.0));
        for bad in ["1__0", "_1", "1_", "1_.5", "1._5", "1e_5", "1_e5", ".", "e5", "1e", "0x10", "1 0", "", "3 m", "²"] {
            assert_eq!(py_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn answer_extraction_follows_the_regex() {
        assert_eq!(extract_answer("<answer>a<answer>b</answer>x</answer><answer></answer>"), "");
        assert_eq!(extract_answer("<answer>a<answer>b</answer>x</answer>"), "a<answer>b");
        assert_eq!(extract_answer("x <answer>B</answer> y <answer>\nC </answer>"), "\nC ");
        assert_eq!(extract_answer("<answer>unclosed"), "<answer>unclosed");
    }

    #[test]
    fn sqa3d_word_rules() {
        assert_eq!(drop_article("a a chair", "a"), "a chair");
        assert_eq!(drop_article("a chair2", "a"), "chair2");
        assert_eq!(drop_trailing_digit("mat2 ab12 2b x9"), "mat ab12 2b x");
        assert_eq!(replace_word("let letter let", "let", "left"), "left letter left");
        assert_eq!(join_oclock("o'  clock"), "o'clock");
    }
}
