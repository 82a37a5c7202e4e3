//! Sinkhorn through the cost's Gibbs kernel `K_ij = e^{−C_ij/ε}`, on `L` problems at once (one
//! per SIMD lane), with no exponential or logarithm inside the iteration.
//!
//! The separable form of the f-update's log-sum-exp, with `m = max_j x_j`,
//!
//! ```text
//! LSE_j(x_j − C_ij/ε) = m + log Σ_j K_ij·e^{x_j − m},     x_j = log β_j + v_j,
//! ```
//!
//! needs `e^{x_j − m}` only as a vector, and that vector is the previous g-update's output up to a
//! scalar: carried as scalings, one iteration is two K × K matrix-vector products and 2K
//! divisions. Per problem the state is `a∘U = z·2^Z` and `β∘V = w·2^W` (`U = e^{f/ε}`,
//! `V = e^{g/ε}`), each vector normalised by the power of two at or below its maximum, so
//! `max z, max w ∈ [1, 2)`, the normalisation is exact, and the scale is an integer:
//!
//! ```text
//! f-update: s = K w,   q = a / s,   z = q·2^{−e},  Z = e − W      (e = ⌊log2 max q⌋)
//! g-update: t = Kᵀz,   p = β / t,   w = p·2^{−e'}, W = e' − Z     (e' = ⌊log2 max p⌋)
//! check:    s̃ = K w (the next f-update's product),  row sums r_i = z_i·s̃_i·2^{e'}
//! result:   f_i = −ε(ln s_i + W·ln 2),  g_j = −ε(ln t_j + Z·ln 2)  (W before the g-update)
//! ```
//!
//! **When it is exact.** Every term is positive, so the sums have relative rounding error at most
//! about `K·ε_mach`, the same order as the log-domain form. The one requirement is range: with
//! `M = max C/ε`, `K_ij ≥ e^{−M}` and, because `max w ≥ 1`, every `s_i, t_j ≥ e^{−M}`. So with
//! `M ≤ 50` in f32 (`e^{−50} ≈ 2·10⁻²²`) and `M ≤ 500` in f64 (`e^{−500} ≈ 7·10⁻²¹⁸`), every sum
//! is a normal number at least 10¹⁶ (f32) or 10⁹⁰ (f64) times the smallest normal, so a term
//! that underflows weighs less than 10⁻¹⁶ of its sum: below the precision. Beyond those bounds
//! the backend uses the log-domain form (`log_domain.rs`).
//!
//! **Independence of lanes.** Each lane's arithmetic reads only its own problem (and the shared
//! kernel), every operation is an IEEE add, multiply, divide or compare (no fused multiply-add,
//! which Rust never introduces by itself), and lanes that finished keep computing harmlessly. So a
//! problem gets the same bits in any lane, beside any neighbours, on any SIMD width.

// Loops index by class and by lane because that is the layout the vectoriser needs to see.
#![allow(clippy::needless_range_loop)]
use super::rows::ProblemRows;
use super::warm_start::warm_start_shift;
use crate::cost::{CostMatrix, MAX_CLASSES};
use crate::element::{Dtype, Real};
use crate::problem::{SolveOptions, scaling_form};

/// Whether `max C/ε` is where the Gibbs-kernel form is exact to rounding, per element type (see the
/// module documentation): at most the range bound, and not so small that ε·ε_mach matters.
pub(super) fn applies<T: Real>(cost: &CostMatrix, eps: f64) -> bool {
    scaling_form::<T>(cost.max(), eps)
}

/// What every lane shares: the Gibbs kernel and the stopping rule.
pub(super) struct Gibbs<T> {
    pub k: usize,
    /// `e^{−C_ij/ε}`, row-major.
    pub kernel: Vec<T>,
    /// Its transpose, so both products read rows.
    pub kernel_t: Vec<T>,
    /// `K_ij·C_ij / 2^s`, for `⟨P, C⟩`: `2^s` is the power of two at or below max C, so that
    /// the products with the column factors `β_j/t_j` (up to `e^{max C/ε}`) cannot overflow
    /// where C is large (in f32 they did from max C ≈ 10¹⁶); the scaling is exact.
    pub kernel_cost: Vec<T>,
    /// `2^s`.
    pub cost_scale: T,
    /// The cost in the element type.
    pub cost: Vec<T>,
    pub eps: T,
    pub max_iters: u32,
    pub tol: T,
}

