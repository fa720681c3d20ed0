//! The kernel cases, as data (llama.cpp's `test-backend-ops` is the model). A case names the
//! launcher it tests and lists its rows: the variables of one problem (shape, format, options).
//! Each row draws its inputs from a seed made of the run's seed, the case and the row (so a row
//! replays on its own), uploads them, records the launcher on outputs poisoned with NaN, reads
//! the outputs back and measures them against an f64 CPU reference (`reference`) with the row's
//! tolerance for the device's precision path. Sizes are multiples of no tile. Every row runs and
//! is reported, past a failure. The same cases give `bench kernels` its rows: a case's perf rows
//! are the launcher at model-like sizes, with the bytes and FLOPs each row moves.
//!
//! Users: the native tests (`tests/kernels.rs`, one test per case and path), the browser harness
//! (`web::run_kernel_suite`, the kernel self-test page) and `bench kernels` (`crate::bench`).

use std::rc::Rc;

use super::reference as cpu;
use super::util::{as_stored, Rng};
use crate::gpu::{DType, Gpu, GpuError, Recorder, Tensor};
use crate::kernels::attention::{attention_with, Attention, HeadsView, Kernel};
use crate::kernels::copy::{copy_words, CopyGrid};
use crate::kernels::conv::{conv2d, conv_transpose2d, ConvEpilogue, ImageView, SeparablePos};
use crate::kernels::elementwise::{elementwise, modulate, relu_columns, Op};
use crate::kernels::embed::{embed, embed_parts};
use crate::kernels::gather::{gather_rows, gather_rows_into, place_cols};
use crate::kernels::head_act::{head_activation, ConfAct, ValueAct};
use crate::kernels::matmul::{linear_with, Activation, Epilogue, Path};
use crate::kernels::norm::{self, Rows};
use crate::kernels::regroup::{regroup, RegroupOrder};
use crate::kernels::resize::bilinear;
use crate::kernels::rope::{inv_freq, rope_inplace, RopeKind, RopeTable};
use crate::kernels::sample::{argmax, repetition_penalty, sample, Sampling};
use crate::weights::{PackedWeight, Weight, WeightFormat};

mod decode;
mod fold;

// ================================================================ the case machinery

/// Problem sizes of the benchmark's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Sizes a CPU adapter (lavapipe) finishes in about a minute.
    Small,
    /// The real model's sizes (Qwen2.5-3B layers, VGGT attention).
    Full,
}

/// A row's largest allowed relative error (max |got - want| / max |want|) on each precision path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    pub f32: f64,
    pub f16: f64,
}

impl Tol {
    /// Exact (copies, permutations, token choices).
    pub const EXACT: Tol = Tol { f32: 0.0, f16: 0.0 };

    /// An activation output: f32 accumulation everywhere; f16 storage rounds each output to 11
    /// significant bits, so the f16 path allows at least 4e-3.
    pub const fn act(f32: f64) -> Tol {
        Tol { f32, f16: if f32 > 4e-3 { f32 } else { 4e-3 } }
    }

    /// The same on both paths (f32 outputs from f32 math).
    pub const fn same(t: f64) -> Tol {
        Tol { f32: t, f16: t }
    }

    /// The tolerance of the path whose activations are `act`.
    pub fn on(&self, act: DType) -> f64 {
        match act {
            DType::F16 => self.f16,
            _ => self.f32,
        }
    }
}

/// What a row's outputs are judged against.
pub enum Expect {
    /// The f64 reference of each output, in order; NaN marks an element that is not compared
    /// (outside the range the kernel writes). Judged by the relative error.
    Values(Vec<Vec<f64>>),
    /// A rule over the outputs read back: the error it measured, or why the row failed.
    Rule(Rule),
}

/// Judges the outputs read back: the error it measured, or why the row failed.
pub type Rule = Box<dyn FnOnce(&[Vec<f32>]) -> Result<f64, String>>;

/// Draws a row's inputs, uploads them, binds the launcher and the reference.
pub type SetupFn = Box<dyn Fn(&Gpu, &mut Rng) -> Result<Setup, String>>;

/// Records the kernel(s) under test and returns the outputs to read back.
pub type Launch = Box<dyn FnMut(&mut Recorder) -> crate::gpu::Result<Vec<Tensor>>>;

/// A row set up on a device: its inputs drawn and uploaded, the launcher, and the reference,
/// computed only when the row is checked (the benchmark never computes it).
pub struct Setup {
    pub launch: Launch,
    pub expect: Box<dyn FnOnce() -> Expect>,
}

impl Setup {
    /// One output against one reference.
    pub fn one(mut launch: impl FnMut(&mut Recorder) -> crate::gpu::Result<Tensor> + 'static, want: impl FnOnce() -> Vec<f64> + 'static) -> Setup {
        Setup { launch: Box::new(move |rec| Ok(vec![launch(rec)?])), expect: Box::new(move || Expect::Values(vec![want()])) }
    }

    /// Outputs judged by a rule.
    pub fn rule(
        launch: impl FnMut(&mut Recorder) -> crate::gpu::Result<Vec<Tensor>> + 'static,
        rule: impl FnOnce(&[Vec<f32>]) -> Result<f64, String> + 'static,
    ) -> Setup {
        Setup { launch: Box::new(launch), expect: Box::new(move || Expect::Rule(Box::new(rule))) }
    }
}

/// One row of a case with its variables bound.
pub struct CaseRow {
    /// The row's variables, as text (shape, format, options).
    pub label: String,
    pub tol: Tol,
    /// Bytes the launcher reads and writes, given the activations' element size.
    pub bytes: Box<dyn Fn(f64) -> f64>,
    /// Floating-point operations of one launch.
    pub flops: f64,
    /// The benchmark repeats this row at most this many times per measurement.
    pub max_reps: usize,
    /// Draw the inputs, upload them, bind the launcher and the reference.
    pub setup: SetupFn,
}

/// A case's definition over its row variables `V`: the test rows, the perf rows, and how a row
/// is labelled, judged, set up and costed.
pub struct Def<V> {
    rows: fn() -> Vec<V>,
    label: fn(&V) -> String,
    tol: fn(&V) -> Tol,
    setup: fn(&Gpu, &mut Rng, &V) -> Result<Setup, String>,
    perf: fn(Scale) -> Vec<V>,
    bytes: fn(&V, f64) -> f64,
    flops: fn(&V) -> f64,
    max_reps: usize,
}

impl<V: 'static> Def<V> {
    pub fn new(rows: fn() -> Vec<V>, label: fn(&V) -> String, tol: fn(&V) -> Tol, setup: fn(&Gpu, &mut Rng, &V) -> Result<Setup, String>) -> Self {
        Def { rows, label, tol, setup, perf: |_| Vec::new(), bytes: |_, _| 0.0, flops: |_| 0.0, max_reps: usize::MAX }
    }

    /// Benchmark rows with their bytes (given the activations' element size) and FLOPs.
    pub fn perf(self, perf: fn(Scale) -> Vec<V>, bytes: fn(&V, f64) -> f64, flops: fn(&V) -> f64) -> Self {
        Def { perf, bytes, flops, ..self }
    }

    pub fn max_reps(self, max_reps: usize) -> Self {
        Def { max_reps, ..self }
    }

    fn bind(&self, v: V) -> CaseRow {
        let v = Rc::new(v);
        let (bytes, setup) = (self.bytes, self.setup);
        let (vb, vs) = (v.clone(), v.clone());
        CaseRow {
            label: (self.label)(&v),
            tol: (self.tol)(&v),
            bytes: Box::new(move |act| bytes(&vb, act)),
            flops: (self.flops)(&v),
            max_reps: self.max_reps,
            setup: Box::new(move |g, r| setup(g, r, &vs)),
        }
    }
}

/// A kernel case: its name, the launcher it tests, its test rows and its benchmark rows.
pub struct KernelCase {
    pub name: &'static str,
    /// The launcher under test (a function of `crate::kernels`).
    pub op: &'static str,
    rows: Box<dyn Fn() -> Vec<CaseRow>>,
    perf: Box<dyn Fn(Scale) -> Vec<CaseRow>>,
}

impl KernelCase {
    /// A case from its definition (the suite's cases are listed in `cases()`).
    pub fn new<V: 'static>(name: &'static str, op: &'static str, def: Def<V>) -> KernelCase {
        let def = Rc::new(def);
        let d2 = def.clone();
        KernelCase {
            name,
            op,
            rows: Box::new(move || (def.rows)().into_iter().map(|v| def.bind(v)).collect()),
            perf: Box::new(move |s| (d2.perf)(s).into_iter().map(|v| d2.bind(v)).collect()),
        }
    }

    /// The test rows.
    pub fn rows(&self) -> Vec<CaseRow> {
        (self.rows)()
    }

    /// The benchmark rows at `scale` (none for a case the benchmark does not time).
    pub fn perf_rows(&self, scale: Scale) -> Vec<CaseRow> {
        (self.perf)(scale)
    }
}

