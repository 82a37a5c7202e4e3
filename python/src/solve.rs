//! `_native.solve` (the crate's `Solution` as a dict of arrays) and `_native.loss_terms` (what
//! the PyTorch layer's autograd saves: per-problem loss and gradients).

use circot::{Backend, Convention, Element, SolveOptions, Source, Target};
use ndarray::{Ix1, Ix2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{self, Dtype, Floats, Held};
use crate::errors::{invalid, value_error};
use crate::terms::{LossSpec, Targets, labels_with_ignored, loss_terms};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(solve, m)?)?;
    m.add_function(wrap_pyfunction!(terms, m)?)?;
    Ok(())
}

/// What every solve takes besides its arrays.
struct Settings {
    eps: f64,
    logits: bool,
    smoothing: f64,
    convention: Convention,
    max_iters: u32,
    tol: Option<f64>,
    backend: Backend,
    bf16_bits: bool,
}

impl Settings {
    #[allow(clippy::too_many_arguments)]
    fn parse(
        eps: f64,
        logits: bool,
        smoothing: f64,
        convention: &str,
        max_iter: i64,
        tol: Option<f64>,
        backend: &str,
        bf16_bits: bool,
    ) -> PyResult<Self> {
        let max_iters = u32::try_from(max_iter)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid(format!("max_iter = {max_iter} must be in 1..={}", u32::MAX)))?;
        Ok(Settings {
            eps,
            logits,
            smoothing,
            convention: convention.parse().map_err(invalid)?,
            max_iters,
            tol,
            backend: backend.parse().map_err(invalid)?,
            bf16_bits,
        })
    }

    fn options(&self) -> SolveOptions {
        let options = SolveOptions::new(self.eps)
            .max_iters(self.max_iters)
            .convention(self.convention);
        match self.tol {
            Some(tol) => options.tol(tol),
            None => options,
        }
    }
}

/// Labels (integer arrays) or distributions (float arrays, or int16 bf16 bits), by dtype.
fn is_labels(target: &Bound<'_, PyAny>, bf16_bits: bool) -> PyResult<bool> {
    let name = arrays::dtype_name(arrays::ndarray(target, "target")?)?;
    let integer = name.starts_with("int") || name.starts_with("uint");
    let bits = bf16_bits && (name == "int16" || name == "uint16");
    Ok(integer && !bits)
}

/// The source's element type, which the target (when distributions) and warm start must share.
fn common_dtype(
    source: &Bound<'_, PyAny>,
    others: &[(&Bound<'_, PyAny>, &str)],
    bf16_bits: bool,
) -> PyResult<Dtype> {
    let dtype = arrays::float_dtype(source, "source", bf16_bits)?;
    for (obj, argument) in others {
        let theirs = arrays::float_dtype(obj, argument, bf16_bits)?;
        if theirs != dtype {
            return Err(crate::errors::type_error(
                argument,
                &format!("of the source's dtype ({dtype:?})"),
                format!("{theirs:?}"),
            ));
        }
    }
    Ok(dtype)
}

/// Solves a batch of entropic OT problems and returns every per-problem output of the crate's
/// `Solution`. The Python wrapper `circot.solve` documents the arguments.
#[pyfunction]
#[pyo3(signature = (cost, source, target, *, eps, logits=false, smoothing=0.0, convention="kl",
    max_iter=1000, tol=None, backend="auto", plan=false, init_g=None, bf16_bits=false))]
#[allow(clippy::too_many_arguments)]
fn solve<'py>(
    py: Python<'py>,
    cost: &Bound<'py, PyAny>,
    source: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    eps: f64,
    logits: bool,
    smoothing: f64,
    convention: &str,
    max_iter: i64,
    tol: Option<f64>,
    backend: &str,
    plan: bool,
    init_g: Option<&Bound<'py, PyAny>>,
    bf16_bits: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = Settings::parse(
        eps, logits, smoothing, convention, max_iter, tol, backend, bf16_bits,
    )?;
    let cost = arrays::cost_matrix(cost)?;
    let labels = is_labels(target, bf16_bits)?;
    let mut others = Vec::new();
    if !labels {
        others.push((target, "target"));
    }
    if let Some(g) = init_g {
        others.push((g, "init_g"));
    }
    let inputs = Inputs {
        source,
        target,
        init_g,
        labels,
    };
    match common_dtype(source, &others, bf16_bits)? {
        Dtype::F16 => solve_typed::<half::f16>(py, &cost, inputs, &settings, plan),
        Dtype::Bf16 => solve_typed::<half::bf16>(py, &cost, inputs, &settings, plan),
        Dtype::F32 => solve_typed::<f32>(py, &cost, inputs, &settings, plan),
        Dtype::F64 => solve_typed::<f64>(py, &cost, inputs, &settings, plan),
    }
}

