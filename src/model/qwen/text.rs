//! The Qwen2.5 text decoder (spec 6.2): token embedding; per layer x += o(Attn(RMSNorm(x))) with
//! q/k/v biases, M-RoPE and grouped-query causal attention over the KV cache, then
//! x += down(SiLU(gate(h)) * up(h)) with h = RMSNorm(x); a final RMSNorm; the tied lm_head.
//! The same code prefills (many rows: GEMM, tiled attention) and decodes (one row: GEMV).

use super::{KvCache, TextConfig};
use crate::gpu::{Recorder, Tensor};
use crate::kernels::attention::{attention, Attention, HeadsView};
use crate::kernels::embed::embed_parts;
use crate::kernels::matmul::{linear, Activation, Epilogue};
use crate::kernels::norm::rms_norm;
use crate::kernels::rope::{rope_inplace, RopeKind, RopeTable};
use crate::model::{MResult, ModelError, Params};
use crate::weights::Weight;

struct Layer {
    input_norm: Tensor,
    q: Weight,
    q_bias: Tensor,
    k: Weight,
    k_bias: Tensor,
    v: Weight,
    v_bias: Tensor,
    o: Weight,
    post_norm: Tensor,
    gate: Weight,
    up: Weight,
    down: Weight,
}

pub struct TextModel {
    pub cfg: TextConfig,
    embed: Vec<Weight>,
    lm_head: Vec<Weight>,
    layers: Vec<Layer>,
    norm: Tensor,
    rope: RopeTable,
}

/// Intermediate activations, for parity tests: the embedded input, each layer's output, the
/// final norm's output.
#[derive(Default)]
pub struct Taps {
    pub layers: Vec<Tensor>,
    pub norm: Option<Tensor>,
}

