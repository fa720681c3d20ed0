//! The Qwen2.5 text decoder (spec 6.2): token embedding; per layer x += o(Attn(RMSNorm(x))) with
//! q/k/v biases, M-RoPE and grouped-query causal attention over the KV cache, then
//! x += down(SiLU(gate(h)) * up(h)) with h = RMSNorm(x); a final RMSNorm; the tied lm_head.
//! The same code prefills (many rows: GEMM, tiled attention) and decodes (one row: GEMV).

use super::decode_plan::{DecodeKernels, DecodePlan};
use super::{KvCache, TextConfig};
use crate::gpu::{Gpu, Recorder, Tensor, TileSource};
use crate::kernels::attention::{attention, attention_ranges, Attention, AttentionOut, HeadsView};
use crate::kernels::decode::{self, gate_up_swiglu, linear_combined, qkv_rope_kv, QkvAux, QkvOut, Ranges};
use crate::kernels::embed::embed_parts;
use crate::kernels::fold::{fold_fits, linear_merged, qkv_attend};
use crate::kernels::matmul::{linear, Epilogue};
use crate::kernels::rope::{rope_inplace, RopeKind, RopeTable};
use crate::model::layers::{GatedMlp, Linear, RmsNorm};
use crate::model::{MResult, ModelError, Params, Scope};
use crate::weights::Weight;

/// One layer's part of the KV cache: keys, then from `v_base` (elements) values, each
/// [capacity, kv_dim], `past` rows written.
struct LayerKv<'a> {
    kv: &'a Tensor,
    v_base: usize,
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
        let size = rec.gpu.act.size() as u64;
        let row = kv_dim as u64 * size;
        rec.copy(&k, 0, kv.kv, kv.past as u64 * row, n as u64 * row);
        rec.copy(&v, 0, kv.kv, kv.v_base as u64 * size + kv.past as u64 * row, n as u64 * row);
        let o = attention(rec, &self.over_cache(&q, &kv))?;
        self.o_proj.forward_add(rec, &o, residual)
    }

    /// Causal attention of the rows of `q` over the cache, this step's keys and values included.
    fn over_cache<'a>(&self, q: &'a Tensor, kv: &LayerKv<'a>) -> Attention<'a> {
        let kv_dim = self.kv_heads * self.head_dim;
        let view = |off| HeadsView { t: kv.kv, tokens: kv.past + q.rows(), heads: self.kv_heads, stride: kv_dim, off };
        Attention {
            q: HeadsView::dense(q, self.heads),
            k: view(0),
            v: view(kv.v_base),
            head_dim: self.head_dim,
            causal: true,
            q_pos0: kv.past,
            segments: None,
            scale: 1.0 / (self.head_dim as f32).sqrt(),
        }
    }

    /// `forward` for a decode step in two dispatches: RMSNorm + k/v + bias + M-RoPE + the cache
    /// write, and per head q and the attention over the keys cached before, in one pass; the
    /// merge of its key ranges with this step's keys + o + residual in one GEMV.
    fn forward_folded(&self, rec: &mut Recorder, aux: &QkvAux, x: &Tensor, (pos, rope): (&Tensor, &RopeTable), kv: LayerKv) -> MResult<Tensor> {
        let out = QkvOut { cache: kv.kv, v_base: kv.v_base, past: kv.past, heads: self.heads, kv_heads: self.kv_heads, pos, rope };
        let w = [self.q_proj.weight()?, self.k_proj.weight()?, self.v_proj.weight()?];
        let folded = qkv_attend(rec, x, aux, w, &out)?;
        Ok(linear_merged(rec, &folded, self.o_proj.weight()?, self.o_proj.bias()?, x)?)
    }

    /// `forward` for a decode step in three dispatches: RMSNorm + q/k/v + bias + M-RoPE + the
    /// cache write in one GEMV; the attention; the merge of its key ranges + o + residual in one
    /// GEMV. Bit-identical to `norm.forward` then `forward`.
    fn forward_decode(&self, rec: &mut Recorder, aux: &QkvAux, x: &Tensor, (pos, rope): (&Tensor, &RopeTable), kv: LayerKv) -> MResult<Tensor> {
        let out = QkvOut { cache: kv.kv, v_base: kv.v_base, past: kv.past, heads: self.heads, kv_heads: self.kv_heads, pos, rope };
        let w = [self.q_proj.weight()?, self.k_proj.weight()?, self.v_proj.weight()?];
        let q = qkv_rope_kv(rec, x, aux, w, &out)?;
        match attention_ranges(rec, &self.over_cache(&q, &kv))? {
            AttentionOut::Done(o) => self.o_proj.forward_add(rec, &o, x),
            AttentionOut::Ranges { part, ml, n_split } => {
                let r = Ranges { part: &part, ml: &ml, n_split, heads: self.heads, head_dim: self.head_dim };
                Ok(linear_combined(rec, &r, self.o_proj.weight()?, self.o_proj.bias()?, x)?)
            }
        }
    }
}

