//! Over-relaxed Sinkhorn ([`Acceleration::OverRelaxation`](crate::Acceleration)) on the
//! Gibbs-kernel lanes: `u ← u + ω·(T_β(v) − u)`, then `v ← v + ω·(T_a(u) − v)`, with `ω` chosen
//! per problem.
//!
//! **Why it helps.** Plain Sinkhorn is a nonlinear Gauss-Seidel sweep; near the solution its
//! error falls by a factor `η` per iteration, and for small ε `η` is close to 1. Over-relaxing
//! both half-steps is SOR, whose rate with Young's optimal `ω = 2 / (1 + √(1 − η))` is `ω − 1`
//! (Lehmann, von Renesse, Sambale, Uschmajew 2021, "A note on overrelaxation in the Sinkhorn
//! algorithm"): for `η = 0.99`, 0.82 per iteration instead of 0.99.
//!
//! **How ω is chosen, and the safeguard.** Each problem runs its first [`WARM_UP`] iterations
//! plain (`ω = 1`) and estimates `η` from its own errors over the last four of them; it then
//! relaxes with Young's `ω`, capped at [`MAX_OMEGA`]. If its error ever exceeds [`SPIKE`] times
//! the best it has reached, or no new best comes within [`PATIENCE`] iterations, it returns to
//! `ω = 1` for good: plain Sinkhorn, which always converges. So acceleration can cost iterations
//! but never convergence.
//!
//! **What is reported is exact Sinkhorn.** Every iteration also computes the exact g-update of
//! the relaxed `u` and measures the row-marginal error of that pair (columns exact), as plain
//! Sinkhorn does; a problem stops on that error, and its reported potentials are that pair. So
//! the stopping rule, and the meaning of `tol`, are the plain ones.
//!
//! The relaxation needs the potentials themselves, so this path carries `μ = log2 U` and
//! `ν = log2 V` and pays `K` base-2 exponentials and logarithms per half-step (the polynomials
//! below, vectorised across the lanes) and a third matrix-vector product for the check: about
//! twice the plain path's work per iteration.

// Loops index by class and by lane because that is the layout the vectoriser needs to see.
#![allow(clippy::needless_range_loop)]
use super::gibbs::{Gibbs, LaneSolver, Lanes, exponent, lanewise, pow2, product};
use super::rows::ProblemRows;
use super::warm_start::warm_start_shift;
use crate::cost::MAX_CLASSES;
use crate::element::{Dtype, Real};

/// Plain iterations before `η` is estimated.
const WARM_UP: u32 = 20;
/// The cap on ω (SOR diverges at 2).
const MAX_OMEGA: f64 = 1.9;
/// An error this many times the best so far sends the problem back to plain Sinkhorn.
const SPIKE: f64 = 4.0;
/// Iterations without a new best error after which the problem goes back to plain Sinkhorn.
const PATIENCE: u32 = 50;

/// `1/k!` for k = 0..=13, the Taylor coefficients of `e^y`.
const INVERSE_FACTORIALS: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// `1/ln 2`.
const LOG2_E: f64 = std::f64::consts::LOG2_E;

fn is_f32<T: Real>() -> bool {
    T::DTYPE == Dtype::F32
}

/// `x` rounded to the nearest integer (ties to even), for `|x|` below 2²² (f32) or 2⁵¹ (f64):
/// adding and subtracting `1.5·2^{mantissa bits}` leaves the rounded value, in plain arithmetic
/// that vectorises.
#[inline(always)]
fn round<T: Real>(x: T) -> T {
    let magic = T::from_f64(if is_f32::<T>() {
        12_582_912.0
    } else {
        6_755_399_441_055_744.0
    });
    (x + magic) - magic
}

/// `2^x`, within about 2 ulp of `T`; 0 below the normal range (−∞ included).
///
/// `x = n + r` with `n` an integer and `|r| ≤ ½`; `2^r = e^{r ln 2}` by its Taylor series,
/// degree 7 in f32 and 13 in f64 (the remainder is below `ε_mach/4`).
#[inline(always)]
pub(super) fn exp2<T: Real>(x: T) -> T {
    let (low, high, degree) = if is_f32::<T>() {
        (-126.0, 127.0, 7)
    } else {
        (-1022.0, 1023.0, 13)
    };
    let (low, high) = (T::from_f64(low), T::from_f64(high));
    let clamped = if x < low {
        low
    } else if x > high {
        high
    } else {
        x
    };
    let n = round(clamped);
    let y = (clamped - n) * T::from_f64(std::f64::consts::LN_2);
    let mut poly = T::from_f64(INVERSE_FACTORIALS[degree]);
    for &c in INVERSE_FACTORIALS[..degree].iter().rev() {
        poly = poly * y + T::from_f64(c);
    }
    let n = n.as_f64() as i32;
    let value = poly * pow2::<T>(n);
    if x < low { T::zero() } else { value }
}

