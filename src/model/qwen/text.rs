//! The Qwen2.5 text decoder (spec 6.2): token embedding; per layer x += o(Attn(RMSNorm(x))) with
//! q/k/v biases, M-RoPE and grouped-query causal attention over the KV cache, then
//! x += down(SiLU(gate(h)) * up(h)) with h = RMSNorm(x); a final RMSNorm; the tied lm_head.
//! The same code prefills (many rows: GEMM, tiled attention) and decodes (one row: GEMV).

use super::{KvCache, TextConfig};
use crate::gpu::{Recorder, Tensor};
use crate::kernels::attention::{attention, Attention, HeadsView};
use crate::kernels::embed::embed_parts;
use crate::kernels::matmul::{linear, Epilogue};
use crate::kernels::rope::{rope_inplace, RopeKind, RopeTable};
use crate::model::layers::{GatedMlp, Linear, RmsNorm};
use crate::model::{MResult, ModelError, Params, Scope};
use crate::weights::Weight;

/// One layer's part of the KV cache: keys and values [capacity, kv_dim], `past` rows written.
struct LayerKv<'a> {
    k: &'a Tensor,
    v: &'a Tensor,
    past: usize,
}

/// Grouped-query self-attention (`self_attn`) with biased q/k/v projections, M-RoPE and the KV
/// cache.
struct SelfAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    fn load(p: &Scope, c: &TextConfig) -> MResult<SelfAttention> {
        let (h, q, kv) = (c.hidden, c.q_dim(), c.kv_dim());
        Ok(SelfAttention {
            q_proj: Linear::load(&p.pp("q_proj"), q, h)?,
            k_proj: Linear::load(&p.pp("k_proj"), kv, h)?,
            v_proj: Linear::load(&p.pp("v_proj"), kv, h)?,
            o_proj: Linear::load_no_bias(&p.pp("o_proj"), h, q)?,
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
        })
    }

    /// residual + o(Attn(q(h), k(h), v(h))), causal over the cache's rows and the rows of `h`
    /// (M-RoPE positions `pos`, [rows, 3]); appends this call's keys and values to `kv`.
    fn forward(&self, rec: &mut Recorder, h: &Tensor, residual: &Tensor, (pos, rope): (&Tensor, &RopeTable), kv: LayerKv) -> MResult<Tensor> {
        let n = h.rows();
        let (q_dim, kv_dim) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        let q = self.q_proj.forward(rec, h)?;
        let k = self.k_proj.forward(rec, h)?;
        let v = self.v_proj.forward(rec, h)?;
        rope_inplace(rec, &q, self.heads, q_dim, 0, pos, rope)?;
        rope_inplace(rec, &k, self.kv_heads, kv_dim, 0, pos, rope)?;
        let row = (kv_dim * rec.gpu.act.size()) as u64;
        rec.copy(&k, 0, kv.k, kv.past as u64 * row, n as u64 * row);
        rec.copy(&v, 0, kv.v, kv.past as u64 * row, n as u64 * row);
        let view = |t| HeadsView { t, tokens: kv.past + n, heads: self.kv_heads, stride: kv_dim, off: 0 };
        let o = attention(
            rec,
            &Attention {
                q: HeadsView::dense(&q, self.heads),
                k: view(kv.k),
                v: view(kv.v),
                head_dim: self.head_dim,
                causal: true,
                q_pos0: kv.past,
                segments: None,
                scale: 1.0 / (self.head_dim as f32).sqrt(),
            },
        )?;
        self.o_proj.forward_add(rec, &o, residual)
    }
}

/// A decoder layer (`llm.layers.N`).
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: SelfAttention,
    post_attention_layernorm: RmsNorm,
    mlp: GatedMlp,
}

impl Layer {
    fn load(p: &Scope, c: &TextConfig) -> MResult<Layer> {
        Ok(Layer {
            input_layernorm: RmsNorm::load(&p.pp("input_layernorm"), c.hidden, c.eps)?,
            self_attn: SelfAttention::load(&p.pp("self_attn"), c)?,
            post_attention_layernorm: RmsNorm::load(&p.pp("post_attention_layernorm"), c.hidden, c.eps)?,
            mlp: GatedMlp::load(&p.pp("mlp"), c.hidden, c.intermediate, false)?,
        })
    }
}

pub struct TextModel {
    pub cfg: TextConfig,
    embed: Vec<Weight>,
    lm_head: Vec<Weight>,
    layers: Vec<Layer>,
    norm: RmsNorm,
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
        let llm = p.pp("llm");
        let layers = (0..cfg.layers).map(|l| Layer::load(&llm.pp("layers").pp(l), cfg)).collect::<MResult<Vec<_>>>()?;
        let embed = llm.matrix_parts("embed_tokens.weight", cfg.vocab, cfg.hidden)?;
        let lm_head = if cfg.tie_embeddings { embed.clone() } else { llm.matrix_parts("lm_head.weight", cfg.vocab, cfg.hidden)? };
        let kind = RopeKind::MRope { theta: cfg.rope_theta, sections: cfg.mrope_section };
        Ok(TextModel {
            cfg: cfg.clone(),
            embed,
            lm_head,
            layers,
            norm: RmsNorm::load(&llm.pp("norm"), cfg.hidden, cfg.eps)?,
            rope: RopeTable::new(gpu, kind, cfg.head_dim)?,
        })
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
        let mut x = x;
        for (l, layer) in self.layers.iter().enumerate() {
            let h = layer.input_layernorm.forward(rec, &x)?;
            let kv = LayerKv { k: &cache.k[l], v: &cache.v[l], past: cache.len };
            x = layer.self_attn.forward(rec, &h, &x, (pos, &self.rope), kv)?;
            let h = layer.post_attention_layernorm.forward(rec, &x)?;
            x = layer.mlp.forward_add(rec, &h, &x)?;
            if let Some(t) = taps.as_deref_mut() {
                t.layers.push(x.clone());
            }
            if n > 1 {
                rec.flush()?; // a prefill: let the next layer reuse this one's temporaries
            }
        }
        cache.len += n;
        let out = self.norm.forward(rec, &x)?;
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
