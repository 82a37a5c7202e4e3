//! Every check on a request, done once before any backend runs, so that a bad input is rejected
//! whole (nothing is computed or written) with an error naming the offending index and value.

use ndarray::ArrayView2;

use crate::cost::check_class_count;
use crate::element::Element;
use crate::error::{Error, Operand, Result};
use crate::problem::{
    Convention, MAX_PRECISION_FLOOR, Request, Solution, SolveOptions, Source, Target,
    precision_floor,
};

/// How far a probability row's sum may be from 1: `max(1e-5, K·ε_mach(T))`. Rows are
/// renormalised after this check, so it only has to catch real mistakes (unnormalised rows, the
/// wrong axis), while accepting rows rounded to the element type.
pub fn row_sum_tolerance<T: Element>(k: usize) -> f64 {
    1e-5_f64.max(k as f64 * T::EPSILON)
}

/// Checks a whole request. Negative labels are accepted: they mark ignored problems.
pub(crate) fn check_request<T: Element>(request: &Request<'_, T>) -> Result<()> {
    let Request {
        cost,
        source,
        target,
        options,
        init_g,
    } = request;
    let k = cost.k();
    check_class_count(k)?;
    check_options(options)?;
    check_eps_range::<T>(options.eps, cost.max())?;
    check_precision_floor::<T>(options, k, cost.max())?;
    let source_view = source.view();
    let batch = source_view.nrows();
    check_shape("source", source_view, batch, k)?;
    match source {
        Source::Probabilities(p) => {
            check_simplex_rows(*p, Operand::Source)?;
            if options.convention == Convention::Entropy
                && let Some(((problem, class), _)) =
                    p.indexed_iter().find(|(_, v)| v.as_f64() == 0.0)
            {
                return Err(Error::EntropyGradientAtZero { problem, class });
            }
        }
        Source::Logits(z) => check_finite(*z, Operand::Source)?,
    }
    match target {
        Target::Labels { labels, smoothing } => {
            if labels.len() != batch {
                return Err(Error::Shape {
                    what: "labels",
                    expected: vec![batch],
                    found: vec![labels.len()],
                });
            }
            if !(0.0..=1.0).contains(smoothing) {
                return Err(Error::Smoothing { value: *smoothing });
            }
            if let Some((problem, &label)) =
                labels.iter().enumerate().find(|&(_, &y)| y >= k as i64)
            {
                return Err(Error::LabelOutOfRange { problem, label, k });
            }
        }
        Target::Distributions(d) => {
            check_shape("target", *d, batch, k)?;
            check_simplex_rows(*d, Operand::Target)?;
        }
    }
    if let Some(g) = init_g {
        check_shape("initial potentials", *g, batch, k)?;
        check_finite(*g, Operand::InitialPotentials)?;
    }
    Ok(())
}

pub(crate) fn check_options(options: &SolveOptions) -> Result<()> {
    if !(options.eps.is_finite() && options.eps > 0.0) {
        return Err(Error::Eps { value: options.eps });
    }
    if options.max_iters == 0 {
        return Err(Error::MaxIters);
    }
    if let Some(tol) = options.tol
        && !(tol.is_finite() && tol >= 0.0)
    {
        return Err(Error::Tolerance { value: tol });
    }
    Ok(())
}

/// Checks that ε suits the arithmetic type `T::Compute` (f32 for f32, f16, bf16; f64 for f64):
/// the kernels and the CPU fold `log2(e)/ε` into the cost, so `log2(e)·max(1, max C)/ε` must be
/// finite, `1/ε` a normal number (`ε ≤ 2^126` in f32; `__fdividef` returns 0 beyond it, and
/// flush-to-zero would make a subnormal scale 0, then 0·∞ = NaN), and so must `max C/ε` be:
/// the scaled cost is held to the absolute precision of the type's subnormals (flushed to zero
/// on the GPU), which is `ε_mach·max C` exactly while `max C/ε` is normal (f32: max C = 9·10⁻³⁸
/// with ε = 9·10⁷ had C/ε ≈ 10⁻⁴⁵, one subnormal, and a loss 30% off). So
/// `ε ≤ min(1, max C)/(smallest normal)` (`1/(smallest normal)` for an all-zero cost).
pub(crate) fn check_eps_range<T: Element>(eps: f64, max_cost: f64) -> Result<()> {
    let tiny = <T::Compute as num_traits::Float>::min_positive_value().as_f64();
    let huge = <T::Compute as num_traits::Float>::max_value().as_f64();
    let min = std::f64::consts::LOG2_E * max_cost.max(1.0) / huge;
    let scale = if max_cost > 0.0 {
        max_cost.min(1.0)
    } else {
        1.0
    };
    let max = scale / tiny;
    // Both bounds are computed in f64, where they are exact enough: huge and tiny are powers of
    // two (up to huge's last ulp), so only the rounding of one product and one quotient enters.
    if eps >= min && eps <= max {
        Ok(())
    } else {
        Err(Error::EpsRange {
            value: eps,
            dtype: T::NAME,
            compute: <T::Compute as Element>::NAME,
            min,
            max,
        })
    }
}