/// The kernel suite, in order: the one list the native tests, the browser harness and
/// `bench kernels` take their cases from.
pub fn cases() -> Vec<KernelCase> {
    use KernelCase as C;
    vec![
        C::new("matmul_f16", "matmul::linear_with", matmul_def(|| matmul_rows(WeightFormat::F16), |s| matmul_perf(WeightFormat::F16, s))),
        C::new("matmul_q8", "matmul::linear_with", matmul_def(|| matmul_rows(WeightFormat::Q8), |s| matmul_perf(WeightFormat::Q8, s))),
        C::new("matmul_q4", "matmul::linear_with", matmul_def(|| matmul_rows(WeightFormat::Q4), |s| matmul_perf(WeightFormat::Q4, s))),
        C::new("decode_qkv_rope", "decode::qkv_rope_kv", decode::qkv_def()),
        C::new("decode_gate_up", "decode::gate_up_swiglu", decode::gate_up_def()),
        C::new("decode_lm_head", "decode::{linear_normed_parts, linear_normed}", decode::lm_head_def()),
        C::new("decode_o_combined", "decode::linear_combined", decode::o_combined_def()),
        C::new("decode_folded_attention", "fold::{qkv_attend, linear_merged}", fold::fold_def()),
        C::new(
            "attention_causal_gqa_d128",
            "attention::attention_with",
            attention_def(attention_causal_rows).perf(attention_causal_perf, attention_bytes, attention_flops),
        ),
        C::new("attention_full_d64", "attention::attention_with", attention_def(attention_full_rows).perf(attention_full_perf, attention_bytes, attention_flops)),
        C::new("attention_varlen_d80", "attention::attention_with", attention_def(attention_varlen_rows)),
        C::new("rms_norm", "norm::rms_norm", rms_norm_def()),
        C::new("layer_norm", "norm::layer_norm", layer_norm_def()),
        C::new("qk_norm_inplace", "norm::head_layer_norm_inplace", qk_norm_def()),
        C::new("rope_variants", "rope::rope_inplace", rope_def()),
        C::new("elementwise", "elementwise::{elementwise, relu_columns}", elementwise_def()),
        C::new("modulate", "elementwise::modulate", modulate_def()),
        C::new("embed", "embed::{embed, embed_parts}", embed_def()),
        C::new("argmax", "sample::argmax", argmax_def()),
        C::new("sample_top_k_top_p", "sample::sample", sample_def()),
        C::new("repetition_penalty", "sample::repetition_penalty", penalty_def()),
        C::new("gather_rows_place_cols", "gather::{gather_rows, gather_rows_into, place_cols}", gather_def()),
        C::new("regroup_connector", "regroup::regroup", regroup_def()),
        C::new("weight_slice_rows", "Weight::slice_rows + matmul::linear_with", slice_rows_def()),
        C::new("conv2d", "conv::conv2d", conv_def(conv2d_rows)),
        C::new("conv_transpose2d", "conv::conv_transpose2d", conv_def(conv_transpose_rows)),
        C::new("bilinear", "resize::bilinear", bilinear_def()),
        C::new("head_activation", "head_act::head_activation", head_act_def()),
        C::new("copy_words", "copy::copy_words", copy_def()),
    ]
}

/// The seed of row `row` of case `name` in a run seeded with `seed` (row 0: the case's seed).
pub fn row_seed(seed: u64, name: &str, row: usize) -> u64 {
    let h = name.bytes().fold(seed ^ 0x9E37_79B9_7F4A_7C15, |a, b| a.rotate_left(7) ^ b as u64);
    h ^ (row as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17)
}

/// One row's result.
#[derive(Clone, Debug)]
pub struct RowResult {
    pub label: String,
    /// The measured error (none when the row could not be measured).
    pub err: Option<f64>,
    pub tol: f64,
    pub ok: bool,
    /// Why the row failed (empty when it passed).
    pub detail: String,
}

/// A case's run: every row, in order.
#[derive(Clone, Debug)]
pub struct CaseReport {
    pub name: &'static str,
    pub seed: u64,
    pub rows: Vec<RowResult>,
}

impl CaseReport {
    /// Every row ran and passed (a case without rows fails).
    pub fn ok(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.ok)
    }

    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok).count()
    }

    /// One line: the rows passed and the largest error, or the failed rows and why.
    pub fn summary(&self) -> String {
        let n = self.rows.len();
        if self.ok() {
            let worst = self.rows.iter().filter_map(|r| r.err).fold(0f64, f64::max);
            return format!("{n} rows ok, max rel err {worst:.1e}");
        }
        let failed: Vec<String> = self.rows.iter().filter(|r| !r.ok).map(|r| format!("{}: {}", r.label, r.detail)).collect();
        format!("{} of {n} rows failed (seed {}): {}", failed.len(), self.seed, failed.join("; "))
    }

    /// The rows as a table: variables, max error, tolerance, ok.
    pub fn table(&self) -> String {
        let w = self.rows.iter().map(|r| r.label.len()).max().unwrap_or(0).max(5);
        let mut s = format!("  {:<w$} {:>9} {:>9}  ok\n", "row", "max err", "tol");
        for r in &self.rows {
            let err = r.err.map(|e| format!("{e:.2e}")).unwrap_or_else(|| "-".into());
            s += &format!("  {:<w$} {err:>9} {:>9.1e}  {}{}\n", r.label, r.tol, if r.ok { "ok" } else { "FAIL " }, r.detail);
        }
        s
    }
}

/// Run every row of `case` (past failures) with seeds derived from `seed`.
pub async fn run_case(gpu: &Gpu, case: &KernelCase, seed: u64) -> CaseReport {
    let mut rows = Vec::new();
    for (i, row) in case.rows().into_iter().enumerate() {
        let tol = row.tol.on(gpu.act);
        let mut rng = Rng::new(row_seed(seed, case.name, i));
        let r = match check_row(gpu, &row, &mut rng).await {
            Ok(m) if m.err <= tol => RowResult { label: row.label, err: Some(m.err), tol, ok: true, detail: String::new() },
            Ok(m) => RowResult { label: row.label, err: Some(m.err), tol, ok: false, detail: format!("rel err {:.2e} > {tol:.1e} {}", m.err, m.at) },
            Err(e) => RowResult { label: row.label, err: None, tol, ok: false, detail: e },
        };
        rows.push(r);
    }
    CaseReport { name: case.name, seed, rows }
}

async fn check_row(gpu: &Gpu, row: &CaseRow, rng: &mut Rng) -> Result<Measured, String> {
    let mut s = (row.setup)(gpu, rng)?;
    let mut rec = Recorder::new(gpu);
    let outs = (s.launch)(&mut rec).map_err(e2s)?;
    rec.submit().map_err(e2s)?;
    let mut got = Vec::with_capacity(outs.len());
    for t in &outs {
        got.push(match t.dtype {
            DType::U32 | DType::I32 => gpu.read_u32(t).await.map_err(e2s)?.into_iter().map(|v| v as f32).collect(),
            _ => gpu.read_f32(t).await.map_err(e2s)?,
        });
    }
    match (s.expect)() {
        Expect::Values(want) => {
            if want.len() != got.len() {
                return Err(format!("{} outputs, {} references", got.len(), want.len()));
            }
            let mut worst = Measured { err: 0.0, at: String::new() };
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                let m = measure(g, w).map_err(|e| if want.len() > 1 { format!("output {j}: {e}") } else { e })?;
                if m.err >= worst.err {
                    worst = if want.len() > 1 { Measured { err: m.err, at: format!("in output {j} {}", m.at) } } else { m };
                }
            }
            Ok(worst)
        }
        Expect::Rule(rule) => rule(&got).map(|err| Measured { err, at: String::new() }),
    }
}

/// A measured relative error and where its worst element is.
pub struct Measured {
    pub err: f64,
    pub at: String,
}

/// max |got - want| / max |want| over the elements whose reference is not NaN; a non-finite
/// output there (a poisoned, unwritten element, or an overflow) is an error.
pub fn measure(got: &[f32], want: &[f64]) -> Result<Measured, String> {
    if got.len() != want.len() {
        return Err(format!("{} values, expected {}", got.len(), want.len()));
    }
    let scale = want.iter().filter(|w| !w.is_nan()).fold(0f64, |a, &w| a.max(w.abs())).max(1e-30);
    let mut worst = (0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            continue;
        }
        if !g.is_finite() {
            let bad = got.iter().zip(want).filter(|(g, w)| !w.is_nan() && !g.is_finite()).count();
            return Err(format!(
                "element {i} is {g} (expected {w:.6}): unwritten or overflowed ({bad} of {} compared values non-finite)",
                want.iter().filter(|w| !w.is_nan()).count()
            ));
        }
        let e = (g as f64 - w).abs() / scale;
        if e > worst.0 {
            worst = (e, i);
        }
    }
    let i = worst.1;
    Ok(Measured { err: worst.0, at: if want.is_empty() { String::new() } else { format!("at {i} (got {}, want {:.6})", got[i], want[i]) } })
}

fn e2s(e: GpuError) -> String {
    e.to_string()
}