/// A decoder layer (`llm.layers.N`).
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: SelfAttention,
    post_attention_layernorm: RmsNorm,
    mlp: GatedMlp,
    /// The input norm's weight, q/k/v biases and rotary frequencies for the fused decode pass.
    qkv_aux: QkvAux,
}

impl Layer {
    fn load(gpu: &Gpu, p: &Scope, c: &TextConfig, rope: &RopeTable) -> MResult<Layer> {
        let input_layernorm = RmsNorm::load(&p.pp("input_layernorm"), c.hidden, c.eps)?;
        let self_attn = SelfAttention::load(&p.pp("self_attn"), c)?;
        let a = &self_attn;
        let biases = [a.q_proj.bias()?, a.k_proj.bias()?, a.v_proj.bias()?].map(|b| b.expect("q/k/v are loaded with biases"));
        Ok(Layer {
            qkv_aux: QkvAux::new(gpu, input_layernorm.as_prologue(), biases, rope)?,
            input_layernorm,
            self_attn,
            post_attention_layernorm: RmsNorm::load(&p.pp("post_attention_layernorm"), c.hidden, c.eps)?,
            mlp: GatedMlp::load(&p.pp("mlp"), c.hidden, c.intermediate, false)?,
        })
    }

    /// The layer over the rows of `x` (prefill, or an unfused decode step).
    fn forward(&self, rec: &mut Recorder, x: &Tensor, rope: (&Tensor, &RopeTable), kv: LayerKv) -> MResult<Tensor> {
        let h = self.input_layernorm.forward(rec, x)?;
        let x = self.self_attn.forward(rec, &h, x, rope, kv)?;
        let h = self.post_attention_layernorm.forward(rec, &x)?;
        self.mlp.forward_add(rec, &h, &x)
    }

    /// The layer for a decode step in five dispatches: q/k/v (norm folded), the attention, o
    /// (key ranges merged in), gate/up with SiLU * up (norm folded), down; bit-identical to
    /// `forward`. With `folded`, four: the attention joins the q/k/v pass.
    fn forward_decode(&self, rec: &mut Recorder, x: &Tensor, rope: (&Tensor, &RopeTable), kv: LayerKv, folded: bool) -> MResult<Tensor> {
        let x =
            if folded { self.self_attn.forward_folded(rec, &self.qkv_aux, x, rope, kv)? } else { self.self_attn.forward_decode(rec, &self.qkv_aux, x, rope, kv)? };
        let m = &self.mlp;
        let h = gate_up_swiglu(rec, &x, Some(self.post_attention_layernorm.as_prologue()), m.gate.weight()?, m.up.weight()?)?;
        m.down.forward_add(rec, &h, &x)
    }
}