impl<T: Real> Gibbs<T> {
    pub fn new(cost: &CostMatrix, options: &SolveOptions) -> Self {
        let k = cost.k();
        let kernel: Vec<T> = (0..k * k)
            .map(|n| T::from_f64((-cost.get(n / k, n % k) / options.eps).exp()))
            .collect();
        let kernel_t = (0..k * k).map(|n| kernel[(n % k) * k + n / k]).collect();
        let cost_t: Vec<T> = cost.to_vec();
        let scale = crate::scale::pow2_scale(cost.max());
        let cost_scale = T::from_f64(scale);
        let kernel_cost = kernel
            .iter()
            .zip(cost.view())
            .map(|(&k, &c)| k * T::from_f64(c / scale))
            .collect();
        Gibbs {
            k,
            kernel,
            kernel_t,
            kernel_cost,
            cost_scale,
            cost: cost_t,
            eps: T::from_f64(options.eps),
            max_iters: options.max_iters,
            tol: T::from_f64(options.effective_tol::<T>(k, cost.max())),
        }
    }
}

impl<T: Real> Gibbs<T> {
    /// `⟨P, C⟩` for the plan `P_ij = z_i·K_ij·p_j`: `Σ_i z_i·Σ_j (K∘C)_ij·p_j`.
    pub fn transport_cost(&self, z: &[T; MAX_CLASSES], p: &[T; MAX_CLASSES]) -> T {
        let mut total = T::zero();
        for (row, &z_i) in self.kernel_cost.chunks_exact(self.k).zip(z) {
            let inner = row
                .iter()
                .zip(p)
                .fold(T::zero(), |acc, (&kc, &p_j)| acc + kc * p_j);
            total = total + z_i * inner;
        }
        total * self.cost_scale
    }

    /// The plan `P_ij = z_i·K_ij·p_j`, row-major.
    pub fn plan(&self, z: &[T; MAX_CLASSES], p: &[T; MAX_CLASSES], plan: &mut [T]) {
        let k = self.k;
        for (i, &z_i) in z[..k].iter().enumerate() {
            for j in 0..k {
                plan[i * k + j] = z_i * self.kernel[i * k + j] * p[j];
            }
        }
    }
}

/// One value per lane.
pub(super) type Lanes<T, const L: usize> = [T; L];

/// `[f(0), …, f(L − 1)]` as a plain loop: `std::array::from_fn` goes through a helper that LLVM
/// does not inline, which leaves the lanes scalar and outside the SIMD wrapper's features.
#[inline(always)]
pub(super) fn lanewise<X: Copy + Default, const L: usize>(f: impl Fn(usize) -> X) -> [X; L] {
    let mut out = [X::default(); L];
    for (l, x) in out.iter_mut().enumerate() {
        *x = f(l);
    }
    out
}

/// `⌊log2 x⌋` for a positive normal `x`, from its exponent bits.
#[inline(always)]
pub(super) fn exponent<T: Real>(x: T) -> i32 {
    if T::DTYPE == Dtype::F32 {
        ((bytemuck::cast::<T, u32>(x) >> 23) & 0xff) as i32 - 127
    } else {
        ((bytemuck::cast::<T, u64>(x) >> 52) & 0x7ff) as i32 - 1023
    }
}

/// `2^e`, exactly (the callers keep `e` well inside the normal range of `T`).
#[inline(always)]
pub(super) fn pow2<T: Real>(e: i32) -> T {
    if T::DTYPE == Dtype::F32 {
        bytemuck::cast::<u32, T>(((e + 127) as u32) << 23)
    } else {
        bytemuck::cast::<u64, T>(((e + 1023) as u64) << 52)
    }
}

/// `out_r = scale·Σ_c m[r][c]·x_c` for every lane, each sum in a fixed order (c ascending from
/// 0); `scale` is a power of two, so it commutes exactly with the sum's roundings. Four rows at
/// a time: four independent accumulator chains hide the add latency, and each `x_c` is loaded
/// once per four rows.
#[inline(always)]
pub(super) fn product<T: Real, const L: usize>(
    k: usize,
    m: &[T],
    x: &[Lanes<T, L>; MAX_CLASSES],
    scale: &Lanes<T, L>,
    out: &mut [Lanes<T, L>; MAX_CLASSES],
) {
    let mut r = 0;
    while r + 4 <= k {
        let (mut acc0, mut acc1, mut acc2, mut acc3) = (
            [T::zero(); L],
            [T::zero(); L],
            [T::zero(); L],
            [T::zero(); L],
        );
        for (c, x_c) in x[..k].iter().enumerate() {
            let (m0, m1, m2, m3) = (
                m[r * k + c],
                m[(r + 1) * k + c],
                m[(r + 2) * k + c],
                m[(r + 3) * k + c],
            );
            for l in 0..L {
                acc0[l] = acc0[l] + m0 * x_c[l];
                acc1[l] = acc1[l] + m1 * x_c[l];
                acc2[l] = acc2[l] + m2 * x_c[l];
                acc3[l] = acc3[l] + m3 * x_c[l];
            }
        }
        for l in 0..L {
            out[r][l] = acc0[l] * scale[l];
            out[r + 1][l] = acc1[l] * scale[l];
            out[r + 2][l] = acc2[l] * scale[l];
            out[r + 3][l] = acc3[l] * scale[l];
        }
        r += 4;
    }
    for (r, out_r) in out[..k].iter_mut().enumerate().skip(r) {
        let row = &m[r * k..(r + 1) * k];
        let mut acc = [T::zero(); L];
        for (&m_rc, x_c) in row.iter().zip(&x[..k]) {
            for l in 0..L {
                acc[l] = acc[l] + m_rc * x_c[l];
            }
        }
        for l in 0..L {
            out_r[l] = acc[l] * scale[l];
        }
    }
}

