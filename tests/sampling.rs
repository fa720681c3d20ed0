//! Space-aware frame sampling: the selection on a synthetic scene of known geometry, and the whole
//! pipeline (VGGT aggregator → point head, or depth head + cameras → selection) on the tiny VGGT
//! fixture against the same selection run on the upstream code's own outputs.

mod common;

use spatial_mllm_web::gpu::Gpu;
use spatial_mllm_web::model::spatial::sampling::{select_frames, unproject, PointMaps};
use spatial_mllm_web::model::vggt::{pose_encoding_to_extri_intri, Frames, GeometrySource, Vggt};
use spatial_mllm_web::testing::compare;
use spatial_mllm_web::testing::reference_file::ReferenceFile;

#[test]
fn selection_on_a_room_of_known_geometry() {
    println!("{}", spatial_mllm_web::testing::sampling_cases::check_room_selection().unwrap());
}

fn fixture() -> (Gpu, Vggt, ReferenceFile) {
    let gpu = common::gpu(false);
    let (params, pkg) = common::load_package(&gpu, "vggt", 128 << 20);
    let vggt = pollster::block_on(Vggt::new(&gpu, &pkg.manifest.model_kind, &pkg.manifest.config, &params)).unwrap();
    (gpu, vggt, common::reference("vggt"))
}

#[test]
fn vggt_geometry_and_selection_match_upstream_outputs() {
    let (gpu, vggt, r) = fixture();
    let img = r.shape("images").unwrap();
    let (s, h, w) = (img[0], img[2], img[3]);
    let px = r.f32s("images").unwrap();
    let frames = Frames { pixels: &px, count: s, height: h, width: w };

    // The released sampler's geometry: the point head (with the cameras for display).
    let pc = pollster::block_on(vggt.point_cloud_with(&gpu, &frames, GeometrySource::PointHead, true)).unwrap();
    let cams = pose_encoding_to_extri_intri(&r.f32s("pose_enc").unwrap(), h, w).unwrap();
    let flat = |c: &[spatial_mllm_web::model::vggt::Camera]| -> Vec<f64> { c.iter().flat_map(|c| c.extrinsic.iter().flatten().copied()).collect() };
    let ours: Vec<f32> = flat(pc.cameras.as_ref().expect("cameras asked for")).iter().map(|&v| v as f32).collect();
    println!("{}", compare("camera extrinsics", &ours, &flat(&cams), 1e-3).unwrap());
    assert!(pollster::block_on(vggt.point_cloud(&gpu, &frames, GeometrySource::PointHead)).unwrap().cameras.is_none());
    println!("{}", compare("world points", &pc.points, &r.f64s("world_points").unwrap(), 1e-3).unwrap());
    println!("{}", compare("world points conf", &pc.conf, &r.f64s("world_points_conf").unwrap(), 1e-3).unwrap());
    let (wp, wc) = (r.f32s("world_points").unwrap(), r.f32s("world_points_conf").unwrap());
    for k in 1..=s {
        let ours = select_frames(&PointMaps { points: &pc.points, conf: &pc.conf, frames: s }, k).unwrap();
        let theirs = select_frames(&PointMaps { points: &wp, conf: &wc, frames: s }, k).unwrap();
        assert_eq!((&ours.indices, ours.by_coverage), (&theirs.indices, theirs.by_coverage), "point head, K = {k}");
        assert!((ours.voxel - theirs.voxel).abs() <= 1e-5 * theirs.voxel, "voxel {} vs {}", ours.voxel, theirs.voxel);
    }

    // The paper's: depth unprojected with the camera head's cameras.
    let pc = pollster::block_on(vggt.point_cloud(&gpu, &frames, GeometrySource::DepthAndCameras)).unwrap();
    let cams = pose_encoding_to_extri_intri(&r.f32s("pose_enc").unwrap(), h, w).unwrap();
    let want = unproject(&r.f32s("depth").unwrap(), &cams, h, w).unwrap();
    let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    println!("{}", compare("unprojected depth", &pc.points, &want, 1e-3).unwrap());
    println!("{}", compare("depth conf", &pc.conf, &r.f64s("depth_conf").unwrap(), 1e-3).unwrap());
}