/// Upload activations / f32 values, errors as text.
fn act(g: &Gpu, v: &[f32], shape: &[usize]) -> Result<Tensor, String> {
    g.upload_act(v, shape).map_err(e2s)
}
fn f32s(g: &Gpu, v: &[f32], shape: &[usize]) -> Result<Tensor, String> {
    g.upload_f32(v, shape).map_err(e2s)
}
fn u32s(g: &Gpu, v: &[u32]) -> Result<Tensor, String> {
    g.upload_u32(v, &[v.len()]).map_err(e2s)
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ================================================================ matmul

#[derive(Debug)]
struct Mm {
    fmt: WeightFormat,
    m: usize,
    n: usize,
    k: usize,
    path: Path,
    /// 0: none, 1: bias + GELU, 2: bias + SiLU × gate, 3: + residual.
    epi: usize,
}

/// Each size with two of the four epilogues.
fn matmul_rows(fmt: WeightFormat) -> Vec<Mm> {
    let sizes = [
        (37, 75, 83, Path::Gemm),
        (130, 129, 300, Path::Gemm),
        (67, 19, 1176, Path::Gemm),
        (1, 300, 517, Path::Gemv),
        (3, 71, 45, Path::Gemv),
        (1, 77, 1060, Path::Gemv),
        (2, 1031, 2048, Path::Auto),
    ];
    let mut rows = Vec::new();
    for (si, &(m, n, k, path)) in sizes.iter().enumerate() {
        for epi in [si % 4, (si + 2) % 4] {
            rows.push(Mm { fmt, m, n, k, path, epi });
        }
    }
    rows
}

/// A tiled GEMM (prefill, encoders) and a one-row GEMV (a decode step's matrix); for q4 and q8
/// also a GEMV with K not a multiple of 4 (they read X as vec4s block by block, the general loop
/// otherwise).
fn matmul_perf(fmt: WeightFormat, s: Scale) -> Vec<Mm> {
    let full = s == Scale::Full;
    let (m, n, k) = if full { (2048, 2048, 2048) } else { (256, 512, 512) };
    let (vn, vk) = if full { (11008, 2048) } else { (2048, 1024) };
    let mut rows = vec![Mm { fmt, m, n, k, path: Path::Gemm, epi: 0 }, Mm { fmt, m: 1, n: vn, k: vk, path: Path::Gemv, epi: 0 }];
    if matches!(fmt, WeightFormat::Q4 | WeightFormat::Q8) {
        rows.push(Mm { fmt, m: 1, n: vn, k: vk - 2, path: Path::Gemv, epi: 0 });
    }
    rows
}

fn matmul_def(rows: fn() -> Vec<Mm>, perf: fn(Scale) -> Vec<Mm>) -> Def<Mm> {
    Def::new(rows, |v| format!("{}x{}x{} {:?} epi{}", v.m, v.n, v.k, v.path, v.epi), |_| Tol::act(1e-4), matmul_setup).perf(
        perf,
        |v, a| (v.n * v.k) as f64 * v.fmt.bits_per_weight() / 8.0 + (v.m * v.k + v.m * v.n) as f64 * a,
        |v| 2.0 * (v.m * v.n * v.k) as f64,
    )
}

fn matmul_setup(g: &Gpu, r: &mut Rng, v: &Mm) -> Result<Setup, String> {
    let &Mm { fmt, m, n, k, path, epi } = v;
    let x = as_stored(g, &r.normals(m * k, 1.0));
    let w = r.normals(n * k, 0.05);
    let packed = PackedWeight::pack(fmt, &w, n, k);
    let bias = r.normals(n, 0.1);
    let aux = as_stored(g, &r.normals(m * n, 1.0));
    let xt = act(g, &x, &[m, k])?;
    let wt = Weight::upload(g, &packed, "w").map_err(e2s)?;
    let bt = f32s(g, &bias, &[n])?;
    let at = act(g, &aux, &[m, n])?;
    Ok(Setup::one(
        move |rec| {
            let e = match epi {
                0 => Epilogue::none(),
                1 => Epilogue::bias(Some(&bt)).with_act(Activation::Gelu),
                2 => Epilogue::bias(Some(&bt)).with_act(Activation::Silu).with_mul(&at),
                _ => Epilogue::none().with_add(&at),
            };
            linear_with(rec, &xt, &wt, e, path)
        },
        move || {
            let mut want = cpu::matmul(&x, &packed.unpack(), m, n, k);
            for (i, v) in want.iter_mut().enumerate() {
                let j = i % n;
                *v = match epi {
                    0 => *v,
                    1 => cpu::gelu(*v + bias[j] as f64),
                    2 => cpu::silu(*v + bias[j] as f64) * aux[i] as f64,
                    _ => *v + aux[i] as f64,
                };
            }
            want
        },
    ))
}

// ================================================================ attention

#[derive(Debug)]
struct Att {
    n_q: usize,
    n_kv: usize,
    hq: usize,
    hkv: usize,
    d: usize,
    causal: bool,
    q_pos0: usize,
    /// Window starts (varlen).
    segments: Option<&'static [u32]>,
    kernel: Kernel,
}

fn attention_def(rows: fn() -> Vec<Att>) -> Def<Att> {
    Def::new(
        rows,
        |a| match (a.segments, a.causal) {
            (Some(_), _) => format!("varlen {:?}", a.kernel),
            (None, true) => format!("causal q{} kv{} pos0 {} {:?}", a.n_q, a.n_kv, a.q_pos0, a.kernel),
            (None, false) => format!("full q{} kv{} {:?}", a.n_q, a.n_kv, a.kernel),
        },
        |_| Tol::act(2e-4),
        attention_setup,
    )
}

/// Q, K and V read, the output written.
fn attention_bytes(a: &Att, act: f64) -> f64 {
    (2 * a.n_q * a.hq * a.d + 2 * a.n_kv * a.hkv * a.d) as f64 * act
}
/// Over the (query, key) pairs the mask lets through: a causal prefill sees about half.
fn attention_flops(a: &Att) -> f64 {
    let pairs = if a.causal { (0..a.n_q).map(|i| (a.q_pos0 + i + 1).min(a.n_kv)).sum() } else { a.n_q * a.n_kv };
    4.0 * (pairs * a.hq * a.d) as f64
}

/// Prefill, prefill continuing a cache, decode steps; Qwen2.5's 16 query / 2 kv heads of 128.
fn attention_causal_rows() -> Vec<Att> {
    [
        (37, 37, 0, Kernel::Tile),
        (70, 70, 0, Kernel::Tile),
        (8, 45, 37, Kernel::Tile),
        (37, 37, 0, Kernel::Blocked),
        (130, 130, 0, Kernel::Blocked),
        (8, 45, 37, Kernel::Blocked),
        (130, 130, 0, Kernel::BlockedMinStorage),
        (1, 300, 299, Kernel::Rows),
        (3, 130, 127, Kernel::Auto),
        (37, 37, 0, Kernel::Rows),
        // Decode over a long cache: keys cut into ranges and merged (20 ranges; 2 queries).
        (1, 5003, 5002, Kernel::Rows),
        (2, 2999, 2997, Kernel::Auto),
    ]
    .into_iter()
    .map(|(n_q, n_kv, q_pos0, kernel)| Att { n_q, n_kv, hq: 16, hkv: 2, d: 128, causal: true, q_pos0, segments: None, kernel })
    .collect()
}

/// Qwen decode over a KV cache, and a prefill of a video's prompt with both plain kernels and the
/// device's choice.
fn attention_causal_perf(s: Scale) -> Vec<Att> {
    let (kv, n) = if s == Scale::Full { (4096, 3000) } else { (1024, 512) };
    let decode = Att { n_q: 1, n_kv: kv, hq: 16, hkv: 2, d: 128, causal: true, q_pos0: kv - 1, segments: None, kernel: Kernel::Rows };
    let prefill = [Kernel::Tile, Kernel::Blocked, Kernel::Auto].map(|kernel| Att { n_q: n, n_kv: n, q_pos0: 0, kernel, ..decode });
    std::iter::once(decode).chain(prefill).collect()
}

fn attention_full_rows() -> Vec<Att> {
    [(300, 3, Kernel::Tile), (9, 1, Kernel::Tile), (1029, 1, Kernel::Tile), (64, 2, Kernel::Tile), (2, 3, Kernel::Auto)]
        .into_iter()
        .chain([(300, 3, Kernel::Blocked), (9, 1, Kernel::Blocked), (1029, 1, Kernel::Blocked), (64, 2, Kernel::Blocked)])
        .chain([(300, 3, Kernel::BlockedMinStorage), (64, 2, Kernel::BlockedMinStorage)])
        .map(|(n, h, kernel)| {
            // 64 queries over 30 011 keys: the length of VGGT's global attention, in bounded memory.
            let n_kv = match n {
                2 => 301,
                9 => 480,
                64 => 30_011,
                _ => n,
            };
            Att { n_q: n, n_kv, hq: h, hkv: h, d: 64, causal: false, q_pos0: 0, segments: None, kernel }
        })
        .collect()
}

/// VGGT-like full attention, head dim 64.
fn attention_full_perf(s: Scale) -> Vec<Att> {
    let (n, h) = if s == Scale::Full { (4096, 16) } else { (512, 4) };
    // Both plain kernels, and the device's choice (on matrix units where it has them).
    [Kernel::Tile, Kernel::Blocked, Kernel::Auto]
        .into_iter()
        .map(|kernel| Att { n_q: n, n_kv: n, hq: h, hkv: h, d: 64, causal: false, q_pos0: 0, segments: None, kernel })
        .collect()
}

/// ViT-style windows of 64, 48, 16, 12 tokens and two more, head dim 80.
fn attention_varlen_rows() -> Vec<Att> {
    const SEG: [u32; 7] = [0, 64, 112, 128, 140, 203, 267];
    [Kernel::Tile, Kernel::Blocked, Kernel::BlockedMinStorage, Kernel::Rows]
        .into_iter()
        .map(|kernel| Att { n_q: 267, n_kv: 267, hq: 2, hkv: 2, d: 80, causal: false, q_pos0: 0, segments: Some(&SEG), kernel })
        .collect()
}

/// K and V share one fused buffer [n_kv, lead + (hkv + hkv) * d + pad] at an offset, as a fused
/// QKV projection and the KV cache lay them out, to exercise strides.
fn attention_setup(g: &Gpu, r: &mut Rng, a: &Att) -> Result<Setup, String> {
    let &Att { n_q, n_kv, hq, hkv, d, causal, q_pos0, segments, kernel } = a;
    let q = as_stored(g, &r.normals(n_q * hq * d, 1.0));
    let k = as_stored(g, &r.normals(n_kv * hkv * d, 1.0));
    let v = as_stored(g, &r.normals(n_kv * hkv * d, 1.0));
    let scale = 1.0 / (d as f64).sqrt();
    let lead = 3;
    let kv_stride = lead + 2 * hkv * d + 5;
    let mut kv = vec![0f32; n_kv * kv_stride];
    for t in 0..n_kv {
        for e in 0..hkv * d {
            kv[t * kv_stride + lead + e] = k[t * hkv * d + e];
            kv[t * kv_stride + lead + hkv * d + e] = v[t * hkv * d + e];
        }
    }
    let qt = act(g, &q, &[n_q, hq * d])?;
    let kvt = act(g, &kv, &[n_kv, kv_stride])?;
    let segt = match segments {
        Some(s) => Some(u32s(g, s)?),
        None => None,
    };
    Ok(Setup::one(
        move |rec| {
            let a = Attention {
                q: HeadsView::dense(&qt, hq),
                k: HeadsView { t: &kvt, tokens: n_kv, heads: hkv, stride: kv_stride, off: lead },
                v: HeadsView { t: &kvt, tokens: n_kv, heads: hkv, stride: kv_stride, off: lead + hkv * d },
                head_dim: d,
                causal,
                q_pos0,
                segments: segt.as_ref(),
                scale: scale as f32,
            };
            attention_with(rec, &a, kernel)
        },
        move || {
            let seg_of = |i: usize| segments.map(|s| s.iter().rposition(|&b| b as usize <= i).unwrap()).unwrap_or(0);
            cpu::attention(&q, &k, &v, n_q, n_kv, hq, hkv, d, scale, |i, j| (!causal || j <= q_pos0 + i) && seg_of(i) == seg_of(j))
        },
    ))
}

// ================================================================ norms

fn rms_norm_def() -> Def<(usize, usize)> {
    Def::new(|| vec![(7, 2051), (3, 16384), (33, 80)], |&(rows, dim)| format!("{rows}x{dim}"), |_| Tol::act(1e-5), rms_norm_setup).perf(
        |s| vec![(if s == Scale::Full { 4096 } else { 512 }, 2048)],
        |&(rows, dim), a| 2.0 * (rows * dim) as f64 * a,
        |&(rows, dim)| 4.0 * (rows * dim) as f64,
    )
}

fn rms_norm_setup(g: &Gpu, r: &mut Rng, &(rows, dim): &(usize, usize)) -> Result<Setup, String> {
    let x = as_stored(g, &r.normals(rows * dim, 2.0));
    let w = r.normals(dim, 1.0);
    let xt = act(g, &x, &[rows, dim])?;
    let wt = f32s(g, &w, &[dim])?;
    Ok(Setup::one(move |rec| norm::rms_norm(rec, &xt, &wt, 1e-6), move || cpu::rms_norm(&x, &w, dim, 1e-6)))
}

fn layer_norm_def() -> Def<(usize, usize, bool)> {
    Def::new(
        || vec![(5, 1023, true), (4, 2048, false), (9, 1024, true)],
        |&(rows, dim, affine)| format!("{rows}x{dim} affine={affine}"),
        |_| Tol::act(1e-5),
        |g, r, &(rows, dim, affine)| {
            let x: Vec<f32> = r.normals(rows * dim, 1.5).iter().map(|v| v + 0.7).collect();
            let x = as_stored(g, &x);
            let w = r.normals(dim, 1.0);
            let b = r.normals(dim, 0.5);
            let want = if affine { cpu::layer_norm(&x, Some(&w), Some(&b), dim, 1e-5) } else { cpu::layer_norm(&x, None, None, dim, 1e-5) };
            let xt = act(g, &x, &[rows, dim])?;
            let wt = f32s(g, &w, &[dim])?;
            let bt = f32s(g, &b, &[dim])?;
            Ok(Setup::one(
                move |rec| if affine { norm::layer_norm(rec, &xt, Some(&wt), Some(&bt), 1e-5) } else { norm::layer_norm(rec, &xt, None, None, 1e-5) },
                move || want,
            ))
        },
    )
}

/// VGGT's per-head LayerNorm over 64 dims, on the K part of a fused [q | k | v] row.
fn qk_norm_def() -> Def<()> {
    Def::new(
        || vec![()],
        |_| "qk norm in place: 9 tokens x 3 heads x 64, K of fused qkv".into(),
        |_| Tol::act(1e-5),
        |g, r, _| {
            let (tokens, heads, dim) = (9, 3, 64);
            let stride = 3 * heads * dim;
            let off = heads * dim;
            let x = as_stored(g, &r.normals(tokens * stride, 1.0));
            let w = r.normals(dim, 1.0);
            let b = r.normals(dim, 0.3);
            let mut want = f64s(&x);
            for t in 0..tokens {
                for h in 0..heads {
                    let s = t * stride + off + h * dim;
                    let y = cpu::layer_norm(&x[s..s + dim], Some(&w), Some(&b), dim, 1e-5);
                    want[s..s + dim].copy_from_slice(&y);
                }
            }
            let xt = act(g, &x, &[tokens, stride])?;
            let wt = f32s(g, &w, &[dim])?;
            let bt = f32s(g, &b, &[dim])?;
            Ok(Setup::one(
                move |rec| {
                    norm::head_layer_norm_inplace(rec, &xt, Rows { dim, heads, token_stride: stride, off }, &wt, &bt, 1e-5)?;
                    Ok(xt.clone())
                },
                move || want,
            ))
        },
    )
}

// ================================================================ rope

#[derive(Debug)]
struct Rope {
    kind: RopeKind,
    d: usize,
    heads: usize,
    tokens: usize,
    /// Position components per token.
    ncomp: usize,
    maxpos: usize,
}

fn rope_def() -> Def<Rope> {
    Def::new(
        || {
            [
                (RopeKind::OneD { theta: 1_000_000.0 }, 128, 3, 11, 1, 100_000),
                (RopeKind::MRope { theta: 1_000_000.0, sections: [16, 24, 24] }, 128, 2, 9, 3, 5_000),
                (RopeKind::QwenVision { theta: 10_000.0 }, 80, 2, 13, 2, 60),
                (RopeKind::Vggt { theta: 100.0 }, 64, 2, 7, 2, 40),
            ]
            .into_iter()
            .map(|(kind, d, heads, tokens, ncomp, maxpos)| Rope { kind, d, heads, tokens, ncomp, maxpos })
            .collect()
        },
        |v| format!("{:?} {} tok x {} x {}", v.kind, v.tokens, v.heads, v.d),
        |_| Tol::act(2e-5),
        rope_setup,
    )
    .perf(
        |s| {
            let kind = RopeKind::MRope { theta: 1e6, sections: [16, 24, 24] };
            vec![Rope { kind, d: 128, heads: 16, tokens: if s == Scale::Full { 4096 } else { 512 }, ncomp: 3, maxpos: 5_000 }]
        },
        |v, a| 2.0 * (v.tokens * v.heads * v.d) as f64 * a,
        |v| 6.0 * (v.tokens * v.heads * v.d) as f64,
    )
}

/// Per-channel angles of one token for each variant, following the references' definitions.
fn rope_angles(kind: RopeKind, d: usize, pos: &[i32]) -> Vec<Vec<f64>> {
    // PyTorch computes inv_freq and position * inv_freq in f32.
    let ang = |p: i32, f: f32| (p as f32 * f) as f64;
    match kind {
        RopeKind::OneD { theta } => {
            let f = inv_freq(theta, d);
            vec![(0..d).map(|c| ang(pos[0], f[c % (d / 2)])).collect()]
        }
        RopeKind::MRope { theta, sections } => {
            let f = inv_freq(theta, d);
            let comp = |j: usize| {
                if j < sections[0] {
                    0
                } else if j < sections[0] + sections[1] {
                    1
                } else {
                    2
                }
            };
            vec![(0..d).map(|c| ang(pos[comp(c % (d / 2))], f[c % (d / 2)])).collect()]
        }
        RopeKind::QwenVision { theta } => {
            let f = inv_freq(theta, d / 2);
            let q = f.len();
            vec![(0..d)
                .map(|c| {
                    let j = c % (2 * q);
                    if j < q {
                        ang(pos[0], f[j])
                    } else {
                        ang(pos[1], f[j - q])
                    }
                })
                .collect()]
        }
        RopeKind::Vggt { theta } => {
            let f = inv_freq(theta, d / 2);
            (0..2).map(|part| (0..d / 2).map(|c| ang(pos[part], f[c % (d / 4)])).collect()).collect()
        }
    }
}

/// Heads at an offset inside a padded row, in place.
fn rope_setup(g: &Gpu, r: &mut Rng, v: &Rope) -> Result<Setup, String> {
    let &Rope { kind, d, heads, tokens, ncomp, maxpos } = v;
    let lead = 5;
    let stride = lead + heads * d + 3;
    let x = as_stored(g, &r.normals(tokens * stride, 1.0));
    let pos: Vec<i32> = (0..tokens * ncomp).map(|_| r.below(maxpos) as i32).collect();
    let table = RopeTable::new(g, kind, d).map_err(e2s)?;
    let xt = act(g, &x, &[tokens, stride])?;
    let pt = g.upload_i32(&pos, &[tokens, ncomp]).map_err(e2s)?;
    Ok(Setup::one(
        move |rec| {
            rope_inplace(rec, &xt, heads, stride, lead, &pt, &table)?;
            Ok(xt.clone())
        },
        move || {
            let mut want = f64s(&x);
            for t in 0..tokens {
                let parts = rope_angles(kind, d, &pos[t * ncomp..(t + 1) * ncomp]);
                let pd = d / parts.len();
                for h in 0..heads {
                    for (pi, angle) in parts.iter().enumerate() {
                        let s = t * stride + lead + h * d + pi * pd;
                        want[s..s + pd].copy_from_slice(&cpu::rope_head(&x[s..s + pd], angle));
                    }
                }
            }
            want
        },
    ))
}

// ================================================================ element-wise, embedding

#[derive(Debug)]
enum EwWhat {
    Op(Op),
    /// ReLU on a column range only (VGGT's pose activation).
    ReluCols(usize, usize),
}

#[derive(Debug)]
struct Ew {
    what: EwWhat,
    rows: usize,
    cols: usize,
}

fn ew_needs_b(op: Op) -> bool {
    matches!(op, Op::Add | Op::Mul | Op::SiluMul | Op::ScaleAdd)
}

fn elementwise_def() -> Def<Ew> {
    Def::new(
        || {
            let ops = [Op::Add, Op::Mul, Op::Silu, Op::Gelu, Op::SiluMul, Op::Scale, Op::ScaleAdd, Op::Relu].map(EwWhat::Op);
            // Column ranges, including an empty one.
            let cols = [(7, 9), (0, 1), (76, 77), (30, 30)].map(|(lo, hi)| EwWhat::ReluCols(lo, hi));
            ops.into_iter().chain(cols).map(|what| Ew { what, rows: 13, cols: 77 }).collect()
        },
        |v| match v.what {
            EwWhat::Op(op) => format!("{op:?} {}x{}", v.rows, v.cols),
            EwWhat::ReluCols(lo, hi) => format!("ReLU columns {lo}..{hi} {}x{}", v.rows, v.cols),
        },
        |v| match v.what {
            EwWhat::Op(_) => Tol::act(1e-5),
            EwWhat::ReluCols(..) => Tol::act(1e-6),
        },
        elementwise_setup,
    )
    .perf(
        |s| vec![Ew { what: EwWhat::Op(Op::Add), rows: if s == Scale::Full { 4096 } else { 512 }, cols: 2048 }],
        |v, a| {
            let inputs = match v.what {
                EwWhat::Op(op) => 1 + ew_needs_b(op) as usize,
                EwWhat::ReluCols(..) => 1,
            };
            ((inputs + 1) * v.rows * v.cols) as f64 * a
        },
        |v| (v.rows * v.cols) as f64,
    )
}

fn elementwise_setup(g: &Gpu, r: &mut Rng, v: &Ew) -> Result<Setup, String> {
    let (rows, cols) = (v.rows, v.cols);
    let n = rows * cols;
    match v.what {
        EwWhat::Op(op) => {
            let a = as_stored(g, &r.normals(n, 2.0));
            let b = as_stored(g, &r.normals(n, 2.0));
            let gm = r.normals(cols, 0.1);
            let at = act(g, &a, &[rows, cols])?;
            let bt = act(g, &b, &[rows, cols])?;
            let gt = f32s(g, &gm, &[cols])?;
            let needs_g = matches!(op, Op::Scale | Op::ScaleAdd);
            Ok(Setup::one(
                move |rec| elementwise(rec, op, &at, ew_needs_b(op).then_some(&bt), needs_g.then_some(&gt)),
                move || {
                    (0..n)
                        .map(|i| {
                            let (x, y, s) = (a[i] as f64, b[i] as f64, gm[i % cols] as f64);
                            match op {
                                Op::Add => x + y,
                                Op::Mul => x * y,
                                Op::Silu => cpu::silu(x),
                                Op::Gelu => cpu::gelu(x),
                                Op::SiluMul => cpu::silu(x) * y,
                                Op::Scale => x * s,
                                Op::ScaleAdd => x + y * s,
                                Op::Relu => x.max(0.0),
                            }
                        })
                        .collect()
                },
            ))
        }
        EwWhat::ReluCols(lo, hi) => {
            let a = as_stored(g, &r.normals(n, 2.0));
            let at = act(g, &a, &[rows, cols])?;
            Ok(Setup::one(
                move |rec| relu_columns(rec, &at, lo..hi),
                move || (0..n).map(|i| if (lo..hi).contains(&(i % cols)) { (a[i] as f64).max(0.0) } else { a[i] as f64 }).collect(),
            ))
        }
    }
}

fn modulate_def() -> Def<(usize, usize)> {
    Def::new(
        || vec![(3, 64), (13, 77), (1, 2051), (6, 2048)],
        |&(rows, cols)| format!("{rows}x{cols}"),
        |_| Tol::act(1e-5),
        |g, r, &(rows, cols)| {
            let n = rows * cols;
            let x = as_stored(g, &r.normals(n, 1.0));
            let m = as_stored(g, &r.normals(3 * n, 0.7));
            let res = as_stored(g, &r.normals(n, 1.5));
            let xt = act(g, &x, &[rows, cols])?;
            let mt = act(g, &m, &[rows, 3 * cols])?;
            let rt = act(g, &res, &[rows, cols])?;
            Ok(Setup::one(move |rec| modulate(rec, &xt, &mt, &rt), move || cpu::modulate(&x, &m, &res, cols)))
        },
    )
}

/// Every weight format; the whole table, and the table split by rows into three parts (as large
/// tables are stored).
fn embed_def() -> Def<(WeightFormat, bool)> {
    Def::new(
        || WeightFormat::all().into_iter().flat_map(|f| [(f, false), (f, true)]).collect(),
        |&(fmt, parts)| format!("{}{}: 19 ids of 1001 x 301", fmt.name(), if parts { " in 3 parts" } else { "" }),
        |_| Tol::act(1e-6),
        |g, r, &(fmt, parts)| {
            let (vocab, dim, n) = (1001, 301, 19);
            let table = r.normals(vocab * dim, 0.5);
            let packed = PackedWeight::pack(fmt, &table, vocab, dim);
            let ids: Vec<u32> = (0..n).map(|_| r.below(vocab) as u32).collect();
            let td = packed.unpack();
            let want: Vec<f64> = ids.iter().flat_map(|&i| f64s(&td[i as usize * dim..(i as usize + 1) * dim])).collect();
            let it = u32s(g, &ids)?;
            if !parts {
                let wt = Weight::upload(g, &packed, "table").map_err(e2s)?;
                return Ok(Setup::one(move |rec| embed(rec, &it, &wt), move || want));
            }
            let cuts = [0, 1 + r.below(vocab / 2), vocab / 2 + r.below(vocab / 2), vocab];
            let parts: Vec<Weight> = cuts
                .windows(2)
                .map(|c| Weight::upload(g, &PackedWeight::pack(fmt, &table[c[0] * dim..c[1] * dim], c[1] - c[0], dim), "part"))
                .collect::<Result<_, _>>()
                .map_err(e2s)?;
            Ok(Setup::one(move |rec| embed_parts(rec, &it, &parts), move || want))
        },
    )
}

// ================================================================ token selection

/// (rows, vocabulary, row): the same maximum twice; the first index must win.
fn argmax_def() -> Def<(usize, usize, usize)> {
    Def::new(
        || vec![(1, 151_937, 0), (3, 1000, 2)],
        |&(rows, n, row)| format!("{rows}x{n}, row {row}"),
        |_| Tol::EXACT,
        |g, r, &(rows, n, row)| {
            let mut l = as_stored(g, &r.normals(rows * n, 3.0));
            let (a, b) = (r.below(n), r.below(n));
            l[row * n + a] = 50.0;
            l[row * n + b] = 50.0;
            let lt = act(g, &l, &[rows, n])?;
            Ok(Setup::rule(
                move |rec| Ok(vec![argmax(rec, &lt, row)?]),
                move |got| {
                    let (got, want) = (got[0][0] as usize, a.min(b));
                    if got == want {
                        Ok(0.0)
                    } else {
                        Err(format!("got {got}, want {want} (tied {a} and {b})"))
                    }
                },
            ))
        },
    )
    .perf(|_| vec![(1, 151_936, 0)], |&(_, n, _), a| n as f64 * a, |&(_, n, _)| n as f64)
}

#[derive(Debug)]
enum Draw {
    /// The `i`th draw of a random u.
    Random(usize),
    /// A tie at the top with a tiny top_p: both tied tokens stay, and u picks between them.
    Tie(f32),
    /// A fixed u (the benchmark).
    Fixed(f32),
}

#[derive(Debug)]
struct Samp {
    n: usize,
    t: f32,
    top_k: u32,
    top_p: f32,
    draw: Draw,
}

fn sample_def() -> Def<Samp> {
    Def::new(
        || {
            let mut rows = Vec::new();
            for (t, top_k, top_p) in [(0.7f32, 0u32, 0.9f32), (1.0, 50, 1.0), (0.5, 100, 0.8), (1.0, 0, 0.001), (1.3, 7, 0.95)] {
                rows.extend((0..4).map(|i| Samp { n: 5003, t, top_k, top_p, draw: Draw::Random(i) }));
            }
            rows.extend([0.25, 0.75].map(|u| Samp { n: 5003, t: 1.0, top_k: 1, top_p: 0.001, draw: Draw::Tie(u) }));
            rows
        },
        |s| match s.draw {
            Draw::Random(i) => format!("T={} k={} p={} draw {i} of {}", s.t, s.top_k, s.top_p, s.n),
            Draw::Tie(u) => format!("tie at the top, u={u} of {}", s.n),
            Draw::Fixed(u) => format!("T={} k={} p={} u={u} of {}", s.t, s.top_k, s.top_p, s.n),
        },
        |_| Tol::EXACT,
        sample_setup,
    )
    .perf(|_| vec![Samp { n: 151_936, t: 0.7, top_k: 50, top_p: 0.9, draw: Draw::Fixed(0.5) }], |s, a| 64.0 * s.n as f64 * a, |s| 64.0 * s.n as f64)
    .max_reps(3)
}

fn sample_setup(g: &Gpu, r: &mut Rng, v: &Samp) -> Result<Setup, String> {
    let &Samp { n, t, top_k, top_p, .. } = v;
    let mut l = as_stored(g, &r.normals(n, 3.0));
    if let Draw::Tie(u) = v.draw {
        let (a, b) = (r.below(n / 2), n / 2 + r.below(n / 2));
        l[a] = 40.0;
        l[b] = 40.0;
        let lt = act(g, &l, &[n])?;
        let s = Sampling { temperature: t, top_p, top_k, u };
        let want = if u < 0.5 { a } else { b };
        return Ok(Setup::rule(
            move |rec| Ok(vec![sample(rec, &lt, 0, s)?]),
            move |got| {
                let got = got[0][0] as usize;
                if got == want {
                    Ok(0.0)
                } else {
                    Err(format!("got token {got}, want {want} of tied {a} and {b}"))
                }
            },
        ));
    }
    let u = match v.draw {
        Draw::Fixed(u) => u,
        _ => r.unit() as f32,
    };
    let lt = act(g, &l, &[n])?;
    let s = Sampling { temperature: t, top_p, top_k, u };
    Ok(Setup::rule(
        move |rec| Ok(vec![sample(rec, &lt, 0, s)?]),
        move |got| {
            let got = got[0][0] as usize;
            let (want, kept) = cpu::sample(&l, t as f64, top_k as usize, top_p as f64, u as f64);
            if got == want {
                return Ok(0.0);
            }
            // Accept only a draw that a hair's change of u or top_p would also give.
            let near = [(-1e-4, 0.0), (1e-4, 0.0), (0.0, -1e-4), (0.0, 1e-4)]
                .iter()
                .any(|&(du, dp)| cpu::sample(&l, t as f64, top_k as usize, (top_p as f64 + dp).min(1.0), (u as f64 + du).clamp(0.0, 1.0)).0 == got);
            if near {
                Ok(0.0)
            } else {
                Err(format!("u={u}: got token {got}, want {want} (kept {kept})"))
            }
        },
    ))
}

fn penalty_def() -> Def<()> {
    Def::new(
        || vec![()],
        |_| "3 x 1531, row 1, up to 300 ids".into(),
        |_| Tol::act(1e-6),
        |g, r, _| {
            let (rows, n, row) = (3, 1531, 1);
            let l = as_stored(g, &r.normals(rows * n, 3.0));
            let mut ids: Vec<u32> = (0..300).map(|_| r.below(n) as u32).collect();
            ids.sort_unstable();
            ids.dedup();
            let p = 1.05 + r.unit() as f32;
            let mut want = f64s(&l);
            for &i in &ids {
                let v = &mut want[row * n + i as usize];
                *v = if *v < 0.0 { *v * p as f64 } else { *v / p as f64 };
            }
            let lt = act(g, &l, &[rows, n])?;
            let it = u32s(g, &ids)?;
            Ok(Setup::one(
                move |rec| {
                    repetition_penalty(rec, &lt, row, &it, p)?;
                    Ok(lt.clone())
                },
                move || want,
            ))
        },
    )
}

// ================================================================ gather, regroup, weight rows

#[derive(Clone, Copy, Debug)]
enum Gather {
    Rows,
    RowsIntoColumns,
    ConcatColumns,
    ConcatColumnsOfRows,
}

fn gather_def() -> Def<Gather> {
    Def::new(
        || vec![Gather::Rows, Gather::RowsIntoColumns, Gather::ConcatColumns, Gather::ConcatColumnsOfRows],
        |v| {
            match v {
                Gather::Rows => "gather rows: 162 of 157 x 37",
                Gather::RowsIntoColumns => "gather rows into columns: 162 of 157 x (37 | 29)",
                Gather::ConcatColumns => "concat columns: 157 x (37 | 29)",
                Gather::ConcatColumnsOfRows => "concat columns of rows 41..101: 157 x (37 | 29)",
            }
            .into()
        },
        |_| Tol::EXACT,
        gather_setup,
    )
}

fn gather_setup(g: &Gpu, r: &mut Rng, v: &Gather) -> Result<Setup, String> {
    let (n, d1, d2) = (157, 37, 29);
    let a = as_stored(g, &r.normals(n * d1, 1.0));
    let b = as_stored(g, &r.normals(n * d2, 1.0));
    let idx: Vec<u32> = (0..n + 5).map(|_| r.below(n) as u32).collect();
    let row = |i: usize| a[i * d1..(i + 1) * d1].iter().chain(&b[i * d2..(i + 1) * d2]).map(|&v| v as f64).collect::<Vec<_>>();
    let (r0, rows) = (41, 60);
    let want: Vec<f64> = match v {
        Gather::Rows => idx.iter().flat_map(|&i| f64s(&a[i as usize * d1..(i as usize + 1) * d1])).collect(),
        Gather::RowsIntoColumns => idx.iter().flat_map(|&i| row(i as usize)).collect(),
        Gather::ConcatColumns => (0..n).flat_map(row).collect(),
        Gather::ConcatColumnsOfRows => (r0..r0 + rows).flat_map(row).collect(),
    };
    let at = act(g, &a, &[n, d1])?;
    let bt = act(g, &b, &[n, d2])?;
    let it = u32s(g, &idx)?;
    // Columns [0, d1) from A, [d1, d1 + d2) from B, for `rows` rows from `r0`.
    let concat = |r0: usize, rows: usize| {
        let (at, bt) = (at.clone(), bt.clone());
        move |rec: &mut Recorder| {
            let y = rec.gpu.alloc_act(&[rows, d1 + d2])?;
            place_cols(rec, &at, r0, &y, 0)?;
            place_cols(rec, &bt, r0, &y, d1)?;
            Ok(y)
        }
    };
    Ok(match *v {
        Gather::Rows => Setup::one(move |rec| gather_rows(rec, &at, &it), move || want),
        Gather::RowsIntoColumns => Setup::one(
            move |rec| {
                let y = rec.gpu.alloc_act(&[it.shape[0], d1 + d2])?;
                gather_rows_into(rec, &at, &it, &y, 0)?;
                gather_rows_into(rec, &bt, &it, &y, d1)?;
                Ok(y)
            },
            move || want,
        ),
        Gather::ConcatColumns => Setup::one(concat(0, n), move || want),
        Gather::ConcatColumnsOfRows => Setup::one(concat(r0, rows), move || want),
    })
}

/// The connectors' regrouping, both orders, against index arithmetic written from the upstream
/// permutes: v1.0 permute(0,1,3,5,2,4,6,7) of (B,T',2,h',2,w',2,C); v1.1 (sh, sw, d, tf). The
/// channels come in two halves (VGGT's frame and global outputs); all rows, and a range of them.
fn regroup_def() -> Def<(RegroupOrder, bool)> {
    Def::new(
        || [RegroupOrder::V10, RegroupOrder::V11].into_iter().flat_map(|o| [(o, false), (o, true)]).collect(),
        |&(order, range)| format!("regroup {order:?} {}: 4 frames, 5 + 6x10 tokens, 2 x 13 channels", if range { "rows 7..27" } else { "all rows" }),
        |_| Tol::EXACT,
        |g, r, &(order, range)| {
            let (frames, ps, gh, gw, c) = (4, 5, 6, 10, 26);
            let (p, half) = (ps + gh * gw, c / 2);
            let a = as_stored(g, &r.normals(frames * p * half, 1.0));
            let b = as_stored(g, &r.normals(frames * p * half, 1.0));
            let x = |tok: usize, d: usize| if d < half { a[tok * half + d] } else { b[tok * half + d - half] } as f64;
            let mut want = Vec::new();
            for t in 0..frames / 2 {
                for i in 0..gh / 2 {
                    for j in 0..gw / 2 {
                        let at = |tf: usize, sh: usize, sw: usize, d: usize| x((2 * t + tf) * p + ps + (2 * i + sh) * gw + 2 * j + sw, d);
                        match order {
                            RegroupOrder::V10 => (0..2).for_each(|tf| (0..2).for_each(|sh| (0..2).for_each(|sw| (0..c).for_each(|d| want.push(at(tf, sh, sw, d)))))),
                            RegroupOrder::V11 => (0..2).for_each(|sh| (0..2).for_each(|sw| (0..c).for_each(|d| (0..2).for_each(|tf| want.push(at(tf, sh, sw, d)))))),
                        }
                    }
                }
            }
            let n = frames / 2 * (gh / 2) * (gw / 2);
            let rows = if range { 7..n - 3 } else { 0..n };
            let want = want[rows.start * 8 * c..rows.end * 8 * c].to_vec();
            let at = act(g, &a, &[frames * p, half])?;
            let bt = act(g, &b, &[frames * p, half])?;
            Ok(Setup::one(move |rec| regroup(rec, [&at, &bt], frames, ps, (gh, gw), order, rows.clone()), move || want))
        },
    )
}

/// A weight's row range copied on the GPU multiplies exactly as those rows of the whole matrix
/// (every format; ranges that start mid-matrix, as q / k / v of a fused qkv).
fn slice_rows_def() -> Def<(WeightFormat, usize, usize)> {
    Def::new(
        || WeightFormat::all().into_iter().flat_map(|f| [(f, 0, 38), (f, 38, 76), (f, 76, 114)]).collect(),
        |&(fmt, r0, r1)| format!("{} rows {r0}..{r1} of 114 x 70, 5 rows of X", fmt.name()),
        |_| Tol::EXACT,
        |g, r, &(fmt, r0, r1)| {
            let (m, rows, cols) = (5, 3 * 38, 70);
            let x = as_stored(g, &r.normals(m * cols, 1.0));
            let xt = act(g, &x, &[m, cols])?;
            let packed = PackedWeight::pack(fmt, &r.normals(rows * cols, 0.1), rows, cols);
            let w = Weight::upload(g, &packed, "w").map_err(e2s)?;
            let part = w.slice_rows(g, r0, r1).map_err(e2s)?;
            Ok(Setup::rule(
                move |rec| Ok(vec![linear_with(rec, &xt, &w, Epilogue::none(), Path::Gemm)?, linear_with(rec, &xt, &part, Epilogue::none(), Path::Gemm)?]),
                move |got| {
                    let (full, part) = (&got[0], &got[1]);
                    let want: Vec<f64> = (0..m).flat_map(|i| f64s(&full[i * rows + r0..i * rows + r1])).collect();
                    let m = measure(part, &want)?;
                    if m.err > 0.0 {
                        return Err(format!("rel err {:.2e} against the whole matrix's rows {}", m.err, m.at));
                    }
                    Ok(m.err)
                },
            ))
        },
    )
}

// ================================================================ DPT: convolutions, resize, head

/// A random separable positional table for an output of h x w x c, and its dense values.
fn random_pos(g: &Gpu, r: &mut Rng, h: usize, w: usize, c: usize) -> Result<(SeparablePos, Vec<f64>), String> {
    let hc = c / 2;
    let xp = r.normals(w * hc, 0.5);
    let yp = r.normals(h * hc, 0.5);
    let mut dense = vec![0f64; h * w * c];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                dense[(y * w + x) * c + ch] = if ch < hc { xp[x * hc + ch] } else { yp[y * hc + ch - hc] } as f64;
            }
        }
    }
    Ok((SeparablePos::upload(g, h, w, c, &xp, &yp).map_err(e2s)?, dense))
}