/// The array arguments of one call, not yet read.
struct Inputs<'a, 'py> {
    source: &'a Bound<'py, PyAny>,
    target: &'a Bound<'py, PyAny>,
    init_g: Option<&'a Bound<'py, PyAny>>,
    labels: bool,
}

/// The arrays of one call, borrowed in their element type.
struct Read<'py, E: Floats> {
    source: Held<'py, E, Ix2>,
    labels: Option<Held<'py, i64, Ix1>>,
    distributions: Option<Held<'py, E, Ix2>>,
    init_g: Option<Held<'py, E, Ix2>>,
}

impl<'py, E: Floats> Read<'py, E> {
    fn new(inputs: &Inputs<'_, 'py>, bf16_bits: bool) -> PyResult<Self> {
        arrays::expect_ndim(inputs.source, "source", 2, "a 2-D (B, K) array")?;
        let (labels, distributions) = if inputs.labels {
            (Some(arrays::labels(inputs.target, "target")?), None)
        } else {
            arrays::expect_ndim(
                inputs.target,
                "target",
                2,
                "a 2-D (B, K) array or 1-D (B,) labels",
            )?;
            (None, Some(E::read(inputs.target, "target", bf16_bits)?))
        };
        let init_g = match inputs.init_g {
            Some(g) => {
                arrays::expect_ndim(g, "init_g", 2, "a 2-D (B, K) array")?;
                Some(E::read(g, "init_g", bf16_bits)?)
            }
            None => None,
        };
        Ok(Read {
            source: E::read(inputs.source, "source", bf16_bits)?,
            labels,
            distributions,
            init_g,
        })
    }

    fn source(&self, logits: bool) -> Source<'_, E> {
        let v = self.source.view();
        if logits {
            Source::Logits(v)
        } else {
            Source::Probabilities(v)
        }
    }

    fn target(&self, smoothing: f64) -> Target<'_, E> {
        match (&self.labels, &self.distributions) {
            (Some(l), _) => Target::Labels {
                labels: l.view(),
                smoothing,
            },
            (None, Some(d)) => Target::Distributions(d.view()),
            (None, None) => unreachable!("Read::new reads one of them"),
        }
    }
}

fn solve_typed<'py, E: Floats>(
    py: Python<'py>,
    cost: &circot::CostMatrix,
    inputs: Inputs<'_, 'py>,
    settings: &Settings,
    plan: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let read = Read::<E>::new(&inputs, settings.bf16_bits)?;
    let options = settings.options().with_plan(plan);
    let (source, target) = (
        read.source(settings.logits),
        read.target(settings.smoothing),
    );
    let init_g = read.init_g.as_ref().map(|g| g.view());
    let s = py
        .detach(|| circot::solve_warm(cost, source, target, &options, settings.backend, init_g))
        .map_err(value_error)?;
    let bits = settings.bf16_bits;
    let out = PyDict::new(py);
    out.set_item("loss", E::emit(py, s.loss, bits))?;
    out.set_item("transport_cost", E::emit(py, s.transport_cost, bits))?;
    out.set_item("f", E::emit(py, s.f, bits))?;
    out.set_item("g", E::emit(py, s.g, bits))?;
    out.set_item("grad_source", E::emit(py, s.grad_source, bits))?;
    out.set_item("grad_logits", s.grad_logits.map(|g| E::emit(py, g, bits)))?;
    out.set_item("iterations", arrays::emit1(py, s.iterations))?;
    out.set_item("marginal_error", E::emit(py, s.marginal_error, bits))?;
    out.set_item("plan", s.plan.map(|p| E::emit(py, p, bits)))?;
    out.set_item("executed", s.executed.name())?;
    out.set_item("tol", s.tol)?;
    Ok(out)
}

/// Per-problem loss terms for autograd: loss, ∂L/∂input, optionally ∂L/∂C per problem,
/// iterations, marginal error. With `ignore_index`, labels equal to it are ignored and any
/// other label outside `0..K` is a `ValueError` naming it; without, every negative label is
/// ignored (the crate's rule).
#[pyfunction]
#[pyo3(signature = (cost, source, target, *, eps, logits=true, smoothing=0.0, divergence=false,
    convention="kl", max_iter=1000, tol=None, backend="auto", cost_grad=false,
    ignore_index=None, bf16_bits=false))]
