//! Flash attention on matrix units (`flash_coop`: cooperative matrices, f16 path) against the f64
//! reference, on the shapes the models use: Qwen's causal grouped-query heads of 128 (a prefill
//! and one continuing a cache), VGGT's full heads of 64 (over 3 001 keys), the ViT's windows of
//! heads of 80; K and V read from one fused buffer at strides. `Kernel::Auto` takes it wherever the
//! device runs the GEMM on matrix units. An adapter without them says why, and the test fails
//! only with `REQUIRE_COOP=1` (tools/coop-lavapipe.sh); there `Kernel::MatrixUnits` must refuse.

mod common;

use spatial_mllm_web::gpu::{DType, Gpu, Recorder};
use spatial_mllm_web::kernels::attention::{attention_with, Attention, HeadsView, Kernel};
use spatial_mllm_web::testing::reference as cpu;
use spatial_mllm_web::testing::{compare, Rng};

struct Shape {
    n_q: usize,
    n_kv: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    causal: bool,
    q_pos0: usize,
    segments: Option<&'static [u32]>,
}

const WINDOWS: [u32; 7] = [0, 64, 112, 128, 140, 203, 267];

fn shapes() -> Vec<Shape> {
    let s = |n_q, n_kv, hq, hkv, d, causal, q_pos0, segments| Shape { n_q, n_kv, hq, hkv, d, causal, q_pos0, segments };
    vec![
        s(37, 37, 16, 2, 128, true, 0, None),
        s(8, 45, 16, 2, 128, true, 37, None),
        s(300, 300, 3, 3, 64, false, 0, None),
        s(33, 3001, 2, 2, 64, false, 0, None),
        s(267, 267, 2, 2, 80, false, 0, Some(&WINDOWS)),
    ]
}

fn stored(g: &Gpu, v: Vec<f32>) -> Vec<f32> {
    match g.act {
        DType::F16 => v.into_iter().map(|x| half::f16::from_f32(x).to_f32()).collect(),
        _ => v,
    }
}

fn run(g: &Gpu, r: &mut Rng, s: &Shape, kernel: Kernel) -> spatial_mllm_web::gpu::Result<(Vec<f32>, Vec<f64>)> {
    let &Shape { n_q, n_kv, hq, hkv, d, causal, q_pos0, segments } = s;
    let q = stored(g, r.normals(n_q * hq * d, 1.0));
    let k = stored(g, r.normals(n_kv * hkv * d, 1.0));
    let v = stored(g, r.normals(n_kv * hkv * d, 1.0));
    // K and V in one buffer after 3 leading values, 5 of padding per token.
    let (lead, stride) = (3, 3 + 2 * hkv * d + 5);
    let mut kv = vec![0f32; n_kv * stride];
    for t in 0..n_kv {
        kv[t * stride + lead..t * stride + lead + hkv * d].copy_from_slice(&k[t * hkv * d..(t + 1) * hkv * d]);
        kv[t * stride + lead + hkv * d..t * stride + lead + 2 * hkv * d].copy_from_slice(&v[t * hkv * d..(t + 1) * hkv * d]);
    }
    let qt = g.upload_act(&q, &[n_q, hq * d])?;
    let kvt = g.upload_act(&kv, &[n_kv, stride])?;
    let seg = segments.map(|s| g.upload_u32(s, &[s.len()])).transpose()?;
    let scale = 1.0 / (d as f64).sqrt();
    let a = Attention {
        q: HeadsView::dense(&qt, hq),
        k: HeadsView { t: &kvt, tokens: n_kv, heads: hkv, stride, off: lead },
        v: HeadsView { t: &kvt, tokens: n_kv, heads: hkv, stride, off: lead + hkv * d },
        head_dim: d,
        causal,
        q_pos0,
        segments: seg.as_ref(),
        scale: scale as f32,
    };
    let mut rec = Recorder::new(g);
    let o = attention_with(&mut rec, &a, kernel)?;
    rec.submit()?;
    let got = pollster::block_on(g.read_f32(&o))?;
    let seg_of = |i: usize| segments.map(|s| s.iter().rposition(|&b| b as usize <= i).unwrap()).unwrap_or(0);
    let want = cpu::attention(&q, &k, &v, n_q, n_kv, hq, hkv, d, scale, |i, j| (!causal || j <= q_pos0 + i) && seg_of(i) == seg_of(j));
    Ok((got, want))
}

#[test]
fn flash_attention_on_matrix_units() {
    let g = common::gpu(true);
    let seed = std::env::var("KERNEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let mut r = Rng::new(seed ^ 0xA77);
    let Some(tile) = g.coop_tile() else {
        let why = g.coop_unavailable().unwrap();
        assert_ne!(std::env::var("REQUIRE_COOP").as_deref(), Ok("1"), "{}: no attention on matrix units: {why}", g.info.name);
        let refused = run(&g, &mut r, &shapes()[0], Kernel::MatrixUnits).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("no attention on matrix units here"), "Kernel::MatrixUnits without matrix units: {refused:?}");
        println!("{}: attention on matrix units NOT tested: {why}; the plain kernels run", g.info.name);
        return;
    };
    println!("{}: matrix units, subgroups of {}", g.info.name, tile.coop);
    for s in shapes() {
        for kernel in [Kernel::MatrixUnits, Kernel::Auto] {
            let (got, want) = run(&g, &mut r, &s, kernel).unwrap();
            let what = format!(
                "{kernel:?} q{} kv{} heads {}/{} d{} causal {} pos0 {} windows {}",
                s.n_q,
                s.n_kv,
                s.hq,
                s.hkv,
                s.d,
                s.causal,
                s.q_pos0,
                s.segments.is_some()
            );
            println!("{}", compare(&what, &got, &want, 4e-3).unwrap_or_else(|e| panic!("{e} (seed {seed})")));
        }
    }
    g.check().unwrap();
}