/// `y = num / den`; returns `⌊log2 max y⌋` per lane.
#[inline(always)]
pub(super) fn divide<T: Real, const L: usize>(
    k: usize,
    num: &[Lanes<T, L>; MAX_CLASSES],
    den: &[Lanes<T, L>; MAX_CLASSES],
    y: &mut [Lanes<T, L>; MAX_CLASSES],
) -> Lanes<i32, L> {
    let mut max = [T::zero(); L];
    for r in 0..k {
        for l in 0..L {
            let q = num[r][l] / den[r][l];
            y[r][l] = q;
            max[l] = if q > max[l] { q } else { max[l] };
        }
    }
    lanewise(|l| exponent(max[l]))
}

/// `2^{−e}` per lane.
#[inline(always)]
pub(super) fn inverse_octaves<T: Real, const L: usize>(e: &Lanes<i32, L>) -> Lanes<T, L> {
    lanewise(|l| pow2(-e[l]))
}

/// The state of `L` problems, one per lane; vectors are stored class-major (`x[i][lane]`).
/// The normalised vectors of the module documentation are kept unnormalised, with their
/// exponents: `z = q·2^{−e}` and `w = p·2^{−e'}`; the power of two is applied where a product
/// finishes each row, which is exact and saves a pass.
pub(super) struct Block<T, const L: usize> {
    a: [Lanes<T, L>; MAX_CLASSES],
    beta: [Lanes<T, L>; MAX_CLASSES],
    /// `p = β / t` (or the warm start's `β∘e^{g/ε}`), with `β∘V = p·2^{W − e'}`.
    p: [Lanes<T, L>; MAX_CLASSES],
    /// `e' = ⌊log2 max p⌋`.
    p_exp: Lanes<i32, L>,
    /// `W`.
    w_exp: Lanes<i32, L>,
    /// `s = K w` for the current `w`.
    s: [Lanes<T, L>; MAX_CLASSES],
    /// `K w` of the previous `w`, the one the last f-update divided by.
    s_prev: [Lanes<T, L>; MAX_CLASSES],
    /// The `W` that went with `s_prev`.
    w_exp_prev: Lanes<i32, L>,
    /// `q = a / s`, with `a∘U = q·2^{Z − e}`.
    q: [Lanes<T, L>; MAX_CLASSES],
    /// `e = ⌊log2 max q⌋`.
    q_exp: Lanes<i32, L>,
    /// `Z`.
    z_exp: Lanes<i32, L>,
    /// `t = Kᵀ z`.
    t: [Lanes<T, L>; MAX_CLASSES],
    /// L1 row-marginal error after the last g-update.
    error: Lanes<T, L>,
}

impl<T: Real, const L: usize> LaneSolver<T, L> for Block<T, L> {
    /// Every lane holds the uniform problem at its fixed point's start: idle lanes then compute
    /// finite, normal numbers.
    fn new(k: usize) -> Box<Self> {
        let zero = [[T::zero(); L]; MAX_CLASSES];
        let uniform = T::one() / T::from_f64(k as f64);
        let mut block = Box::new(Block {
            a: zero,
            beta: zero,
            p: zero,
            p_exp: [0; L],
            w_exp: [0; L],
            s: zero,
            s_prev: zero,
            w_exp_prev: [0; L],
            q: zero,
            q_exp: [0; L],
            z_exp: [0; L],
            t: zero,
            error: [T::zero(); L],
        });
        for i in 0..k {
            block.a[i] = [uniform; L];
            block.beta[i] = [uniform; L];
            block.p[i] = [T::one(); L];
            block.s[i] = [T::one(); L];
            block.t[i] = [T::one(); L];
        }
        block
    }