#[allow(clippy::too_many_arguments)]
fn terms<'py>(
    py: Python<'py>,
    cost: &Bound<'py, PyAny>,
    source: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    eps: f64,
    logits: bool,
    smoothing: f64,
    divergence: bool,
    convention: &str,
    max_iter: i64,
    tol: Option<f64>,
    backend: &str,
    cost_grad: bool,
    ignore_index: Option<i64>,
    bf16_bits: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let settings = Settings::parse(
        eps, logits, smoothing, convention, max_iter, tol, backend, bf16_bits,
    )?;
    let cost = arrays::cost_matrix(cost)?;
    let labels = is_labels(target, bf16_bits)?;
    let others: Vec<_> = if labels {
        vec![]
    } else {
        vec![(target, "target")]
    };
    let inputs = Inputs {
        source,
        target,
        init_g: None,
        labels,
    };
    let spec = LossSpec {
        eps: settings.eps,
        logits: settings.logits,
        smoothing: settings.smoothing,
        divergence,
        convention: settings.convention,
        max_iters: settings.max_iters,
        tol: settings.tol,
        backend: settings.backend,
        cost_grad,
    };
    match common_dtype(source, &others, bf16_bits)? {
        Dtype::F16 => terms_typed::<half::f16>(py, &cost, inputs, &spec, ignore_index, bf16_bits),
        Dtype::Bf16 => terms_typed::<half::bf16>(py, &cost, inputs, &spec, ignore_index, bf16_bits),
        Dtype::F32 => terms_typed::<f32>(py, &cost, inputs, &spec, ignore_index, bf16_bits),
        Dtype::F64 => terms_typed::<f64>(py, &cost, inputs, &spec, ignore_index, bf16_bits),
    }
}

fn terms_typed<'py, E: Floats>(
    py: Python<'py>,
    cost: &circot::CostMatrix,
    inputs: Inputs<'_, 'py>,
    spec: &LossSpec,
    ignore_index: Option<i64>,
    bits: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let read = Read::<E>::new(&inputs, bits)?;
    let source = read.source.view();
    let mapped;
    let target = match (&read.labels, &read.distributions) {
        (Some(l), _) => match ignore_index {
            Some(ignore_index) => {
                mapped = labels_with_ignored(l.view(), cost.k(), ignore_index).map_err(invalid)?;
                Targets::Labels(mapped.view())
            }
            None => Targets::Labels(l.view()),
        },
        (None, Some(d)) => Targets::Distributions(d.view()),
        (None, None) => unreachable!("Read::new reads one of them"),
    };
    let t = py
        .detach(|| loss_terms(cost, source, target, spec))
        .map_err(value_error)?;
    let tol = spec_tol::<E>(spec, cost);
    let out = PyDict::new(py);
    out.set_item("loss", E::emit(py, t.loss, bits))?;
    out.set_item("grad_input", E::emit(py, t.grad_input, bits))?;
    out.set_item("grad_cost", t.grad_cost.map(|c| arrays::emit_f64(py, c)))?;
    // int32, as torch and the kernels count them (a count never exceeds max_iter ≤ i32::MAX
    // in practice; saturate rather than wrap if it did).
    let iterations = t.iterations.mapv(|n| i32::try_from(n).unwrap_or(i32::MAX));
    out.set_item("iterations", arrays::emit1(py, iterations))?;
    out.set_item("marginal_error", E::emit(py, t.marginal_error, bits))?;
    // The divergence's self terms OT(a, a), OT(β, β): (B, 2) int32 iterations, float64 errors.
    let (self_iterations, self_error) = match t.self_terms {
        Some((n, e)) => (
            Some(arrays::emit_i32(
                py,
                n.mapv(|n| i32::try_from(n).unwrap_or(i32::MAX)),
            )),
            Some(arrays::emit_f64(py, e)),
        ),
        None => (None, None),
    };
    out.set_item("self_iterations", self_iterations)?;
    out.set_item("self_marginal_error", self_error)?;
    out.set_item("executed", t.executed.name())?;
    out.set_item("tol", tol)?;
    Ok(out)
}

/// The tolerance the crate uses for this element type (the set one, or its default).
fn spec_tol<E: Element>(spec: &LossSpec, cost: &circot::CostMatrix) -> f64 {
    let mut options = SolveOptions::new(spec.eps);
    options.tol = spec.tol;
    options.effective_tol::<E>(cost.k(), cost.max())
}
