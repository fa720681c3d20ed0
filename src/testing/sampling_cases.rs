//! Space-aware selection on a synthetic room of known geometry, shared by the native tests
//! (`tests/sampling.rs`) and the browser harness (the Spatial-MLLM suites).

use super::util::CaseOutcome;
use crate::model::spatial::sampling::{select_frames, PointMaps};

/// A 16 x 12 grid of points spanning a rectangle of the box [0,4] x [0,2] x [0,3] edge to edge.
fn surface(points: &mut Vec<f32>, at: impl Fn(f32, f32) -> [f32; 3]) {
    for j in 0..12 {
        for i in 0..16 {
            points.extend(at(i as f32 / 15.0, j as f32 / 11.0));
        }
    }
}

/// Ten candidate frames of a room (extents 4, 2, 3: voxel edge 2 / 20 = 0.1): three views of the
/// whole floor, the wall x = 0, two views of the wall x = 4, half the floor at twice the density,
/// two views of the ceiling, and a frame whose points all have a low confidence.
fn room() -> (Vec<f32>, Vec<f32>) {
    let mut p = Vec::new();
    let floor = |u: f32, v: f32| [4.0 * u, 2.0 * v, 0.0];
    for _ in 0..3 {
        surface(&mut p, floor);
    }
    surface(&mut p, |u, v| [0.0, 2.0 * u, 3.0 * v]);
    for _ in 0..2 {
        surface(&mut p, |u, v| [4.0, 2.0 * u, 3.0 * v]);
    }
    surface(&mut p, |u, v| [2.0 * u, 2.0 * v, 0.0]);
    for _ in 0..2 {
        surface(&mut p, |u, v| [4.0 * u, 2.0 * v, 3.0]);
    }
    surface(&mut p, |u, v| [4.0 * u, 2.0 * v, 1.5]); // would add coverage, but its confidence is low
    let mut conf = vec![2.0f32; 9 * 192];
    conf.extend(std::iter::repeat_n(1.5, 192));
    (p, conf)
}

/// The selection on the room: every expectation follows from the geometry (see `room`).
pub fn check_room_selection() -> CaseOutcome {
    let (points, conf) = room();
    let maps = PointMaps { points: &points, conf: &conf, frames: 10 };
    // Every distinct surface gives 192 new voxels; ties go to the lowest index: floor 0, wall 3,
    // wall 4, ceiling 7. Duplicates (1, 2, 5, 8) add nothing, and frame 9 is below the median.
    let s = select_frames(&maps, 4).map_err(|e| e.to_string())?;
    expect(s.indices == [0, 3, 4, 7], format!("K = 4 picked {:?}, expected [0, 3, 4, 7]", s.indices))?;
    expect((s.voxel - 0.1).abs() < 1e-6, format!("voxel edge {}, expected 0.1", s.voxel))?;
    // Asking for more: the half floor (6) still adds voxels, then coverage stops and uniform
    // picks over the remaining frames (1, 2, 5, 8, 9) top it up.
    let s8 = select_frames(&maps, 8).map_err(|e| e.to_string())?;
    expect(s8.by_coverage == 5, format!("K = 8: {} picked by coverage, expected 5", s8.by_coverage))?;
    expect(s8.indices == [0, 1, 3, 4, 5, 6, 7, 9], format!("K = 8 picked {:?}, expected [0, 1, 3, 4, 5, 6, 7, 9]", s8.indices))?;
    // More than there are: all of them.
    let all = select_frames(&maps, 16).map_err(|e| e.to_string())?;
    expect(all.indices == (0..10).collect::<Vec<_>>(), format!("K = 16 picked {:?}", all.indices))?;
    // Bad input is an error, not a panic.
    expect(select_frames(&PointMaps { points: &points[..30], conf: &conf, frames: 10 }, 4).is_err(), "short point maps were accepted".into())?;
    Ok(format!("K = 4: {:?}, K = 8: {:?} ({} by coverage), voxel {}", s.indices, s8.indices, s8.by_coverage, s.voxel))
}

fn expect(ok: bool, msg: String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg)
    }
}