impl TextModel {
    pub fn new(gpu: &crate::gpu::Gpu, cfg: &TextConfig, p: &Params) -> MResult<TextModel> {
        let (h, q, kv, i) = (cfg.hidden, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate);
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let n = |s: &str| format!("llm.layers.{l}.{s}");
            layers.push(Layer {
                input_norm: p.vector(&n("input_layernorm.weight"), h)?,
                q: p.matrix(&n("self_attn.q_proj.weight"), q, h)?,
                q_bias: p.vector(&n("self_attn.q_proj.bias"), q)?,
                k: p.matrix(&n("self_attn.k_proj.weight"), kv, h)?,
                k_bias: p.vector(&n("self_attn.k_proj.bias"), kv)?,
                v: p.matrix(&n("self_attn.v_proj.weight"), kv, h)?,
                v_bias: p.vector(&n("self_attn.v_proj.bias"), kv)?,
                o: p.matrix(&n("self_attn.o_proj.weight"), h, q)?,
                post_norm: p.vector(&n("post_attention_layernorm.weight"), h)?,
                gate: p.matrix(&n("mlp.gate_proj.weight"), i, h)?,
                up: p.matrix(&n("mlp.up_proj.weight"), i, h)?,
                down: p.matrix(&n("mlp.down_proj.weight"), h, i)?,
            });
        }
        let embed = p.matrix_parts("llm.embed_tokens.weight", cfg.vocab, h)?;
        let lm_head = if cfg.tie_embeddings { embed.clone() } else { p.matrix_parts("llm.lm_head.weight", cfg.vocab, h)? };
        let kind = RopeKind::MRope { theta: cfg.rope_theta, sections: cfg.mrope_section };
        Ok(TextModel { cfg: cfg.clone(), embed, lm_head, layers, norm: p.vector("llm.norm.weight", h)?, rope: RopeTable::new(gpu, kind, cfg.head_dim)? })
    }

    /// Token embeddings [n, hidden] for U32 ids.
    pub fn embed(&self, rec: &mut Recorder, ids: &Tensor) -> MResult<Tensor> {
        Ok(embed_parts(rec, ids, &self.embed)?)
    }

    /// Run the decoder over `x` [n, hidden] at M-RoPE positions `pos` (I32 [n, 3]), appending
    /// to the cache; returns the final-normed hidden states [n, hidden].
    pub fn forward(&self, rec: &mut Recorder, x: Tensor, pos: &Tensor, cache: &mut KvCache, mut taps: Option<&mut Taps>) -> MResult<Tensor> {
        let c = &self.cfg;
        let n = x.rows();
        if x.cols() != c.hidden || pos.numel() != 3 * n {
            return Err(ModelError::Input(format!("decoder input {:?} with {} positions", x.shape, pos.numel() / 3)));
        }
        cache.check_room(n)?;
        let act = rec.gpu.act.size() as u64;
        let kv_bytes = (c.kv_dim() as u64) * act;
        let mut x = x;
        for (l, w) in self.layers.iter().enumerate() {
            let h = rms_norm(rec, &x, &w.input_norm, c.eps)?;
            let q = linear(rec, &h, &w.q, Epilogue::bias(Some(&w.q_bias)))?;
            let k = linear(rec, &h, &w.k, Epilogue::bias(Some(&w.k_bias)))?;
            let v = linear(rec, &h, &w.v, Epilogue::bias(Some(&w.v_bias)))?;
            rope_inplace(rec, &q, c.heads, c.q_dim(), 0, pos, &self.rope)?;
            rope_inplace(rec, &k, c.kv_heads, c.kv_dim(), 0, pos, &self.rope)?;
            let at = cache.len as u64 * kv_bytes;
            rec.copy(&k, 0, &cache.k[l], at, n as u64 * kv_bytes);
            rec.copy(&v, 0, &cache.v[l], at, n as u64 * kv_bytes);
            let total = cache.len + n;
            let kv_view = |t| HeadsView { t, tokens: total, heads: c.kv_heads, stride: c.kv_dim(), off: 0 };
            let o = attention(
                rec,
                &Attention {
                    q: HeadsView::dense(&q, c.heads),
                    k: kv_view(&cache.k[l]),
                    v: kv_view(&cache.v[l]),
                    head_dim: c.head_dim,
                    causal: true,
                    q_pos0: cache.len,
                    segments: None,
                    scale: 1.0 / (c.head_dim as f32).sqrt(),
                },
            )?;
            x = linear(rec, &o, &w.o, Epilogue::none().with_add(&x))?;
            let h = rms_norm(rec, &x, &w.post_norm, c.eps)?;
            let g = linear(rec, &h, &w.gate, Epilogue::none().with_act(Activation::Silu))?;
            let u = linear(rec, &h, &w.up, Epilogue::none().with_mul(&g))?;
            x = linear(rec, &u, &w.down, Epilogue::none().with_add(&x))?;
            if let Some(t) = taps.as_deref_mut() {
                t.layers.push(x.clone());
            }
            if n > 1 {
                rec.flush()?; // a prefill: let the next layer reuse this one's temporaries
            }
        }
        cache.len += n;
        let out = rms_norm(rec, &x, &self.norm, c.eps)?;
        if let Some(t) = taps {
            t.norm = Some(out.clone());
        }
        Ok(out)
    }

    /// Logits [rows, vocab] of the given hidden rows. A head split into parts (the real 151 936 x
    /// 2048 table) is computed part by part into column ranges, which needs one row at a time.
    pub fn logits(&self, rec: &mut Recorder, hidden: &Tensor) -> MResult<Tensor> {
        if self.lm_head.len() == 1 {
            return Ok(linear(rec, hidden, &self.lm_head[0], Epilogue::none())?);
        }
        if hidden.rows() != 1 {
            return Err(ModelError::Input("logits of a split lm_head: one row at a time".into()));
        }
        let gpu = rec.gpu;
        let out = gpu.alloc_act(&[1, self.cfg.vocab])?;
        let act = gpu.act.size() as u64;
        let mut col = 0u64;
        for part in &self.lm_head {
            if (col * act) % 4 != 0 {
                return Err(ModelError::Config("lm_head parts must start at an even row for f16 copies: convert with another --shard-kib".into()));
            }
            let y = linear(rec, hidden, part, Epilogue::none())?;
            rec.copy(&y, 0, &out, col * act, part.rows as u64 * act);
            col += part.rows as u64;
        }
        Ok(out)
    }

    /// The last row of `hidden` as a [1, hidden] tensor.
    pub fn last_row(&self, rec: &mut Recorder, hidden: &Tensor) -> MResult<Tensor> {
        let gpu = rec.gpu;
        let (n, d) = (hidden.rows(), hidden.cols());
        let out = gpu.alloc(&[1, d], hidden.dtype)?;
        let s = hidden.dtype.size() as u64;
        rec.copy(hidden, ((n - 1) * d) as u64 * s, &out, 0, d as u64 * s);
        Ok(out)
    }
}