/// `log2 x` for a positive normal `x`, within a few ulp of `T`.
///
/// `x = m·2^e` with `m ∈ [√½, √2)`; `ln m = 2·atanh(s)`, `s = (m − 1)/(m + 1)`, `|s| ≤ 0.172`, by
/// its odd series to `s⁹` in f32 and `s²¹` in f64.
#[inline(always)]
pub(super) fn log2<T: Real>(x: T) -> T {
    let terms = if is_f32::<T>() { 5 } else { 11 };
    let mut e = exponent(x);
    let mut m = x * pow2::<T>(-e);
    let big = m > T::from_f64(std::f64::consts::SQRT_2);
    m = if big { m * T::from_f64(0.5) } else { m };
    e += i32::from(big);
    let s = (m - T::one()) / (m + T::one());
    let s2 = s * s;
    let mut series = T::zero();
    for k in (0..terms).rev() {
        series = series * s2 + T::from_f64(1.0 / (2 * k + 1) as f64);
    }
    T::from_f64(e as f64) + (s + s) * series * T::from_f64(LOG2_E)
}

/// Where a problem is in the ω schedule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Plain iterations, measuring the rate.
    WarmUp,
    /// Relaxing with the lane's ω.
    Relaxing,
    /// Back to plain Sinkhorn for good.
    Plain,
}

/// `L` problems, one per lane, class-major (`x[i][lane]`), in base-2 units.
pub(super) struct RelaxedBlock<T, const L: usize> {
    a: [Lanes<T, L>; MAX_CLASSES],
    beta: [Lanes<T, L>; MAX_CLASSES],
    /// `log2 a`, `log2 β` (−∞ at zero mass).
    log_a: [Lanes<T, L>; MAX_CLASSES],
    log_beta: [Lanes<T, L>; MAX_CLASSES],
    /// `μ = log2 U = f/(ε ln 2)`, relaxed.
    mu: [Lanes<T, L>; MAX_CLASSES],
    /// `ν = log2 V`, relaxed.
    nu: [Lanes<T, L>; MAX_CLASSES],
    /// `y = a∘2^{μ − E}`, `t = Kᵀy`: the exact g-update of `μ` is `−log2 t − E`.
    y: [Lanes<T, L>; MAX_CLASSES],
    t: [Lanes<T, L>; MAX_CLASSES],
    y_exp: Lanes<T, L>,
    omega: Lanes<T, L>,
    error: Lanes<T, L>,
    // The ω schedule, per lane.
    phase: [Phase; L],
    iterations: [u32; L],
    /// The error four iterations before the end of the warm-up.
    earlier_error: [f64; L],
    best_error: [f64; L],
    best_at: [u32; L],
}

/// `x_r ← 2^{x_r + offset_r − round(max_r(x_r + offset_r))}` per lane, returning the rounded
/// maxima: the vector `2^{x + offset}` normalised by a power of two near its maximum.
#[inline(always)]
fn exponentiate<T: Real, const L: usize>(
    k: usize,
    x: &[Lanes<T, L>; MAX_CLASSES],
    offset: &[Lanes<T, L>; MAX_CLASSES],
    out: &mut [Lanes<T, L>; MAX_CLASSES],
) -> Lanes<T, L> {
    let mut max = [T::neg_infinity(); L];
    for r in 0..k {
        for l in 0..L {
            let v = x[r][l] + offset[r][l];
            out[r][l] = v;
            max[l] = if v > max[l] { v } else { max[l] };
        }
    }
    let top: Lanes<T, L> = lanewise(|l| round(max[l]));
    for out_r in &mut out[..k] {
        *out_r = lanewise(|l| exp2(out_r[l] - top[l]));
    }
    top
}

/// `x ← x + ω·(−log2 d − shift − x)` per lane: the relaxed step towards the exact update
/// `−log2 d − shift`.
#[inline(always)]
fn relax<T: Real, const L: usize>(
    k: usize,
    d: &[Lanes<T, L>; MAX_CLASSES],
    shift: &Lanes<T, L>,
    omega: &Lanes<T, L>,
    x: &mut [Lanes<T, L>; MAX_CLASSES],
) {
    for (x_r, d_r) in x[..k].iter_mut().zip(d) {
        *x_r = lanewise(|l| {
            let exact = -log2(d_r[l]) - shift[l];
            x_r[l] + omega[l] * (exact - x_r[l])
        });
    }
}

