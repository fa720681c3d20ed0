//! Native-only pieces of the command line: video decoding through the system's ffmpeg, and the
//! question-answering pipeline over a video file, a folder of frames or images; typed errors (`error`);
//! a private runtime directory that keeps the Vulkan loader's Wayland probe quiet (`runtime_dir`);
//! the measured kernel choices remembered per device (`tuning_store`).

pub mod answer;
pub mod error;
pub mod hub;
pub mod runtime_dir;
pub mod tuning_store;
pub mod video;