    /// Puts a problem in `lane`, with the first f-update's input `β∘e^{g/ε}` from `init_g` (KL
    /// units), or `β` itself from g = 0. The lane's `s` is then stale until
    /// [`prime`](Self::prime).
    fn load(&mut self, gibbs: &Gibbs<T>, lane: usize, rows: &ProblemRows<T>, init_g: Option<&[T]>) {
        let k = gibbs.k;
        // From a warm start, g is defined up to a constant: shift it by its maximum over the
        // target's support before dividing by ε, so that β∘e^{(g − top)/ε} ≤ β stays in range
        // however large g/ε is (an octave count taken from max g/ε would overflow i32 or be
        // infinite), then by the power of two nearest its sum e^L (`driver::warm_start_shift`;
        // exact, and none for a constant start), which leaves an offset of at most ε·ln2/2.
        let mut scaled = [T::zero(); MAX_CLASSES];
        match init_g {
            None => scaled[..k].copy_from_slice(rows.beta()),
            Some(g) => {
                let (top, log_mass) = warm_start_shift(g, rows.beta(), rows.log_beta(), gibbs.eps);
                let octaves = (log_mass * T::from_f64(std::f64::consts::LOG2_E))
                    .round()
                    .as_f64() as i32;
                // 2^{−n} in two factors: n reaches −1074 (f64) or −149 (f32).
                let (up, rest) = (
                    pow2::<T>(-octaves / 2),
                    pow2::<T>(-octaves - (-octaves / 2)),
                );
                for j in 0..k {
                    if rows.beta[j] > T::zero() {
                        scaled[j] = rows.beta[j] * ((g[j] - top) / gibbs.eps).exp() * up * rest;
                    }
                }
            }
        }
        let mut max = T::zero();
        for i in 0..k {
            self.a[i][lane] = rows.a[i];
            self.beta[i][lane] = rows.beta[i];
            self.p[i][lane] = scaled[i];
            max = if scaled[i] > max { scaled[i] } else { max };
        }
        let e = exponent(max);
        self.p_exp[lane] = e;
        self.w_exp[lane] = e;
    }

    /// Recomputes `s = K w` for the lanes in `fresh` (after [`load`](Self::load)), through the
    /// same vector code as the iteration, so a lane's bits do not depend on when it was loaded.
    #[inline(always)]
    fn prime(&mut self, gibbs: &Gibbs<T>, fresh: &[bool; L]) {
        let mut s = [[T::zero(); L]; MAX_CLASSES];
        product(
            gibbs.k,
            &gibbs.kernel,
            &self.p,
            &inverse_octaves(&self.p_exp),
            &mut s,
        );
        for (own, new) in self.s[..gibbs.k].iter_mut().zip(&s) {
            for l in 0..L {
                if fresh[l] {
                    own[l] = new[l];
                }
            }
        }
    }

    /// One iteration on every lane: f-update, g-update, then the next f-update's product, which
    /// gives the row marginals and so the error.
    #[inline(always)]
    fn iterate(&mut self, gibbs: &Gibbs<T>) {
        let k = gibbs.k;
        // f-update: a∘U = (a / s)·2^{−W} = q·2^{−W}.
        self.q_exp = divide(k, &self.a, &self.s, &mut self.q);
        for l in 0..L {
            self.z_exp[l] = self.q_exp[l] - self.w_exp[l];
        }
        // g-update: t = Kᵀ(q·2^{−e}), β∘V = (β / t)·2^{−Z} = p·2^{−Z}.
        let q_scale = inverse_octaves(&self.q_exp);
        product(k, &gibbs.kernel_t, &self.q, &q_scale, &mut self.t);
        self.p_exp = divide(k, &self.beta, &self.t, &mut self.p);
        self.w_exp_prev = self.w_exp;
        for l in 0..L {
            self.w_exp[l] = self.p_exp[l] - self.z_exp[l];
        }
        // Check: s̃ = K(p·2^{−e'}); the row sums are a∘U∘(K(β∘V))·... = q_i·s̃_i·2^{e'−e}.
        std::mem::swap(&mut self.s, &mut self.s_prev);
        let p_scale = inverse_octaves(&self.p_exp);
        product(k, &gibbs.kernel, &self.p, &p_scale, &mut self.s);
        let row_scale: Lanes<T, L> = lanewise(|l| pow2(self.p_exp[l] - self.q_exp[l]));
        let mut error = [T::zero(); L];
        for i in 0..k {
            for l in 0..L {
                let row = self.q[i][l] * self.s[i][l] * row_scale[l];
                error[l] = error[l] + (row - self.a[i][l]).abs();
            }
        }
        self.error = error;
    }