/// With the default tolerance, the rounding bound must be below [`MAX_PRECISION_FLOOR`].
pub(crate) fn check_precision_floor<T: Element>(
    options: &SolveOptions,
    k: usize,
    max_cost: f64,
) -> Result<()> {
    let floor = precision_floor::<T>(options.eps, k, max_cost);
    if options.tol.is_none() && floor >= MAX_PRECISION_FLOOR {
        return Err(Error::PrecisionFloor {
            eps: options.eps,
            dtype: T::NAME,
            floor,
            limit: MAX_PRECISION_FLOOR,
        });
    }
    Ok(())
}

fn check_shape<T>(what: &'static str, a: ArrayView2<'_, T>, batch: usize, k: usize) -> Result<()> {
    if a.dim() != (batch, k) {
        return Err(Error::Shape {
            what,
            expected: vec![batch, k],
            found: a.shape().to_vec(),
        });
    }
    Ok(())
}

fn check_finite<T: Element>(a: ArrayView2<'_, T>, operand: Operand) -> Result<()> {
    match a.indexed_iter().find(|(_, v)| !v.as_f64().is_finite()) {
        Some(((problem, class), v)) => Err(Error::NotFinite {
            operand,
            problem,
            class,
            value: v.as_f64(),
        }),
        None => Ok(()),
    }
}

fn check_simplex_rows<T: Element>(a: ArrayView2<'_, T>, operand: Operand) -> Result<()> {
    check_finite(a, operand)?;
    if let Some(((problem, class), v)) = a.indexed_iter().find(|(_, v)| v.as_f64() < 0.0) {
        return Err(Error::NegativeProbability {
            operand,
            problem,
            class,
            value: v.as_f64(),
        });
    }
    let tolerance = row_sum_tolerance::<T>(a.ncols());
    for (problem, row) in a.rows().into_iter().enumerate() {
        let sum: f64 = row.iter().map(|v| v.as_f64()).sum();
        if (sum - 1.0).abs() > tolerance {
            return Err(Error::RowSum {
                operand,
                problem,
                sum,
                tolerance,
            });
        }
    }
    Ok(())
}

/// Every output of `solution` (computed in `T`) is finite and stays finite when rounded to `E`;
/// the first that does not is an [`Error::OutputRange`] naming it.
pub(crate) fn check_solution_fits<T: Element, E: Element>(solution: &Solution<T>) -> Result<()> {
    let fits = |x: &T| x.as_f64().is_finite() && E::from_f64(x.as_f64()).as_f64().is_finite();
    let error = |what: &'static str, index: String, x: &T| Error::OutputRange {
        what,
        index,
        value: x.as_f64(),
        dtype: E::NAME,
    };
    let vectors = [
        ("loss", &solution.loss),
        ("transport_cost", &solution.transport_cost),
        ("marginal_error", &solution.marginal_error),
    ];
    for (what, v) in vectors {
        if let Some((b, x)) = v.indexed_iter().find(|(_, x)| !fits(x)) {
            return Err(error(what, format!("[{b}]"), x));
        }
    }
    let matrices = [
        ("f", Some(&solution.f)),
        ("g", Some(&solution.g)),
        ("grad_source", Some(&solution.grad_source)),
        ("grad_logits", solution.grad_logits.as_ref()),
    ];
    for (what, m) in matrices {
        if let Some(((b, i), x)) = m.and_then(|m| m.indexed_iter().find(|(_, x)| !fits(x))) {
            return Err(error(what, format!("[{b}, {i}]"), x));
        }
    }
    if let Some(((b, i, j), x)) = solution
        .plan
        .as_ref()
        .and_then(|p| p.indexed_iter().find(|(_, x)| !fits(x)))
    {
        return Err(error("plan", format!("[{b}, {i}, {j}]"), x));
    }
    Ok(())
}
