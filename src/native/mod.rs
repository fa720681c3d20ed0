//! Native-only pieces of the command line: video decoding through the system's ffmpeg, and the
//! question-answering pipeline over a video file, a folder of frames or images.

pub mod answer;
pub mod hub;
pub mod video;
