//! Video decoding with the system's `ffmpeg` / `ffprobe` (Debian: `apt install ffmpeg`): probe
//! the frame count and size, decode only the frames asked for as RGB24.

use std::path::Path;
use std::process::Command;

use crate::preprocess::RgbFrames;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{0} was not found: install ffmpeg (Debian/Ubuntu: apt install ffmpeg; macOS: brew install ffmpeg)")]
    NoFfmpeg(&'static str),
    #[error("{path}: {msg}")]
    Unreadable { path: String, msg: String },
    #[error("{path}: the video has no frames")]
    NoFrames { path: String },
    #[error("{path}: frame {index} asked for, the video has {total}")]
    OutOfRange { path: String, index: usize, total: usize },
}

/// What ffprobe says of the first video stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VideoInfo {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub fps: f64,
}

fn run(tool: &'static str, args: &[&str], path: &Path) -> Result<Vec<u8>, VideoError> {
    let out = Command::new(tool).args(args).output().map_err(|_| VideoError::NoFfmpeg(tool))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("").to_string();
        return Err(VideoError::Unreadable { path: path.display().to_string(), msg: format!("{tool} failed: {msg} (an unsupported codec or a damaged file?)") });
    }
    Ok(out.stdout)
}

/// Size, frame count (decoded packets: exact for any container) and frame rate.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    let p = path.to_str().ok_or_else(|| VideoError::Unreadable { path: path.display().to_string(), msg: "not a UTF-8 path".into() })?;
    let out = run(
        "ffprobe",
        &["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=width,height,nb_read_packets,r_frame_rate", "-of", "csv=p=0", p],
        path,
    )?;
    let text = String::from_utf8_lossy(&out);
    let bad = || VideoError::Unreadable { path: p.into(), msg: format!("no video stream (ffprobe said {:?})", text.trim()) };
    let f: Vec<&str> = text.trim().split(',').collect();
    let [w, h, rate, n] = f[..] else { return Err(bad()) };
    let fps = match rate.split_once('/') {
        Some((a, b)) => a.parse::<f64>().unwrap_or(0.0) / b.parse::<f64>().unwrap_or(1.0),
        None => rate.parse().unwrap_or(0.0),
    };
    let info = VideoInfo { width: w.parse().map_err(|_| bad())?, height: h.parse().map_err(|_| bad())?, frames: n.parse().unwrap_or(0), fps };
    if info.frames == 0 {
        return Err(VideoError::NoFrames { path: p.into() });
    }
    Ok(info)
}

/// Decode the frames at `indices` (ascending or not; each returned in the given order).
pub fn decode_frames(path: &Path, info: &VideoInfo, indices: &[usize]) -> Result<RgbFrames, VideoError> {
    let p = path.to_str().unwrap_or_default();
    if let Some(&i) = indices.iter().find(|&&i| i >= info.frames) {
        return Err(VideoError::OutOfRange { path: p.into(), index: i, total: info.frames });
    }
    let mut wanted: Vec<usize> = indices.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let select = wanted.iter().map(|i| format!("eq(n\\,{i})")).collect::<Vec<_>>().join("+");
    let filter = format!("select='{select}'");
    let out = run("ffmpeg", &["-v", "error", "-i", p, "-vf", &filter, "-vsync", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], path)?;
    let frame = info.width * info.height * 3;
    if out.len() != wanted.len() * frame {
        return Err(VideoError::Unreadable {
            path: p.into(),
            msg: format!("ffmpeg decoded {} bytes, {} frames of {}x{} need {}", out.len(), wanted.len(), info.width, info.height, wanted.len() * frame),
        });
    }
    let mut data = Vec::with_capacity(indices.len() * frame);
    for i in indices {
        let k = wanted.binary_search(i).expect("deduplicated from indices");
        data.extend_from_slice(&out[k * frame..(k + 1) * frame]);
    }
    RgbFrames::new(indices.len(), info.height, info.width, data).map_err(|e| VideoError::Unreadable { path: p.into(), msg: e.to_string() })
}

/// Decode image files (PNG, JPEG, ...) with ffmpeg, all resized to the first one's size is NOT
/// done: they must share one size (a folder of extracted frames does).
pub fn decode_images(paths: &[std::path::PathBuf]) -> Result<RgbFrames, VideoError> {
    let mut frames: Option<(usize, usize)> = None;
    let mut data = Vec::new();
    for path in paths {
        let info = probe(path)?;
        if let Some((h, w)) = frames {
            if (h, w) != (info.height, info.width) {
                return Err(VideoError::Unreadable {
                    path: path.display().to_string(),
                    msg: format!("{}x{} px, the first image is {w}x{h}: all frames must have one size", info.width, info.height),
                });
            }
        }
        frames = Some((info.height, info.width));
        data.extend(decode_frames(path, &info, &[0])?.data);
    }
    let (h, w) = frames.ok_or_else(|| VideoError::NoFrames { path: "(no images given)".into() })?;
    RgbFrames::new(paths.len(), h, w, data).map_err(|e| VideoError::Unreadable { path: "images".into(), msg: e.to_string() })
}
