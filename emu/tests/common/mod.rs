//! The emulated-kernel launch the emulator's tests share: host buffers for every output,
//! pre-filled so that unwritten entries show, one parameter block, the launcher's block of 128.
#![allow(dead_code)] // each test binary uses part of it

use circot::cuda::SinkhornParams;
use circot_emu::{Mode, SfuCounts, launch_counting};

/// xorshift64*: deterministic test data without dependencies.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [0, 1), 24 bits.
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Every output of one launch.
pub struct Outputs {
    pub loss: Vec<f32>,
    pub transport_cost: Vec<f32>,
    pub f: Vec<f32>,
    pub g: Vec<f32>,
    pub grad_source: Vec<f32>,
    pub iterations: Vec<i32>,
    pub marginal_error: Vec<f32>,
    pub plan: Vec<f32>,
}

/// A deterministic, non-symmetric K × K cost with zero diagonal.
pub fn cost(k: usize) -> Vec<f32> {
    (0..k * k)
        .map(|x| {
            if x / k == x % k {
                0.0
            } else {
                0.25 + ((x * 37 + 11) % 17) as f32 / 16.0
            }
        })
        .collect()
}

/// A deterministic distribution over `k` classes.
pub fn distribution(k: usize, seed: usize) -> Vec<f32> {
    let w: Vec<f32> = (0..k)
        .map(|i| 1.0 + ((i * 7 + seed * 5) % 11) as f32)
        .collect();
    let total: f32 = w.iter().sum();
    w.iter().map(|x| x / total).collect()
}

/// One launch of `kernel` on `batch` problems of `k` classes.
pub struct Launch<'a> {
    pub kernel: &'a str,
    pub k: usize,
    pub batch: usize,
    /// Blocks; `None`: the launcher's geometry.
    pub grid: Option<u32>,
    pub source: &'a [f32],
    pub target: Option<&'a [f32]>,
    pub labels: Option<&'a [i64]>,
    pub cost: &'a [f32],
    pub max_iters: i32,
    pub smoothing: f32,
    /// What the outputs hold before the launch (iterations get `fill as i32`).
    pub fill: f32,
}

/// Runs the launch (ε = 0.1, tolerance 1e-5) and returns its outputs.
pub fn solve(l: &Launch<'_>) -> Outputs {
    solve_with(l, 0.1, 1e-5).0
}

/// Runs the launch with ε and tolerance `tol` (0: every problem runs `max_iters`) in the mode
/// `CIRCOT_EMU_MODE` names, and returns its outputs and SFU evaluations.
pub fn solve_with(l: &Launch<'_>, eps: f32, tol: f32) -> (Outputs, SfuCounts) {
    let (batch, k) = (l.batch, l.k);
    let mut o = Outputs {
        loss: vec![l.fill; batch],
        transport_cost: vec![l.fill; batch],
        f: vec![l.fill; batch * k],
        g: vec![l.fill; batch * k],
        grad_source: vec![l.fill; batch * k],
        iterations: vec![if l.fill.is_nan() { -1 } else { l.fill as i32 }; batch],
        marginal_error: vec![l.fill; batch],
        plan: vec![l.fill; batch * k * k],
    };
    let params = SinkhornParams {
        source: l.source.as_ptr() as u64,
        target: l.target.map_or(0, |t| t.as_ptr() as u64),
        labels: l.labels.map_or(0, |y| y.as_ptr() as u64),
        cost: l.cost.as_ptr() as u64,
        loss: o.loss.as_mut_ptr() as u64,
        transport_cost: o.transport_cost.as_mut_ptr() as u64,
        f: o.f.as_mut_ptr() as u64,
        g: o.g.as_mut_ptr() as u64,
        grad_source: o.grad_source.as_mut_ptr() as u64,
        grad_logits: 0,
        iterations: o.iterations.as_mut_ptr() as u64,
        marginal_error: o.marginal_error.as_mut_ptr() as u64,
        plan: o.plan.as_mut_ptr() as u64,
        init_g: 0,
        batch: batch as i64,
        k: k as i32,
        max_iters: l.max_iters,
        eps,
        tol,
        smoothing: l.smoothing,
        source_is_logits: 0,
        convention: 0,
        round_cap: l.max_iters,
        ..Default::default()
    };
    let per_problem = if l.kernel.ends_with("_kn") { 32 } else { 1 };
    let grid = l.grid.unwrap_or((batch * per_problem).div_ceil(128) as u32);
    // SAFETY: params mirrors SinkhornParams; every pointer is a live host buffer sized for `batch`
    // problems of k classes (plan k × k), inputs are read-only, and nothing else touches them.
    let sfu = unsafe {
        launch_counting(
            Mode::from_env(),
            l.kernel,
            [grid, 1, 1],
            [128, 1, 1],
            0,
            (&raw const params).cast(),
            size_of::<SinkhornParams>(),
        )
    }
    .unwrap();
    (o, sfu)
}