impl<T: Real, const L: usize> RelaxedBlock<T, L> {
    /// Advances lane `l`'s ω schedule after an iteration with error `error`.
    fn schedule(&mut self, l: usize) {
        self.iterations[l] += 1;
        let (n, error) = (self.iterations[l], self.error[l].as_f64());
        if error < self.best_error[l] {
            (self.best_error[l], self.best_at[l]) = (error, n);
        }
        match self.phase[l] {
            Phase::WarmUp if n == WARM_UP - 4 => self.earlier_error[l] = error,
            Phase::WarmUp if n == WARM_UP => {
                let rate = (error / self.earlier_error[l]).powf(0.25);
                if rate.is_finite() && rate > 0.0 && rate < 1.0 {
                    let omega = (2.0 / (1.0 + (1.0 - rate).sqrt())).min(MAX_OMEGA);
                    self.omega[l] = T::from_f64(omega);
                    self.phase[l] = Phase::Relaxing;
                } else {
                    self.phase[l] = Phase::Plain;
                }
            }
            Phase::Relaxing
                if error > SPIKE * self.best_error[l] || n - self.best_at[l] > PATIENCE =>
            {
                self.omega[l] = T::one();
                self.phase[l] = Phase::Plain;
            }
            _ => {}
        }
    }
}

impl<T: Real, const L: usize> LaneSolver<T, L> for RelaxedBlock<T, L> {
    fn new(k: usize) -> Box<Self> {
        let zero = [[T::zero(); L]; MAX_CLASSES];
        let uniform = T::one() / T::from_f64(k as f64);
        let log_uniform = -T::from_f64((k as f64).log2());
        let mut block = Box::new(RelaxedBlock {
            a: zero,
            beta: zero,
            log_a: zero,
            log_beta: zero,
            mu: zero,
            nu: zero,
            y: zero,
            t: zero,
            y_exp: [T::zero(); L],
            omega: [T::one(); L],
            error: [T::zero(); L],
            phase: [Phase::Plain; L],
            iterations: [0; L],
            earlier_error: [0.0; L],
            best_error: [f64::INFINITY; L],
            best_at: [0; L],
        });
        for i in 0..k {
            block.a[i] = [uniform; L];
            block.beta[i] = [uniform; L];
            block.log_a[i] = [log_uniform; L];
            block.log_beta[i] = [log_uniform; L];
        }
        block
    }

    fn load(&mut self, gibbs: &Gibbs<T>, l: usize, rows: &ProblemRows<T>, init_g: Option<&[T]>) {
        /// log2 units below which every weight 2^ν underflows, in f32 and f64 alike.
        const WARM_START_FLOOR: f64 = 4096.0;
        let to_log2 = T::from_f64(LOG2_E);
        // g is defined up to a constant: shifted by its maximum over the target's support, g/ε
        // cannot overflow there; then by L, which makes Σ β·2^ν = 1 (`driver::warm_start_shift`;
        // 0 for a constant start). Outside the support ν starts at 0 (it has no weight, and
        // shifted by that maximum it could be +∞: ∞ − ∞ in the relaxation).
        let (top, log_mass) = init_g.map_or((T::zero(), T::zero()), |g| {
            warm_start_shift(g, rows.beta(), rows.log_beta(), gibbs.eps)
        });
        let octaves = log_mass * to_log2;
        for i in 0..gibbs.k {
            self.a[i][l] = rows.a[i];
            self.beta[i][l] = rows.beta[i];
            self.log_a[i][l] = rows.log_a[i] * to_log2;
            self.log_beta[i][l] = rows.log_beta[i] * to_log2;
            self.mu[i][l] = T::zero();
            // Clamped where 2^ν is 0 anyway (below every subnormal): an overflow to −∞ would
            // meet the relaxation's (1 − ω)·ν as ∞ − ∞ = NaN.
            self.nu[i][l] = match init_g {
                Some(g) if rows.beta[i] > T::zero() => ((g[i] - top) / gibbs.eps * to_log2
                    - octaves)
                    .max(T::from_f64(-WARM_START_FLOOR)),
                _ => T::zero(),
            };
        }
        self.omega[l] = T::one();
        self.phase[l] = Phase::WarmUp;
        self.iterations[l] = 0;
        self.best_error[l] = f64::INFINITY;
        self.best_at[l] = 0;
    }

    fn prime(&mut self, _: &Gibbs<T>, _: &[bool; L]) {}

