//! The evaluation prompts, as the reference builds the user turn's text.
//!
//! VSI-Bench v1.1 (`src/evaluation/vsibench/eval_vsibench.py` L36–40, `build_user_message` L75–91):
//! - multiple choice: `"{question}\nOptions:\n{opt1}\n…\n{optN}\nAnswer with the option's letter from the given
//!   choices directly."` (the options carry their letters, "A. front-left");
//! - numerical: `"{question}\nPlease answer the question using a single word or phrase."`.
//!
//! VSI-Bench v1.0 (branch v1.0 `evaluate/eval_vsibench.py` L19–25, `prepare_single_message_eval` L34–41 and
//! L61–66): multiple choice `"{problem}Options:\n{opt1}\n…\n{optN}\n"` (no newline before "Options:", one after
//! every option) followed by `" Please answer with the option's letter from the given choices (e.g., A, B, etc.)
//! within the <answer> </answer> tags."`; numerical `"{problem}"` followed by `" Please answer with the only
//! numerical value (e.g., 42, 3.14, etc.) within the <answer> </answer> tags."`.
//!
//! In both the message is one user turn holding the video first, then this text (eval_vsibench.py L110–113), put
//! through the Qwen2.5-VL chat template with the generation prompt: [`user_turn`].
//!
//! ScanQA / SQA3D (`src/evaluation/scanqa/eval_scanqa.py` L58–76): the annotation's first conversation turn,
//! verbatim, after the video. Those annotation files come from Video-3D-LLM's preprocessing, whose turns are
//! `"<image> {question} Answer the question simply."` (ScanQA) and `"<image> {situation} {question} Answer the
//! question using a single word or phrase."` (SQA3D); [`scanqa_prompt`] and [`sqa3d_prompt`] build that text
//! without the `<image> ` placeholder, for questions that do not come with a turn.

use super::Sample;
use crate::model::qwen::chat::{Content, Message};

pub const V11_MCA_POST_PROMPT: &str = "Answer with the option's letter from the given choices directly.";
pub const V11_NA_POST_PROMPT: &str = "Please answer the question using a single word or phrase.";
pub const V10_MC_POST_PROMPT: &str = " Please answer with the option's letter from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags.";
pub const V10_NUMERICAL_POST_PROMPT: &str = " Please answer with the only numerical value (e.g., 42, 3.14, etc.) within the <answer> </answer> tags.";
/// v1.0's template for free-form ("verbal") answers; no VSI-Bench question uses it.
pub const V10_VERBAL_POST_PROMPT: &str = " Please answer the question simply within the <answer> </answer> tags";

pub const SCANQA_POST_PROMPT: &str = "Answer the question simply.";
pub const SQA3D_POST_PROMPT: &str = "Answer the question using a single word or phrase.";

/// Which release's VSI-Bench prompts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PromptStyle {
    /// Spatial-MLLM v1.1 (master): short post prompts, the reply is the answer itself.
    #[default]
    V1_1,
    /// Spatial-MLLM v1.0: the answer is asked for inside `<answer> </answer>` tags.
    V1_0,
}

/// The text of the user turn for a VSI-Bench question. Options are used for multiple-choice types only; a
/// multiple-choice sample needs at least one ([`Sample::check`]).
pub fn vsi_prompt_text(question: &str, options: &[String], multiple_choice: bool, style: PromptStyle) -> String {
    match (style, multiple_choice) {
        (PromptStyle::V1_1, true) => format!("{question}\nOptions:\n{}\n{V11_MCA_POST_PROMPT}", options.join("\n")),
        (PromptStyle::V1_1, false) => format!("{question}\n{V11_NA_POST_PROMPT}"),
        (PromptStyle::V1_0, true) => {
            let mut s = format!("{question}Options:\n");
            for o in options {
                s += o;
                s += "\n";
            }
            s + V10_MC_POST_PROMPT
        }
        (PromptStyle::V1_0, false) => format!("{question}{V10_NUMERICAL_POST_PROMPT}"),
    }
}

/// The text of the user turn for a sample.
pub fn vsi_prompt(sample: &Sample, style: PromptStyle) -> String {
    vsi_prompt_text(&sample.question, &sample.options, sample.question_type.is_multiple_choice(), style)
}

/// The conversation the reference renders: one user turn, the video then the text (no system turn given; the
/// chat template adds the default one).
pub fn user_turn(text: &str) -> Vec<Message> {
    vec![Message::user(vec![Content::Video, Content::Text(text.to_string())])]
}

/// ScanQA's question turn without the `<image> ` placeholder: `"{question} Answer the question simply."`.
pub fn scanqa_prompt(question: &str) -> String {
    format!("{question} {SCANQA_POST_PROMPT}")
}

/// SQA3D's question turn without the `<image> ` placeholder:
/// `"{situation} {question} Answer the question using a single word or phrase."`.
pub fn sqa3d_prompt(situation: &str, question: &str) -> String {
    format!("{situation} {question} {SQA3D_POST_PROMPT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v11_and_v10_layouts() {
        let opts = vec!["A. left".to_string(), "B. right".to_string()];
        assert_eq!(
            vsi_prompt_text("Where?", &opts, true, PromptStyle::V1_1),
            "Where?\nOptions:\nA. left\nB. right\nAnswer with the option's letter from the given choices directly."
        );
        assert_eq!(
            vsi_prompt_text("How many chair(s) are in this room?", &[], false, PromptStyle::V1_1),
            "How many chair(s) are in this room?\nPlease answer the question using a single word or phrase."
        );
        assert_eq!(
            vsi_prompt_text("Where?", &opts, true, PromptStyle::V1_0),
            "Where?Options:\nA. left\nB. right\n Please answer with the option's letter from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags."
        );
        assert_eq!(
            vsi_prompt_text("How big?", &opts, false, PromptStyle::V1_0),
            "How big? Please answer with the only numerical value (e.g., 42, 3.14, etc.) within the <answer> </answer> tags."
        );
    }
}