pub struct TextModel {
    pub cfg: TextConfig,
    embed: Vec<Weight>,
    lm_head: Vec<Weight>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    rope: RopeTable,
    /// The decode step's kernels by context length, where the model allows them: the adapter's
    /// default until measured (`decode_choice`), set by `SPATIAL_MLLM_DECODE`, or by a test or
    /// benchmark.
    pub decode: DecodePlan,
    /// How `decode` was decided.
    pub decode_source: TileSource,
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
        let kind = RopeKind::MRope { theta: cfg.rope_theta, sections: cfg.mrope_section };
        let rope = RopeTable::new(gpu, kind, cfg.head_dim)?;
        let layers = (0..cfg.layers).map(|l| Layer::load(gpu, &llm.pp("layers").pp(l), cfg, &rope)).collect::<MResult<Vec<_>>>()?;
        let embed = llm.matrix_parts("embed_tokens.weight", cfg.vocab, cfg.hidden)?;
        let lm_head = if cfg.tie_embeddings { embed.clone() } else { llm.matrix_parts("lm_head.weight", cfg.vocab, cfg.hidden)? };
        Ok(TextModel {
            cfg: cfg.clone(),
            embed,
            lm_head,
            layers,
            norm: RmsNorm::load(&llm.pp("norm"), cfg.hidden, cfg.eps)?,
            rope,
            decode: DecodePlan::all(DecodeKernels::for_adapter(gpu)),
            decode_source: if DecodeKernels::from_env().is_some() { TileSource::Env } else { TileSource::Default },
        })
    }

    /// The kernels a step of `rows` rows runs: `wanted` where the shapes allow it, else the
    /// nearest that they allow.
    pub fn step_kernels(&self, rows: usize, wanted: DecodeKernels) -> DecodeKernels {
        let c = &self.cfg;
        let fused = decode::fits(rows, c.hidden) && c.q_dim() <= decode::MAX_STAGED_K && c.heads <= decode::MAX_COMBINE_HEADS && (c.head_dim / 2) % 4 == 0;
        match wanted {
            _ if !fused => DecodeKernels::Separate,
            DecodeKernels::Folded if !fold_fits(c.heads, c.head_dim) => DecodeKernels::Fused,
            k => k,
        }
    }

    /// The weights' formats, as the decode step's measurement depends on them (layer 0's
    /// attention and MLP matrices, the lm_head).
    pub fn weight_formats(&self) -> String {
        let (a, m) = match self.layers.first() {
            Some(l) => (l.self_attn.q_proj.format().name(), l.mlp.gate.format().name()),
            None => ("-", "-"),
        };
        format!("attention {a}, mlp {m}, lm_head {}", self.lm_head.first().map_or("-", |w| w.format.name()))
    }

    /// Token embeddings [n, hidden] for U32 ids.
    pub fn embed(&self, rec: &mut Recorder, ids: &Tensor) -> MResult<Tensor> {
        Ok(embed_parts(rec, ids, &self.embed)?)
    }

    /// Run the decoder over `x` [n, hidden] at M-RoPE positions `pos` (I32 [n, 3]), appending
    /// to the cache; returns the final-normed hidden states [n, hidden].
    pub fn forward(&self, rec: &mut Recorder, x: Tensor, pos: &Tensor, cache: &mut KvCache, mut taps: Option<&mut Taps>) -> MResult<Tensor> {
        let kernels = self.step_kernels(x.rows(), self.decode.at(cache.len));
        let x = self.layers_forward(rec, x, pos, cache, kernels, taps.as_deref_mut())?;
        let out = self.norm.forward(rec, &x)?;
        if let Some(t) = taps {
            t.norm = Some(out.clone());
        }
        Ok(out)
    }

    /// A decode step's logits [rows, vocab]: `forward` then `logits`, with the final norm folded
    /// into the lm_head's pass (every row part of it in that one pass) where the step runs fused.
    pub fn decode_logits(&self, rec: &mut Recorder, x: Tensor, pos: &Tensor, cache: &mut KvCache) -> MResult<Tensor> {
        let kernels = self.decode.at(cache.len);
        self.decode_logits_with(rec, x, pos, cache, kernels)
    }

    /// `decode_logits` with the given kernels (where the shapes allow them).
    pub fn decode_logits_with(&self, rec: &mut Recorder, x: Tensor, pos: &Tensor, cache: &mut KvCache, kernels: DecodeKernels) -> MResult<Tensor> {
        let kernels = self.step_kernels(x.rows(), kernels);
        if kernels == DecodeKernels::Separate || self.lm_head.len() > 3 {
            let x = self.layers_forward(rec, x, pos, cache, kernels, None)?;
            let hidden = self.norm.forward(rec, &x)?;
            return self.logits(rec, &hidden);
        }
        let x = self.layers_forward(rec, x, pos, cache, kernels, None)?;
        Ok(decode::linear_normed_parts(rec, &x, self.norm.as_prologue(), &self.lm_head)?)
    }

    /// The decoder layers without the final norm.
    fn layers_forward(
        &self,
        rec: &mut Recorder,
        x: Tensor,
        pos: &Tensor,
        cache: &mut KvCache,
        kernels: DecodeKernels,
        mut taps: Option<&mut Taps>,
    ) -> MResult<Tensor> {
        let c = &self.cfg;
        let n = x.rows();
        if x.cols() != c.hidden || pos.numel() != 3 * n {
            return Err(ModelError::Input(format!("decoder input {:?} with {} positions", x.shape, pos.numel() / 3)));
        }
        cache.check_room(n)?;
        let mut x = x;
        for (l, layer) in self.layers.iter().enumerate() {
            let kv = LayerKv { kv: &cache.kv[l], v_base: cache.v_base(), past: cache.len };
            x = match kernels {
                DecodeKernels::Separate => layer.forward(rec, &x, (pos, &self.rope), kv)?,
                k => layer.forward_decode(rec, &x, (pos, &self.rope), kv, k == DecodeKernels::Folded)?,
            };
            if let Some(t) = taps.as_deref_mut() {
                t.layers.push(x.clone());
            }
            if n > 1 {
                rec.flush()?; // a prefill: let the next layer reuse this one's temporaries
            }
        }
        cache.len += n;
        Ok(x)
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