/// One convolution case's options.
#[derive(Clone, Copy, Debug)]
struct ConvOpts {
    fmt: WeightFormat,
    relu_in: bool,
    bias: bool,
    relu: bool,
    pos: bool,
    res: bool,
    add: bool,
    /// Special tokens before each frame's pixels (the input is a strided view).
    lead: usize,
}

const PLAIN: ConvOpts = ConvOpts { fmt: WeightFormat::F16, relu_in: false, bias: false, relu: false, pos: false, res: false, add: false, lead: 0 };

#[derive(Debug)]
struct Conv {
    d: cpu::Nhwc,
    c_out: usize,
    k: usize,
    stride: usize,
    transpose: bool,
    o: ConvOpts,
}

fn conv_def(rows: fn() -> Vec<Conv>) -> Def<Conv> {
    Def::new(
        rows,
        |v| {
            let (d, o) = (v.d, v.o);
            format!(
                "{}x{}x{}x{} -> {} k{} s{} {}{}",
                d.f,
                d.h,
                d.w,
                d.c,
                v.c_out,
                v.k,
                v.stride,
                o.fmt.name(),
                [(o.relu_in, " relu_in"), (o.bias, " bias"), (o.relu, " relu"), (o.pos, " pos"), (o.res, " res"), (o.add, " add"), (o.lead > 0, " view")]
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| *n)
                    .collect::<String>()
            )
        },
        |_| Tol::act(1e-4),
        conv_setup,
    )
}

