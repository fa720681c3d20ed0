//! VGGT's pose encoding to camera matrices (upstream `utils/pose_enc.py`
//! `pose_encoding_to_extri_intri` and `utils/rotation.py` `quat_to_mat`), on the CPU in f64 from
//! the camera head's read-back output. An encoding is [T (3), quaternion (4, x y z w: scalar
//! last), fov_h, fov_w]. The extrinsic [R | T] maps world to camera (OpenCV axes: x right, y down,
//! z forward; the first frame is the world); the intrinsic has fx = (W/2) / tan(fov_w/2),
//! fy = (H/2) / tan(fov_h/2) and the principal point at the image centre (W/2, H/2).

use super::camera::POSE_DIM;
use crate::model::{MResult, ModelError};

/// One frame's camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// [R | T], camera from world.
    pub extrinsic: [[f64; 4]; 3],
    /// [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels.
    pub intrinsic: [[f64; 3]; 3],
}

/// The rotation of a quaternion [x, y, z, w]. It need not be unit length: the matrix is that of
/// the normalised quaternion (as upstream, which scales by 2 / |q|²; a zero quaternion gives NaN
/// there and here).
pub fn quat_to_mat(q: [f64; 4]) -> [[f64; 3]; 3] {
    let [x, y, z, w] = q;
    let s = 2.0 / (x * x + y * y + z * z + w * w);
    [
        [1.0 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1.0 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1.0 - s * (x * x + y * y)],
    ]
}

/// The camera of one encoding for an image of `height` x `width` pixels (the size the aggregator
/// saw). A field of view of 0 (ReLU's floor) gives an infinite focal length, as upstream.
pub fn camera_from_pose(pose: &[f64; POSE_DIM], height: usize, width: usize) -> Camera {
    let r = quat_to_mat([pose[3], pose[4], pose[5], pose[6]]);
    let mut extrinsic = [[0.0; 4]; 3];
    for i in 0..3 {
        extrinsic[i][..3].copy_from_slice(&r[i]);
        extrinsic[i][3] = pose[i];
    }
    let (h, w) = (height as f64, width as f64);
    let fy = (h / 2.0) / (pose[7] / 2.0).tan();
    let fx = (w / 2.0) / (pose[8] / 2.0).tan();
    Camera { extrinsic, intrinsic: [[fx, 0.0, w / 2.0], [0.0, fy, h / 2.0], [0.0, 0.0, 1.0]] }
}