/// The whole sampler on a decoded video (a moving gradient, 40 frames of 60 x 80): candidates,
/// VGGT's crop preprocessing, the point head, the selection, mapped back to frame numbers. With
/// the tiny random-weight VGGT the choice itself is arbitrary; the contract is checked: K sorted
/// distinct frame numbers among the candidates, the same on a second run, clear errors.
#[test]
fn sampler_picks_frames_of_a_decoded_video() {
    use spatial_mllm_web::model::spatial::frame_sampler::{candidate_indices, sample_frames, sample_scene, SamplerConfig};
    use spatial_mllm_web::preprocess::RgbFrames;
    let (gpu, vggt, _) = fixture();
    let (n, h, w) = (40, 60, 80);
    let mut data = Vec::with_capacity(n * h * w * 3);
    for f in 0..n {
        for y in 0..h {
            for x in 0..w {
                data.extend([((x * 3 + f * 5) % 256) as u8, ((y * 4 + f) % 256) as u8, ((x + y + 7 * f) % 256) as u8]);
            }
        }
    }
    let video = RgbFrames::new(n, h, w, data).unwrap();
    let cfg = SamplerConfig { candidates: 7, width: 56, k: 3, ..SamplerConfig::full() };
    let idx = candidate_indices(n, &cfg).unwrap();
    assert_eq!(idx, vec![0, 6, 13, 19, 26, 32, 39]);
    let cands = video.select(&idx).unwrap();
    let picked = pollster::block_on(sample_frames(&gpu, &vggt, &cands, &idx, &cfg)).unwrap();
    println!("picked {picked:?} of {idx:?}");
    assert_eq!(picked.len(), 3);
    assert!(picked.windows(2).all(|p| p[0] < p[1]) && picked.iter().all(|p| idx.contains(p)));
    assert_eq!(pollster::block_on(sample_frames(&gpu, &vggt, &cands, &idx, &cfg)).unwrap(), picked);
    // What the web app gets: the same picks (as candidate positions), the valid points with
    // their colours and frames, and every candidate's camera.
    let mut stages = Vec::new();
    let scene = pollster::block_on(sample_scene(&gpu, &vggt, &cands, &cfg, 500, &mut |s| stages.push(s.to_string()))).unwrap();
    assert_eq!(stages, ["sampling: VGGT", "sampling: selection"]);
    assert_eq!(scene.selection.indices.iter().map(|&i| idx[i]).collect::<Vec<_>>(), picked);
    let n = scene.point_frame.len();
    assert!(n == 500 && scene.points.len() == 3 * n && scene.colors.len() == 3 * n, "{n} points");
    assert!(scene.point_frame.windows(2).all(|f| f[0] <= f[1]) && scene.point_frame.iter().all(|&f| (f as usize) < idx.len()));
    assert!(scene.points.iter().chain(&scene.cameras).all(|v| v.is_finite()));
    assert_eq!(scene.cameras.len(), 12 * idx.len());
    let zero = SamplerConfig { k: 0, ..cfg };
    assert!(pollster::block_on(sample_scene(&gpu, &vggt, &cands, &zero, 500, &mut |_| {})).is_err());
    // The paper's geometry source runs too.
    let paper = SamplerConfig { source: GeometrySource::DepthAndCameras, ..cfg };
    assert_eq!(pollster::block_on(sample_frames(&gpu, &vggt, &cands, &idx, &paper)).unwrap().len(), 3);
    assert!(candidate_indices(0, &cfg).is_err());
    assert!(pollster::block_on(sample_frames(&gpu, &vggt, &cands, &idx[..3], &cfg)).is_err());
}