fn conv2d_rows() -> Vec<Conv> {
    use cpu::Nhwc as D;
    let f16 = PLAIN;
    [
        // A residual unit's first conv: ReLU on the input and the output, bias.
        (D { f: 2, h: 13, w: 11, c: 37 }, 70, 3, 1, ConvOpts { relu_in: true, bias: true, relu: true, ..f16 }),
        // Its second conv: bias + relu(residual) + another addend.
        (D { f: 1, h: 20, w: 17, c: 8 }, 130, 3, 1, ConvOpts { fmt: WeightFormat::Q8, bias: true, res: true, add: true, ..f16 }),
        // Stride 2 (the DPT's fourth resize layer), odd sizes.
        (D { f: 2, h: 9, w: 7, c: 19 }, 5, 3, 2, ConvOpts { bias: true, ..f16 }),
        (D { f: 1, h: 4, w: 6, c: 33 }, 66, 3, 2, ConvOpts { fmt: WeightFormat::Q4, ..f16 }),
        // 1x1 projection of the patch tokens after 5 special tokens, + bias + positional table.
        (D { f: 3, h: 5, w: 6, c: 67 }, 36, 1, 1, ConvOpts { bias: true, pos: true, lead: 5, ..f16 }),
        (D { f: 1, h: 3, w: 4, c: 5 }, 7, 3, 1, ConvOpts { fmt: WeightFormat::F32, relu_in: true, ..f16 }),
        // More output channels than one tile and many input channels (several K tiles per tap).
        (D { f: 1, h: 6, w: 10, c: 96 }, 129, 3, 1, ConvOpts { bias: true, ..f16 }),
        // Fewer than 4 input channels: one K step spans several taps.
        (D { f: 2, h: 5, w: 7, c: 3 }, 10, 3, 1, ConvOpts { bias: true, ..f16 }),
        (D { f: 1, h: 4, w: 5, c: 1 }, 3, 3, 2, ConvOpts { fmt: WeightFormat::Q8, relu_in: true, ..f16 }),
    ]
    .into_iter()
    .map(|(d, c_out, k, stride, o)| Conv { d, c_out, k, stride, transpose: false, o })
    .collect()
}

