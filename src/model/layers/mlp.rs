//! The MLPs: fc1 → GELU → fc2, and Qwen's SwiGLU.

use super::Linear;
use crate::gpu::{Recorder, Tensor};
use crate::kernels::matmul::Activation;
use crate::model::params::Scope;
use crate::model::MResult;

/// fc2(GELU(fc1(x))), both with biases (ViT / DINOv2 / VGGT blocks, the patch merger, the
/// connectors). Checkpoints name the two layers `fc1` / `fc2` or, as an `nn.Sequential`, `0` / `2`.
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    /// `names` of the two layers under `p`; `input` → `hidden` → `out`.
    pub fn load(p: &Scope, names: [&str; 2], input: usize, hidden: usize, out: usize) -> MResult<Mlp> {
        Ok(Mlp { fc1: Linear::load(&p.pp(names[0]), hidden, input)?, fc2: Linear::load(&p.pp(names[1]), out, hidden)? })
    }

    pub fn forward(&self, rec: &mut Recorder, x: &Tensor) -> MResult<Tensor> {
        let h = self.fc1.forward_act(rec, x, Activation::Gelu)?;
        self.fc2.forward(rec, &h)
    }

    /// fc2(GELU(fc1(x))) + residual, the sum fused into fc2.
    pub fn forward_add(&self, rec: &mut Recorder, x: &Tensor, residual: &Tensor) -> MResult<Tensor> {
        let h = self.fc1.forward_act(rec, x, Activation::Gelu)?;
        self.fc2.forward_add(rec, &h, residual)
    }
}

/// Qwen2.5's SwiGLU MLP: down_proj(SiLU(gate_proj(x)) · up_proj(x)); the language model's layers
/// have no biases, the vision encoder's have.
pub struct GatedMlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl GatedMlp {
    /// `gate_proj`, `up_proj`, `down_proj` under `p`: `hidden` → `intermediate` → `hidden`.
    pub fn load(p: &Scope, hidden: usize, intermediate: usize, bias: bool) -> MResult<GatedMlp> {
        let lin = |name: &str, out, input| if bias { Linear::load(&p.pp(name), out, input) } else { Linear::load_no_bias(&p.pp(name), out, input) };
        Ok(GatedMlp { gate: lin("gate_proj", intermediate, hidden)?, up: lin("up_proj", intermediate, hidden)?, down: lin("down_proj", hidden, intermediate)? })
    }

    /// down(SiLU(gate(x)) · up(x)) + residual: the activation, the product and the sum fused
    /// into the three matmuls.
    pub fn forward_add(&self, rec: &mut Recorder, x: &Tensor, residual: &Tensor) -> MResult<Tensor> {
        let g = self.gate.forward_act(rec, x, Activation::Silu)?;
        let h = self.up.forward_mul(rec, x, &g)?;
        self.down.forward_add(rec, &h, residual)
    }
}