/// Every frame's camera from the head's output [frames, 9] (row-major), for images of
/// `height` x `width` pixels.
pub fn pose_encoding_to_extri_intri(pose_enc: &[f32], height: usize, width: usize) -> MResult<Vec<Camera>> {
    if pose_enc.len() % POSE_DIM != 0 {
        return Err(ModelError::Input(format!("{} pose values are not rows of {POSE_DIM}", pose_enc.len())));
    }
    if height == 0 || width == 0 {
        return Err(ModelError::Input(format!("an image of {height} x {width} pixels")));
    }
    Ok(pose_enc
        .chunks_exact(POSE_DIM)
        .map(|p| {
            let p: [f64; POSE_DIM] = std::array::from_fn(|i| p[i] as f64);
            camera_from_pose(&p, height, width)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_1_SQRT_2, FRAC_PI_2};

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-12, "{what}[{i}]: {x} vs {y} ({a:?} vs {b:?})");
        }
    }

    fn flat<const N: usize>(m: &[[f64; N]; 3]) -> Vec<f64> {
        m.iter().flatten().copied().collect()
    }

    /// Rotations worked out by hand from the axis-angle form.
    #[test]
    fn quaternions_give_the_hand_computed_rotations() {
        let cases: [([f64; 4], [[f64; 3]; 3]); 5] = [
            // Identity.
            ([0.0, 0.0, 0.0, 1.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
            // 90 degrees about z: x -> y, y -> -x.
            ([0.0, 0.0, FRAC_1_SQRT_2, FRAC_1_SQRT_2], [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
            // The same, not normalised (scaled by 3) and with the opposite sign.
            ([0.0, 0.0, -3.0 * FRAC_1_SQRT_2, -3.0 * FRAC_1_SQRT_2], [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
            // 180 degrees about x.
            ([1.0, 0.0, 0.0, 0.0], [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]),
            // 120 degrees about (1, 1, 1): x -> y -> z -> x.
            ([0.5, 0.5, 0.5, 0.5], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        ];
        for (q, want) in cases {
            close(&flat(&quat_to_mat(q)), &flat(&want), &format!("R({q:?})"));
        }
        // 90 degrees about y: z -> x, x -> -z.
        let s = FRAC_1_SQRT_2;
        close(&flat(&quat_to_mat([0.0, s, 0.0, s])), &flat(&[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]), "R_y");
    }

    #[test]
    fn encodings_give_extrinsics_and_intrinsics() {
        // fov 90 degrees: tan(45) = 1, so the focal length is half the image size.
        let cot = std::f64::consts::FRAC_PI_4.tan().recip(); // 1 up to rounding
        let p = [1.0, -2.0, 3.5, 0.0, 0.0, FRAC_1_SQRT_2, FRAC_1_SQRT_2, FRAC_PI_2, FRAC_PI_2];
        let c = camera_from_pose(&p, 480, 640);
        close(&flat(&c.extrinsic), &[0.0, -1.0, 0.0, 1.0, 1.0, 0.0, 0.0, -2.0, 0.0, 0.0, 1.0, 3.5], "extrinsic");
        close(&flat(&c.intrinsic), &[320.0 * cot, 0.0, 320.0, 0.0, 240.0 * cot, 240.0, 0.0, 0.0, 1.0], "intrinsic");
        // fov_h = 2 atan(1/2): fy = (H/2) / (1/2) = H; fov_w = 2 atan(2): fx = (W/2) / 2 = W/4.
        let p = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0 * 0.5f64.atan(), 2.0 * 2f64.atan()];
        let c = camera_from_pose(&p, 42, 56);
        close(&flat(&c.intrinsic), &[14.0, 0.0, 28.0, 0.0, 42.0, 21.0, 0.0, 0.0, 1.0], "intrinsic");
        close(&flat(&c.extrinsic), &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], "extrinsic");
    }

    /// Values from upstream's own `pose_encoding_to_extri_intri` (utils/pose_enc.py and
    /// rotation.py run on f64 numpy arrays through a stand-in for the few torch calls they make;
    /// upstream builds the intrinsics in f32, hence the looser bound there): the fixture's
    /// reference pose of frame 0 (field of view 0 and above pi included) and a generic one.
    #[test]
    fn matches_upstream_functions() {
        type Case = ([f64; 9], (usize, usize), [f64; 12], [f64; 9]);
        let cases: [Case; 2] = [
            (
                [
                    2.123645544052124,
                    0.9391680955886841,
                    0.6169752478599548,
                    -0.9422057271003723,
                    3.5114188194274902,
                    1.3726857900619507,
                    5.017735481262207,
                    0.0,
                    3.479408025741577,
                ],
                (42, 56),
                [
                    0.29421962068305707,
                    -0.5062719241447263,
                    0.8106315769990179,
                    2.123645544052124,
                    0.1777218242515643,
                    0.8623617101892831,
                    0.47407513537846624,
                    0.9391680955886841,
                    -0.9390685640515363,
                    0.004584716153866545,
                    0.3436993051898336,
                    0.6169752478599548,
                ],
                [-4.774910926818848, 0.0, 28.0, 0.0, f64::INFINITY, 21.0, 0.0, 0.0, 1.0],
            ),
            (
                [0.3, -1.2, 2.0, 0.1, -0.4, 0.25, 0.8, 0.9, 1.3],
                (480, 640),
                [
                    0.4899713467048711,
                    -0.5501432664756446,
                    -0.6762177650429798,
                    0.3,
                    0.36676217765042973,
                    0.833810888252149,
                    -0.4126074498567335,
                    -1.2,
                    0.7908309455587392,
                    -0.04584527220630369,
                    0.6103151862464183,
                    2.0,
                ],
                [420.9394226074219, 0.0, 320.0, 0.0, 496.8377685546875, 240.0, 0.0, 0.0, 1.0],
            ),
        ];
        for (p, (h, w), ext, int) in cases {
            let c = camera_from_pose(&p, h, w);
            close(&flat(&c.extrinsic), &ext, "extrinsic");
            for (i, (&got, &want)) in flat(&c.intrinsic).iter().zip(&int).enumerate() {
                let ok = if want.is_finite() { (got - want).abs() <= 1e-6 * want.abs().max(1.0) } else { got == want };
                assert!(ok, "intrinsic[{i}]: {got} vs upstream {want}");
            }
        }
    }

    #[test]
    fn frames_are_rows_of_nine() {
        let mut enc = vec![0f32; 18];
        enc[6] = 1.0;
        enc[15] = 1.0;
        enc[7] = 1.0;
        enc[8] = 1.0;
        let cams = pose_encoding_to_extri_intri(&enc, 10, 20).unwrap();
        assert_eq!(cams.len(), 2);
        let f = 5.0 / 0.5f64.tan();
        assert!((cams[0].intrinsic[1][1] - f).abs() < 1e-12 && (cams[0].intrinsic[0][0] - 2.0 * f).abs() < 1e-12);
        assert!(cams[1].intrinsic[0][0].is_infinite(), "fov 0 gives an infinite focal length, as upstream");
        assert!(pose_encoding_to_extri_intri(&enc[..17], 10, 20).is_err());
        assert!(pose_encoding_to_extri_intri(&enc, 0, 20).is_err());
    }
}