    fn error(&self, lane: usize) -> T {
        self.error[lane]
    }

    /// The potentials (KL convention, units of C) of `lane` after its last
    /// [`iterate`](Self::iterate): the f-update's and the g-update's. A zero-mass row
    /// (`a_i = 0`) takes no part in the plan or the dual value; its f is the c-transform of the
    /// final g, from the check's product `s = K w` and `W` (as the kernels do), not `s_prev`,
    /// which is one g-update stale.
    fn potentials(&self, gibbs: &Gibbs<T>, lane: usize, f: &mut [T], g: &mut [T]) {
        let ln2 = std::f64::consts::LN_2;
        let w_shift = T::from_f64(self.w_exp_prev[lane] as f64 * ln2);
        let w_now = T::from_f64(self.w_exp[lane] as f64 * ln2);
        let z_shift = T::from_f64(self.z_exp[lane] as f64 * ln2);
        for i in 0..gibbs.k {
            f[i] = if self.a[i][lane] > T::zero() {
                -(self.s_prev[i][lane].ln() + w_shift) * gibbs.eps
            } else {
                -(self.s[i][lane].ln() + w_now) * gibbs.eps
            };
            g[i] = -(self.t[i][lane].ln() + z_shift) * gibbs.eps;
        }
    }

    fn transport_cost(&self, gibbs: &Gibbs<T>, lane: usize) -> T {
        let (mut z, mut p) = ([T::zero(); MAX_CLASSES], [T::zero(); MAX_CLASSES]);
        self.row_factors(gibbs, lane, &mut z);
        self.column_factors(gibbs, lane, &mut p);
        gibbs.transport_cost(&z, &p)
    }

    fn plan(&self, gibbs: &Gibbs<T>, lane: usize, plan: &mut [T]) {
        let (mut z, mut p) = ([T::zero(); MAX_CLASSES], [T::zero(); MAX_CLASSES]);
        self.row_factors(gibbs, lane, &mut z);
        self.column_factors(gibbs, lane, &mut p);
        gibbs.plan(&z, &p, plan);
    }
}

impl<T: Real, const L: usize> Block<T, L> {
    /// `z_i = q_i·2^{−e}` of `lane`, the plan's row factors.
    fn row_factors(&self, gibbs: &Gibbs<T>, lane: usize, z: &mut [T; MAX_CLASSES]) {
        let scale = pow2::<T>(-self.q_exp[lane]);
        for (i, z_i) in z[..gibbs.k].iter_mut().enumerate() {
            *z_i = self.q[i][lane] * scale;
        }
    }

    /// `p_j = β_j/t_j` of `lane`: the plan is `P_ij = z_i·K_ij·p_j` (the powers of two cancel).
    fn column_factors(&self, gibbs: &Gibbs<T>, lane: usize, p: &mut [T; MAX_CLASSES]) {
        for (j, p_j) in p[..gibbs.k].iter_mut().enumerate() {
            *p_j = self.beta[j][lane] / self.t[j][lane];
        }
    }
}

/// What the batch loop needs of a block of `L` lanes, one problem per lane.
pub(super) trait LaneSolver<T: Real, const L: usize> {
    /// A block whose lanes hold harmless placeholder problems.
    fn new(k: usize) -> Box<Self>;
    /// Puts a problem in `lane`, from g = 0 or from `init_g` (KL units).
    fn load(&mut self, gibbs: &Gibbs<T>, lane: usize, rows: &ProblemRows<T>, init_g: Option<&[T]>);
    /// Makes the lanes in `fresh` (just loaded) ready to iterate.
    fn prime(&mut self, gibbs: &Gibbs<T>, fresh: &[bool; L]);
    /// One iteration (f-update, g-update, marginal error) on every lane.
    fn iterate(&mut self, gibbs: &Gibbs<T>);
    /// The L1 row-marginal error of `lane` after the last iteration (its g-update is exact).
    fn error(&self, lane: usize) -> T;
    /// The potentials of `lane` (KL convention, units of C) that the error was measured on.
    fn potentials(&self, gibbs: &Gibbs<T>, lane: usize, f: &mut [T], g: &mut [T]);
    /// `⟨P, C⟩` of `lane`.
    fn transport_cost(&self, gibbs: &Gibbs<T>, lane: usize) -> T;
    /// The plan of `lane`, row-major.
    fn plan(&self, gibbs: &Gibbs<T>, lane: usize, plan: &mut [T]);
}

/// Selects a block type by a marker, so that one generic loop serves both.
pub(super) trait Method {
    type Block<T: Real, const L: usize>: LaneSolver<T, L>;
}