fn conv_transpose_rows() -> Vec<Conv> {
    use cpu::Nhwc as D;
    [
        (D { f: 2, h: 5, w: 7, c: 37 }, 19, 4, ConvOpts { bias: true, ..PLAIN }),
        (D { f: 1, h: 3, w: 4, c: 70 }, 66, 2, ConvOpts { fmt: WeightFormat::Q8, relu_in: true, bias: true, ..PLAIN }),
        (D { f: 3, h: 2, w: 3, c: 9 }, 5, 2, ConvOpts { fmt: WeightFormat::Q4, add: true, ..PLAIN }),
        (D { f: 1, h: 4, w: 3, c: 8 }, 8, 4, ConvOpts { fmt: WeightFormat::F32, bias: true, lead: 5, ..PLAIN }),
    ]
    .into_iter()
    .map(|(d, c_out, k, o)| Conv { d, c_out, k, stride: k, transpose: true, o })
    .collect()
}

/// Apply the epilogue on the CPU: relu(acc + bias) + pos + relu(res) + add, per output element.
fn conv_epilogue_ref(want: &mut [f64], c_out: usize, o: &ConvOpts, bias: &[f32], pos: &[f64], res: &[f32], add: &[f32]) {
    let per_frame = pos.len().max(1);
    for (i, v) in want.iter_mut().enumerate() {
        if o.bias {
            *v += bias[i % c_out] as f64;
        }
        if o.relu {
            *v = v.max(0.0);
        }
        if o.pos {
            *v += pos[i % per_frame];
        }
        if o.res {
            *v += (res[i] as f64).max(0.0);
        }
        if o.add {
            *v += add[i] as f64;
        }
    }
}

