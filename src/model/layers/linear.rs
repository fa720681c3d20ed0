//! `Linear`: y = x · Wᵀ (+ b), with the matmul kernel's fused epilogue.

use crate::gpu::{DType, Gpu, Recorder, Tensor};
use crate::kernels::gather::place_cols;
use crate::kernels::matmul::{linear, Activation, Epilogue};
use crate::model::params::Scope;
use crate::model::{MResult, ModelError};
use crate::weights::Weight;

/// One row part of the weight: the part, its slice of the bias, its first output column.
struct Part {
    w: Weight,
    b: Option<Tensor>,
    col0: usize,
}

/// A linear layer (PyTorch's `nn.Linear`): `weight` [out, in] and an optional `bias` [out]. The
/// weight is one part unless it was loaded with `load_split` (a matrix larger than one shard,
/// such as the real connector's 16 384 x 16 384); each part computes its slice of the columns.
pub struct Linear {
    parts: Vec<Part>,
    out: usize,
    input: usize,
}

impl Linear {
    pub fn new(w: Weight, b: Option<Tensor>) -> Linear {
        let (out, input) = (w.rows, w.cols);
        Linear { parts: vec![Part { w, b, col0: 0 }], out, input }
    }

    /// `weight` [out, input] and `bias` [out] of the scope `p`.
    pub fn load(p: &Scope, out: usize, input: usize) -> MResult<Linear> {
        Ok(Linear::new(p.matrix("weight", out, input)?, Some(p.vector("bias", out)?)))
    }

    /// `weight` [out, input] of the scope `p`, without a bias.
    pub fn load_no_bias(p: &Scope, out: usize, input: usize) -> MResult<Linear> {
        Ok(Linear::new(p.matrix("weight", out, input)?, None))
    }

    /// As `load`, but the weight may be stored in row parts; the bias is sliced to match.
    pub fn load_split(gpu: &Gpu, p: &Scope, out: usize, input: usize) -> MResult<Linear> {
        let weights = p.matrix_parts("weight", out, input)?;
        let bias = p.vector("bias", out)?;
        if weights.len() == 1 {
            return Ok(Linear::new(weights.into_iter().next().expect("one part"), Some(bias)));
        }
        let mut rec = Recorder::new(gpu);
        let mut parts = Vec::with_capacity(weights.len());
        let mut r0 = 0;
        for w in weights {
            let slice = gpu.alloc(&[w.rows], DType::F32)?;
            rec.copy(&bias, (r0 * 4) as u64, &slice, 0, (w.rows * 4) as u64);
            let rows = w.rows;
            parts.push(Part { w, b: Some(slice), col0: r0 });
            r0 += rows;
        }
        rec.submit()?;
        Ok(Linear { parts, out, input })
    }

    /// Output rows `r0..r1` of a one-part layer as a layer of their own (weight rows and bias
    /// values copied on the GPU): e.g. q, k and v of a fused qkv projection.
    pub fn slice_rows(&self, gpu: &Gpu, r0: usize, r1: usize) -> MResult<Linear> {
        let p = self.one_part()?;
        let b = match &p.b {
            Some(b) => Some(slice_vector(gpu, b, r0, r1 - r0)?),
            None => None,
        };
        Ok(Linear::new(p.w.slice_rows(gpu, r0, r1)?, b))
    }

    /// Output width.
    /// The stored format of its (first) weight matrix.
    pub fn format(&self) -> crate::weights::WeightFormat {
        self.parts[0].w.format
    }

    pub fn out_dim(&self) -> usize {
        self.out
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.input
    }

    /// The weight of a one-part layer (for kernels that read several layers' weights at once).
    pub fn weight(&self) -> MResult<&Weight> {
        Ok(&self.one_part()?.w)
    }

    /// The bias of a one-part layer, if it has one.
    pub fn bias(&self) -> MResult<Option<&Tensor>> {
        Ok(self.one_part()?.b.as_ref())
    }

    fn one_part(&self) -> MResult<&Part> {
        match &self.parts[..] {
            [p] => Ok(p),
            _ => Err(ModelError::Config(format!("a {}x{} linear layer in {} parts used where one part is needed", self.out, self.input, self.parts.len()))),
        }
    }

    /// x · Wᵀ + b.
    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        self.forward_epi(rec, x, Epilogue::none())
    }

    /// act(x · Wᵀ + b).
    pub fn forward_act(&self, rec: &mut Recorder, x: &Tensor, act: Activation) -> MResult<Tensor> {
        self.forward_epi(rec, x, Epilogue::none().with_act(act))
    }

    /// (x · Wᵀ + b) · m, element-wise (SwiGLU's product).
    pub fn forward_mul(&self, rec: &mut Recorder, x: &Tensor, m: &Tensor) -> MResult<Tensor> {
        self.forward_epi(rec, x, Epilogue::none().with_mul(m))
    }

    /// x · Wᵀ + b + residual.
    pub fn forward_add(&self, rec: &mut Recorder, x: &Tensor, residual: &Tensor) -> MResult<Tensor> {
        self.forward_epi(rec, x, Epilogue::none().with_add(residual))
    }

    /// The general form: the layer's bias, then `epi`'s activation, product and sum (`epi.bias`
    /// is replaced by the layer's). A layer in parts takes an activation only.
    pub fn forward_epi(&self, rec: &mut Recorder, x: &Tensor, epi: Epilogue) -> MResult<Tensor> {
        if let [p] = &self.parts[..] {
            return Ok(linear(rec, x, &p.w, Epilogue { bias: p.b.as_ref(), ..epi })?);
        }
        if epi.mul.is_some() || epi.add.is_some() {
            return Err(ModelError::Config(format!("a {}x{} linear layer in {} parts cannot fuse a product or a sum", self.out, self.input, self.parts.len())));
        }
        let y = rec.gpu.alloc_act(&[x.rows(), self.out])?;
        for p in &self.parts {
            let part = linear(rec, x, &p.w, Epilogue { bias: p.b.as_ref(), ..epi })?;
            place_cols(rec, &part, 0, &y, p.col0)?;
        }
        Ok(y)
    }
}

/// `len` values of a 1-D tensor from `off`, as a tensor of their own (copied on the GPU).
fn slice_vector(gpu: &Gpu, v: &Tensor, off: usize, len: usize) -> MResult<Tensor> {
    let out = gpu.alloc(&[len], v.dtype)?;
    let size = v.dtype.size() as u64;
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(&v.buf.raw, off as u64 * size, &out.buf.raw, 0, len as u64 * size);
    gpu.queue.submit(Some(enc.finish()));
    Ok(out)
}
