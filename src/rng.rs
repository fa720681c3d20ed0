//! A small seeded random source: uniform and normal values for random weights (`convert
//! --random`, the benchmarks), the weight-format error table and the tests.

/// Seeded random numbers (the seed is printed so a failure can be replayed).
pub struct Rng(fastrand::Rng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(fastrand::Rng::with_seed(seed))
    }
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.0.f32()
    }
    pub fn normal(&mut self) -> f32 {
        // Box-Muller.
        let u1 = self.0.f64().max(1e-300);
        let u2 = self.0.f64();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    pub fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }
    pub fn unit(&mut self) -> f64 {
        self.0.f64()
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }
}