    #[inline(always)]
    fn iterate(&mut self, gibbs: &Gibbs<T>) {
        let k = gibbs.k;
        let one = [T::one(); L];
        let mut x = [[T::zero(); L]; MAX_CLASSES];
        let mut s = [[T::zero(); L]; MAX_CLASSES];
        // Relaxed f-update: T_β(ν) = −log2 K(β∘2^ν), with β∘2^ν = x·2^F.
        let f_shift = exponentiate(k, &self.nu, &self.log_beta, &mut x);
        product(k, &gibbs.kernel, &x, &one, &mut s);
        relax(k, &s, &f_shift, &self.omega, &mut self.mu);
        // Exact g-update of μ: a∘2^μ = y·2^E, t = Kᵀy, T_a(μ) = −log2 t − E.
        self.y_exp = exponentiate(k, &self.mu, &self.log_a, &mut self.y);
        product(k, &gibbs.kernel_t, &self.y, &one, &mut self.t);
        // Row sums of that pair: y_i·(K(β/t))_i (the powers of two cancel), as in plain
        // Sinkhorn; x holds β/t scaled by 2^{−e'} to stay in range.
        let mut max = [T::zero(); L];
        for j in 0..k {
            for l in 0..L {
                let p = self.beta[j][l] / self.t[j][l];
                x[j][l] = p;
                max[l] = if p > max[l] { p } else { max[l] };
            }
        }
        let e: Lanes<i32, L> = lanewise(|l| exponent(max[l]));
        let down: Lanes<T, L> = lanewise(|l| pow2(-e[l]));
        let up: Lanes<T, L> = lanewise(|l| pow2(e[l]));
        product(k, &gibbs.kernel, &x, &down, &mut s);
        let mut error = [T::zero(); L];
        for i in 0..k {
            for l in 0..L {
                let row = self.y[i][l] * s[i][l] * up[l];
                error[l] = error[l] + (row - self.a[i][l]).abs();
            }
        }
        self.error = error;
        // Relaxed g-update.
        relax(k, &self.t, &self.y_exp, &self.omega, &mut self.nu);
        for l in 0..L {
            self.schedule(l);
        }
    }

    fn error(&self, lane: usize) -> T {
        self.error[lane]
    }

    /// `f = ε·μ·ln 2` and the exact g-update of `μ`, `g = −ε·(ln t + E·ln 2)`. A zero-mass row
    /// (`a_i = 0`) takes no part in the plan or the dual value; its f is the c-transform of that
    /// g, `−ε·ln Σ_j K_ij·β_j·e^{g_j/ε} = ε·(E·ln 2 − ln Σ_j K_ij·β_j/t_j)`, not the relaxed `μ`.
    fn potentials(&self, gibbs: &Gibbs<T>, l: usize, f: &mut [T], g: &mut [T]) {
        let (k, ln2) = (gibbs.k, std::f64::consts::LN_2);
        let shift = T::from_f64(self.y_exp[l].as_f64() * ln2);
        for i in 0..k {
            f[i] = if self.a[i][l] > T::zero() {
                self.mu[i][l] * T::from_f64(ln2) * gibbs.eps
            } else {
                let row = &gibbs.kernel[i * k..(i + 1) * k];
                let sum = (0..k).fold(T::zero(), |acc, j| {
                    acc + row[j] * (self.beta[j][l] / self.t[j][l])
                });
                (shift - sum.ln()) * gibbs.eps
            };
            g[i] = -(self.t[i][l].ln() + shift) * gibbs.eps;
        }
    }

    fn transport_cost(&self, gibbs: &Gibbs<T>, l: usize) -> T {
        let (z, p) = self.factors(gibbs, l);
        gibbs.transport_cost(&z, &p)
    }

    fn plan(&self, gibbs: &Gibbs<T>, l: usize, plan: &mut [T]) {
        let (z, p) = self.factors(gibbs, l);
        gibbs.plan(&z, &p, plan);
    }
}

impl<T: Real, const L: usize> RelaxedBlock<T, L> {
    /// The plan's factors `P_ij = y_i·K_ij·(β_j/t_j)`.
    fn factors(&self, gibbs: &Gibbs<T>, l: usize) -> ([T; MAX_CLASSES], [T; MAX_CLASSES]) {
        let (mut z, mut p) = ([T::zero(); MAX_CLASSES], [T::zero(); MAX_CLASSES]);
        for i in 0..gibbs.k {
            z[i] = self.y[i][l];
            p[i] = self.beta[i][l] / self.t[i][l];
        }
        (z, p)
    }
}