fn conv_setup(g: &Gpu, r: &mut Rng, v: &Conv) -> Result<Setup, String> {
    let &Conv { d, c_out, k, stride, transpose, o } = v;
    let tokens = o.lead + d.h * d.w;
    let full = as_stored(g, &r.normals(d.f * tokens * d.c, 1.0));
    // The pixels the kernel sees (without the lead tokens), ReLU'd if it applies one on read.
    let mut x: Vec<f32> = (0..d.f).flat_map(|f| full[(f * tokens + o.lead) * d.c..(f + 1) * tokens * d.c].to_vec()).collect();
    if o.relu_in {
        x.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let (rows, cols) = if transpose { (d.c, c_out * k * k) } else { (c_out, d.c * k * k) };
    let packed = PackedWeight::pack(o.fmt, &r.normals(rows * cols, 0.1), rows, cols);
    let wd = packed.unpack();
    let (mut want, od) = if transpose { cpu::conv_transpose_nhwc(&x, d, &wd, c_out, k, k) } else { cpu::conv2d_nhwc(&x, d, &wd, c_out, k, stride, (k - 1) / 2) };
    let bias = r.normals(c_out, 0.3);
    let res = as_stored(g, &r.normals(od.len(), 1.0));
    let add = as_stored(g, &r.normals(od.len(), 1.0));
    let (pos_t, pos) = if o.pos {
        let (t, p) = random_pos(g, r, od.h, od.w, c_out)?;
        (Some(t), p)
    } else {
        (None, vec![])
    };
    conv_epilogue_ref(&mut want, c_out, &o, &bias, &pos, &res, &add);

    let xt = act(g, &full, &[d.f, tokens, d.c])?;
    let wt = Weight::upload(g, &packed, "w").map_err(e2s)?;
    let bt = f32s(g, &bias, &[c_out])?;
    let rt = act(g, &res, &[od.f, od.h, od.w, od.c])?;
    let at = act(g, &add, &[od.f, od.h, od.w, od.c])?;
    Ok(Setup::one(
        move |rec| {
            let view = ImageView { t: &xt, frames: d.f, h: d.h, w: d.w, c: d.c, frame_stride: tokens * d.c, off: o.lead * d.c };
            let epi = ConvEpilogue { bias: o.bias.then_some(&bt), relu: o.relu, pos: pos_t.as_ref(), res_relu: o.res.then_some(&rt), add: o.add.then_some(&at) };
            let y = if transpose { conv_transpose2d(rec, view, &wt, k, o.relu_in, epi)? } else { conv2d(rec, view, &wt, k, stride, o.relu_in, epi)? };
            if y.shape != [od.f, od.h, od.w, od.c] {
                return Err(crate::gpu::error::shape_err("conv case", format!("output shape {:?}, expected {:?}", y.shape, [od.f, od.h, od.w, od.c])));
            }
            Ok(y)
        },
        move || want,
    ))
}

#[derive(Debug)]
struct Bil {
    d: cpu::Nhwc,
    ho: usize,
    wo: usize,
    pos: bool,
    add: bool,
}

fn bilinear_def() -> Def<Bil> {
    Def::new(
        || {
            use cpu::Nhwc as D;
            // (input, output size, positional table, addend)
            [
                (D { f: 2, h: 3, w: 4, c: 13 }, 7, 9, false, false),
                (D { f: 1, h: 6, w: 8, c: 6 }, 11, 14, true, false),
                (D { f: 3, h: 5, w: 5, c: 2 }, 1, 3, false, true),
                (D { f: 1, h: 24, w: 32, c: 4 }, 42, 56, true, false),
                (D { f: 2, h: 9, w: 9, c: 3 }, 4, 5, false, true),
                (D { f: 1, h: 1, w: 1, c: 5 }, 2, 3, false, false),
            ]
            .into_iter()
            .map(|(d, ho, wo, pos, add)| Bil { d, ho, wo, pos, add })
            .collect()
        },
        |v| format!("{}x{}x{}x{} -> {}x{}{}{}", v.d.f, v.d.h, v.d.w, v.d.c, v.ho, v.wo, if v.pos { " pos" } else { "" }, if v.add { " add" } else { "" }),
        |_| Tol::act(1e-5),
        |g, r, v| {
            let &Bil { d, ho, wo, pos: with_pos, add: with_add } = v;
            let x = as_stored(g, &r.normals(d.len(), 1.0));
            let (mut want, od) = cpu::bilinear_nhwc(&f64s(&x), d, ho, wo);
            let add = as_stored(g, &r.normals(od.len(), 1.0));
            let (pos_t, pos) = if with_pos {
                let (t, p) = random_pos(g, r, ho, wo, d.c)?;
                (Some(t), p)
            } else {
                (None, vec![])
            };
            for (i, v) in want.iter_mut().enumerate() {
                if with_pos {
                    *v += pos[i % pos.len()];
                }
                if with_add {
                    *v += add[i] as f64;
                }
            }
            let xt = act(g, &x, &[d.f, d.h, d.w, d.c])?;
            let at = act(g, &add, &[od.f, od.h, od.w, od.c])?;
            Ok(Setup::one(move |rec| bilinear(rec, &xt, ho, wo, pos_t.as_ref(), with_add.then_some(&at)), move || want))
        },
    )
}

/// Each value activation with one of the confidence activations, written at frame 1 of 4: the
/// other frames stay poisoned and are not compared. f32 outputs from f32 math on (possibly
/// f16-rounded) inputs.
fn head_act_def() -> Def<(ValueAct, ConfAct)> {
    Def::new(
        || {
            let acts = [ValueAct::Exp, ValueAct::InvLog, ValueAct::XyInvLog, ValueAct::Norm, ValueAct::NormExp, ValueAct::Relu, ValueAct::Sigmoid, ValueAct::Linear];
            let confs = [ConfAct::Expp1, ConfAct::Expp0, ConfAct::Sigmoid];
            acts.into_iter().enumerate().map(|(i, a)| (a, confs[i % confs.len()])).collect()
        },
        |(a, c)| format!("{a:?} values, {c:?} confidence: 2 x 5 x 7 x 4 at frame 1 of 4"),
        |_| Tol::same(1e-5),
        |g, r, &(value_act, conf_act)| {
            let (frames, h, w, c, total, frame0) = (2, 5, 7, 4, 4, 1);
            let px = h * w;
            let nv = c - 1;
            let x = as_stored(g, &r.normals(frames * px * c, 1.0));
            let (v0, c0) = (frame0 * px * nv, frame0 * px);
            let mut want_v = vec![f64::NAN; total * px * nv];
            let mut want_c = vec![f64::NAN; total * px];
            for (pi, p) in x.chunks(c).enumerate() {
                let v = f64s(&p[..nv]);
                let nrm = v.iter().map(|e| e * e).sum::<f64>().sqrt();
                for (j, &e) in v.iter().enumerate() {
                    want_v[v0 + pi * nv + j] = match value_act {
                        ValueAct::Exp => e.exp(),
                        ValueAct::InvLog => cpu::inverse_log(e),
                        ValueAct::XyInvLog => {
                            let z = cpu::inverse_log(v[2]);
                            if j < 2 {
                                e * z
                            } else {
                                z
                            }
                        }
                        ValueAct::Norm => e / nrm,
                        ValueAct::NormExp => e / nrm.max(1e-8) * nrm.max(1e-8).exp_m1(),
                        ValueAct::Relu => e.max(0.0),
                        ValueAct::Sigmoid => 1.0 / (1.0 + (-e).exp()),
                        ValueAct::Linear => e,
                    };
                }
                let cv = p[nv] as f64;
                want_c[c0 + pi] = match conf_act {
                    ConfAct::Expp1 => 1.0 + cv.exp(),
                    ConfAct::Expp0 => cv.exp(),
                    ConfAct::Sigmoid => 1.0 / (1.0 + (-cv).exp()),
                };
            }
            let xt = act(g, &x, &[frames, h, w, c])?;
            let vt = g.alloc(&[total, h, w, nv], DType::F32).map_err(e2s)?;
            let ct = g.alloc(&[total, h, w], DType::F32).map_err(e2s)?;
            Ok(Setup {
                launch: Box::new(move |rec| {
                    head_activation(rec, &xt, value_act, conf_act, &vt, &ct, frame0)?;
                    Ok(vec![vt.clone(), ct.clone()])
                }),
                expect: Box::new(move || Expect::Values(vec![want_v, want_c])),
            })
        },
    )
}

// ================================================================ streaming copy

/// The copy kernel (the bandwidth probe's): word counts that are not a multiple of a vec4 (the
/// last 1 to 3 words go by a buffer copy), nor of the grid, grids of one workgroup (many passes)
/// to one pass, every item count; the bytes must be equal and the words past the copy untouched.
fn copy_def() -> Def<(usize, CopyGrid)> {
    Def::new(
        || {
            let g = |groups, items| CopyGrid { groups, items };
            vec![
                (1, g(0, 4)),
                (3, g(0, 1)),
                (4, g(1, 1)),
                (7, g(0, 8)),
                (4099, g(1, 1)),
                (4101, g(1, 2)),
                (65_539, g(3, 8)),
                (65_542, g(7, 2)),
                (262_147, g(0, 4)),
                (262_145, g(5, 4)),
                (1_000_003, g(0, 8)),
                (1_000_002, g(0, 1)),
            ]
        },
        |&(words, grid)| match grid.groups {
            0 => format!("{words} words, one pass x {} vec4", grid.items),
            n => format!("{words} words, {n} wg x {} vec4", grid.items),
        },
        |_| Tol::EXACT,
        |g, r, &(words, grid)| {
            // Random words, none a NaN pattern (the sentinel past the end is one), compared as bits.
            let src: Vec<u32> = (0..words).map(|_| (r.next_u64() >> 32) as u32 & !(1 << 30)).collect();
            let spare = 37;
            let x = g.upload(bytemuck::cast_slice(&src), &[words], DType::F32).map_err(e2s)?;
            let y = g.upload(bytemuck::cast_slice(&vec![u32::MAX; words + spare]), &[words + spare], DType::F32).map_err(e2s)?;
            Ok(Setup::rule(
                move |rec| {
                    copy_words(rec, &x, &y, words, grid)?;
                    Ok(vec![y.clone()])
                },
                move |got| {
                    let got: Vec<u32> = got[0].iter().map(|v| v.to_bits()).collect();
                    if let Some(i) = (0..words).find(|&i| got[i] != src[i]) {
                        return Err(format!("word {i}: {:#010x}, expected {:#010x}", got[i], src[i]));
                    }
                    if let Some(i) = (words..words + spare).find(|&i| got[i] != u32::MAX) {
                        return Err(format!("word {i} past the copy was written: {:#010x}", got[i]));
                    }
                    Ok(0.0)
                },
            ))
        },
    )
}
