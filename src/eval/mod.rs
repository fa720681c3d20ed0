//! Evaluation: VSI-Bench, ScanQA and SQA3D scored as the Spatial-MLLM reference evaluators score them
//! (spec section 8; the rules and their sources are listed in each module).
//!
//! - [`score`]: answer normalisation, multiple-choice exact match, number parsing, Mean Relative Accuracy, the
//!   ScanQA exact match and SQA3D's EM-1 / EM-R1.

pub mod score;

pub use score::QuestionType;
