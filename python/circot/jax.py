"""JAX: :func:`sinkhorn_loss`, the Sinkhorn loss as an XLA custom call, shaped like
``optax``/``torch.nn.functional.cross_entropy``.

The solve is one XLA FFI custom call on the CPU (``circot_sinkhorn_loss``, a handler written
in Rust against XLA's C API and registered when this module is imported). It returns, per
problem, the loss and its gradients (w.r.t. the input, and w.r.t. the cost when the cost is
differentiated); a :func:`jax.custom_vjp` makes the backward pass scale those by the upstream
gradient, so the backward never solves again. Class weights, ``ignore_index``, label smoothing
of probability targets and the reduction are ordinary ``jax.numpy`` ops around the call.

:func:`jax.jit`, :func:`jax.grad` and :func:`jax.vmap` work (``vmap`` runs one custom call
for the whole vmapped batch, with a vmapped cost honoured per vmapped element). Gradients
w.r.t. target distributions and second derivatives are not available: both raise.

Examples
--------
>>> import numpy as np, jax, jax.numpy as jnp
>>> from circot.jax import sinkhorn_loss
>>> cost = 1.0 - np.eye(4)
>>> logits = jnp.array([[2.0, 0.0, -1.0, 0.5], [0.1, 0.2, 0.3, 0.4]])
>>> labels = jnp.array([0, 3])
>>> loss = sinkhorn_loss(logits, labels, cost, eps=0.1)
>>> grads = jax.grad(sinkhorn_loss)(logits, labels, cost, eps=0.1)
>>> grads.shape
(2, 4)
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from . import _native

__all__ = ["Terms", "sinkhorn_loss", "sinkhorn_terms"]

ArrayLike = Any
CostArg = Union[str, ArrayLike]

_TARGET: str = _native.jax_target_name
_REDUCTIONS = ("none", "sum", "mean")
_CONVENTIONS = ("kl", "entropy")
_BACKENDS = ("cpu", "reference")
_FLOATS = tuple(np.dtype(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64))
_MIN_CLASSES, _MAX_CLASSES = 2, 32

jax.ffi.register_ffi_target(_TARGET, _native.jax_sinkhorn_loss_cpu, platform="cpu")


class _Config(NamedTuple):
    """The custom call's static attributes (hashable: a ``custom_vjp`` non-diff argument)."""

    eps: float
    logits: bool
    smoothing: float
    divergence: bool
    convention: str
    max_iter: int
    tol: float
    backend: str
    ignore_index: int


def _call(
    source: jax.Array, target: jax.Array, cost: jax.Array, cfg: _Config, cost_grad: bool
) -> Tuple[jax.Array, ...]:
    """The custom call: per-problem loss, grad_input, grad_cost, iterations, marginal error."""
    b, k = source.shape
    dt = source.dtype
    results = (
        jax.ShapeDtypeStruct((b,), dt),
        jax.ShapeDtypeStruct((b, k), dt),
        jax.ShapeDtypeStruct((b, k, k) if cost_grad else (0,), cost.dtype),
        jax.ShapeDtypeStruct((b,), jnp.int32),
        jax.ShapeDtypeStruct((b,), dt),
    )
    # expand_dims: under vmap every operand gets the same leading axes (size 1 where it is not
    # vmapped), which the handler broadcasts; one call solves the whole vmapped batch.
    call = jax.ffi.ffi_call(_TARGET, results, vmap_method="expand_dims")
    return call(
        source,
        target,
        cost,
        eps=np.float64(cfg.eps),
        logits=np.bool_(cfg.logits),
        smoothing=np.float64(cfg.smoothing),
        divergence=np.bool_(cfg.divergence),
        convention=cfg.convention,
        max_iter=np.int64(cfg.max_iter),
        tol=np.float64(cfg.tol),
        backend=cfg.backend,
        cost_grad=np.bool_(cost_grad),
        ignore_index=np.int64(cfg.ignore_index),
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _per_problem(source: jax.Array, target: jax.Array, cost: jax.Array, cfg: _Config) -> jax.Array:
    """Per-problem losses (B,); differentiable w.r.t. the source and the cost."""
    return _call(source, target, cost, cfg, cost_grad=False)[0]


def _per_problem_fwd(
    source: Any, target: Any, cost: Any, cfg: _Config
) -> Tuple[jax.Array, Tuple[jax.Array, Optional[jax.Array]]]:
    """Forward with residuals; the arguments are ``CustomVJPPrimal``s (value, perturbed)."""
    if target.perturbed and jnp.issubdtype(target.value.dtype, jnp.floating):
        raise ValueError(
            "circot.jax.sinkhorn_loss: the gradient with respect to target distributions is not "
            "implemented; wrap the target in jax.lax.stop_gradient"
        )
    cost_grad = bool(cost.perturbed)
    loss, grad_input, grad_cost, _, _ = _call(
        source.value, target.value, cost.value, cfg, cost_grad=cost_grad
    )
    return loss, (grad_input, grad_cost if cost_grad else None)


def _per_problem_bwd(
    cfg: _Config, residuals: Tuple[jax.Array, Optional[jax.Array]], g: Any
) -> Tuple[Optional[jax.Array], None, Optional[jax.Array]]:
    """Scales the saved per-problem gradients by the upstream gradient: no solve."""
    grad_input, grad_cost = residuals
    if isinstance(g, SymbolicZero):
        return (None, None, None)
    d_source = (g[:, None].astype(grad_input.dtype) * grad_input).astype(grad_input.dtype)
    d_cost = None
    if grad_cost is not None:
        d_cost = jnp.einsum("b,bij->ij", g.astype(grad_cost.dtype), grad_cost)
    return (d_source, None, d_cost)


_per_problem.defvjp(_per_problem_fwd, _per_problem_bwd, symbolic_zeros=True)


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _shape(x: Any) -> Tuple[int, ...]:
    return tuple(int(d) for d in np.shape(x))


def _cost_array(cost: CostArg, k: int) -> jax.Array:
    """The (K, K) cost as a float JAX array (float64 when x64 is on, else float32)."""
    if isinstance(cost, str):
        from ._cost import cost as preset_cost

        cost = preset_cost(cost).values
    elif not isinstance(cost, (jax.Array, np.ndarray)) and hasattr(cost, "values"):
        cost = cost.values  # a circot.CostMatrix
    dtype = cost.dtype if isinstance(cost, jax.Array) else np.asarray(cost).dtype
    if dtype == np.bool_ or not (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        raise TypeError(f"cost must be a real (K, K) array, got dtype {dtype}")
    if not (isinstance(cost, jax.Array) and dtype in _FLOATS):
        # NumPy and Python values, and integer arrays: float64 when x64 is on, else float32.
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    c = jnp.asarray(cost, dtype=dtype)
    if c.shape != (k, k):
        raise ValueError(f"cost must have shape (K, K) = ({k}, {k}), got {_shape(c)}")
    if _is_concrete(c):
        values = np.asarray(c, dtype=np.float64)
        bad = np.argwhere(~(np.isfinite(values) & (values >= 0)))
        if bad.size:
            i, j = (int(v) for v in bad[0])
            raise ValueError(
                f"cost[{i}, {j}] = {values[i, j]} must be finite and non-negative"
            )
    return c


def _check_labels(target: Any, k: int, ignore_index: int) -> None:
    """The eager twin of the handler's check (inside jit the handler reports it)."""
    values = np.asarray(target)
    bad = np.flatnonzero((values != ignore_index) & ((values < 0) | (values >= k)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"target[{i}] = {int(values[i])} is outside 0..{k} (and is not ignore_index = "
            f"{ignore_index})"
        )


class _Prepared(NamedTuple):
    """Checked operands of one call."""

    x: jax.Array
    t: jax.Array
    c: jax.Array
    cfg: _Config
    labels: bool
    beta: Optional[jax.Array]
    w_class: Optional[jax.Array]
    acc: Any


def _prepare(
    input: ArrayLike,
    target: ArrayLike,
    cost: CostArg,
    eps: float,
    weight: Optional[ArrayLike],
    ignore_index: int,
    label_smoothing: float,
    probabilities: bool,
    divergence: bool,
    convention: str,
    max_iter: int,
    tol: Optional[float],
    backend: str,
) -> _Prepared:
    """Checks every argument (at trace time: shapes, dtypes, options; values when concrete)."""
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    eps = float(eps)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be finite and > 0, got {eps}")
    label_smoothing = float(label_smoothing)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be an integer ≥ 1, got {max_iter!r}")
    if tol is not None and not (math.isfinite(float(tol)) and float(tol) >= 0):
        raise ValueError(f"tol must be None or finite and ≥ 0, got {tol}")
    if isinstance(ignore_index, bool) or int(ignore_index) != ignore_index:
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}")
    ignore_index = int(ignore_index)

    x = jnp.asarray(input)
    if x.dtype not in _FLOATS:
        raise TypeError(
            f"input must be a float16, bfloat16, float32 or float64 array, got {x.dtype}"
        )
    if x.ndim != 2:
        raise ValueError(f"input must have shape (B, K), got {_shape(x)}")
    b, k = x.shape
    if not _MIN_CLASSES <= k <= _MAX_CLASSES:
        raise ValueError(
            f"input must have K in {_MIN_CLASSES}..={_MAX_CLASSES} classes, got {k}"
        )

    t = jnp.asarray(target)
    if t.dtype == jnp.bool_ or not (
        jnp.issubdtype(t.dtype, jnp.integer) or jnp.issubdtype(t.dtype, jnp.floating)
    ):
        raise TypeError(f"target must be integer labels or float distributions, got {t.dtype}")
    labels = bool(jnp.issubdtype(t.dtype, jnp.integer))
    acc = jnp.promote_types(x.dtype, jnp.float32)
    beta = None
    if labels:
        if t.shape != (b,):
            raise ValueError(f"target (labels) must have shape (B,) = ({b},), got {_shape(t)}")
        if _is_concrete(target) and _is_concrete(t):
            _check_labels(t, k, ignore_index)
        if t.dtype != jnp.int64:
            t = t.astype(jnp.int32)
    else:
        if t.shape != (b, k):
            raise ValueError(
                f"target (distributions) must have shape (B, K) = ({b}, {k}), got {_shape(t)}"
            )
        beta = t.astype(acc)
        if label_smoothing > 0:
            beta = (1.0 - label_smoothing) * beta + label_smoothing / k
        t = beta.astype(x.dtype)

    c = _cost_array(cost, k)

    w_class = None
    if weight is not None:
        w_class = jnp.asarray(weight)
        if w_class.dtype == jnp.bool_ or not (
            jnp.issubdtype(w_class.dtype, jnp.floating)
            or jnp.issubdtype(w_class.dtype, jnp.integer)
        ):
            raise TypeError(f"weight must be a real (K,) array, got {w_class.dtype}")
        if w_class.shape != (k,):
            raise ValueError(f"weight must have shape (K,) = ({k},), got {_shape(w_class)}")
        w_class = w_class.astype(acc)

    cfg = _Config(
        eps=eps,
        logits=not probabilities,
        smoothing=label_smoothing if labels else 0.0,
        divergence=bool(divergence),
        convention=convention,
        max_iter=int(max_iter),
        tol=-1.0 if tol is None else float(tol),
        backend=backend,
        ignore_index=ignore_index,
    )
    return _Prepared(x, t, c, cfg, labels, beta, w_class, acc)


def sinkhorn_loss(
    input: ArrayLike,
    target: ArrayLike,
    cost: CostArg = "affectnet8",
    eps: float = 0.05,
    *,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    probabilities: bool = False,
    divergence: bool = False,
    convention: str = "kl",
    max_iter: int = 1000,
    tol: Optional[float] = None,
    backend: str = "cpu",
) -> jax.Array:
    """The entropic optimal-transport loss ``OT_ε(softmax(input), target)`` of a batch, with
    the semantics of ``torch.nn.CrossEntropyLoss``.

    Per problem ``b``: ``OT_ε(a, β) = min ⟨P, C⟩ + ε·KL(P ‖ a⊗β)`` over plans with marginals
    ``a`` (the prediction) and ``β`` (the target), solved by log-domain Sinkhorn on the CPU
    through an XLA custom call. Differentiable w.r.t. ``input`` and ``cost``.

    Parameters
    ----------
    input : array (B, K), float16, bfloat16, float32 or float64
        Logits, or probabilities (rows on the simplex) with ``probabilities=True``.
    target : array (B,) of integers, or (B, K) of floats
        Class indices in ``0..K`` (``ignore_index`` marks ignored rows), or target
        distributions (cast to ``input``'s dtype).
    cost : str or array (K, K)
        A preset name (``circot.cost(name).values``), a :class:`circot.CostMatrix` or a finite,
        non-negative (K, K) array; ``cost[i, j]`` is the price of moving mass from class ``i``
        to class ``j``. Gradients flow to a cost array that is differentiated.
    eps : float
        Entropic regularisation ε > 0, in units of the cost.
    weight : array (K,), optional
        Class weights: ``w_b = weight[target_b]`` for labels (the mean divides by ``Σ w_b`` over
        kept rows), ``w_b = Σ_k weight_k·β_bk`` for distributions (the mean divides by B).
    ignore_index : int
        Label of rows to ignore (loss 0, left out of the mean; all ignored gives 0).
    reduction : {"mean", "sum", "none"}
        How per-problem losses ``w_b·L_b`` are combined.
    label_smoothing : float in [0, 1]
        ``β = (1 − s)·target + s/K``.
    probabilities : bool
        ``input`` holds probabilities instead of logits.
    divergence : bool
        The debiased Sinkhorn divergence ``OT_ε(a,β) − ½OT_ε(a,a) − ½OT_ε(β,β)``.
    convention : {"kl", "entropy"}
        The regulariser of the reported value and gradient (ignored by the divergence).
    max_iter : int
        Iteration cap per problem (reaching it is not an error).
    tol : float, optional
        Stopping tolerance on the L1 row-marginal error; default: the crate's (3e-7, raised to
        what the arithmetic type reaches; f32 for float16/bfloat16 inputs).
    backend : {"cpu", "reference"}
        circot's rayon CPU backend, or its f64 reference solver.

    Returns
    -------
    jax.Array
        A scalar (``"mean"``, ``"sum"``) or the (B,) weighted per-problem losses
        (``"none"``), in ``input``'s dtype.

    Raises
    ------
    TypeError
        An argument of the wrong dtype (named in the message).
    ValueError
        A bad shape, option or (when the values are concrete) label or cost. Inside
        :func:`jax.jit`, a label outside ``0..K`` or an invalid cost makes the custom call
        fail with the same message when the computation runs.

    Examples
    --------
    >>> import numpy as np, jax, jax.numpy as jnp
    >>> from circot.jax import sinkhorn_loss
    >>> cost = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    >>> logits = jnp.array([[3.0, 0.0, -3.0], [0.0, 0.0, 0.0]])
    >>> labels = jnp.array([0, -100])
    >>> float(sinkhorn_loss(logits, labels, cost, eps=0.1, reduction="sum")) > 0
    True
    >>> step = jax.jit(jax.grad(lambda z: sinkhorn_loss(z, labels, cost, eps=0.1)))
    >>> step(logits)[1].tolist()  # the ignored row gets no gradient
    [0.0, 0.0, 0.0]
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    p = _prepare(input, target, cost, eps, weight, ignore_index, label_smoothing, probabilities,
                 divergence, convention, max_iter, tol, backend)  # fmt: skip
    x, acc, b = p.x, p.acc, p.x.shape[0]
    per = _per_problem(x, p.t, p.c, p.cfg).astype(acc)

    if p.labels:
        kept = p.t != p.cfg.ignore_index
        if p.w_class is None:
            w = kept.astype(acc)
        else:
            w = jnp.where(kept, p.w_class[jnp.where(kept, p.t, 0)], 0.0)
    else:
        w = jnp.ones((b,), acc) if p.w_class is None else p.beta @ p.w_class
    weighted = w * per
    if reduction == "none":
        return weighted.astype(x.dtype)
    total = jnp.sum(weighted)
    if reduction == "sum":
        return total.astype(x.dtype)
    if not p.labels:
        return (total / max(b, 1)).astype(x.dtype)
    # CE's mean over labels: divided by the kept rows' total weight (0 when there is none).
    norm = jnp.sum(w)
    positive = norm > 0
    return jnp.where(positive, total / jnp.where(positive, norm, 1.0), 0.0).astype(x.dtype)


class Terms(NamedTuple):
    """What one custom call returns, per problem (see :func:`sinkhorn_terms`)."""

    loss: jax.Array
    """(B,) unweighted per-problem losses (0 for ignored rows), in ``input``'s dtype."""
    grad_input: jax.Array
    """(B, K) ``∂L_b/∂input_b``: w.r.t. the logits, or the probabilities (centred)."""
    iterations: jax.Array
    """(B,) int32: Sinkhorn iterations of ``a → β`` (1 for one-hot labels, 0 if ignored)."""
    marginal_error: jax.Array
    """(B,) the final L1 row-marginal error ``Σ_i |Σ_j P_ij − a_i|``."""


def sinkhorn_terms(
    input: ArrayLike,
    target: ArrayLike,
    cost: CostArg = "affectnet8",
    eps: float = 0.05,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    probabilities: bool = False,
    divergence: bool = False,
    convention: str = "kl",
    max_iter: int = 1000,
    tol: Optional[float] = None,
    backend: str = "cpu",
) -> Terms:
    """The custom call's raw per-problem outputs, for diagnostics (convergence, iteration
    counts); not differentiable (use :func:`sinkhorn_loss` for training).

    Arguments are those of :func:`sinkhorn_loss` (no weights, no reduction).

    Returns
    -------
    Terms
        ``loss``, ``grad_input``, ``iterations`` and ``marginal_error``, one row per problem.

    Examples
    --------
    >>> import numpy as np, jax.numpy as jnp
    >>> from circot.jax import sinkhorn_terms
    >>> cost = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    >>> terms = sinkhorn_terms(jnp.zeros((2, 3)), jnp.array([0, -100]), cost, eps=0.1)
    >>> terms.iterations.tolist()  # a one-hot label is solved in closed form; -100 is ignored
    [1, 0]
    """
    p = _prepare(input, target, cost, eps, None, ignore_index, label_smoothing, probabilities,
                 divergence, convention, max_iter, tol, backend)  # fmt: skip
    x, t, c = (jax.lax.stop_gradient(v) for v in (p.x, p.t, p.c))
    loss, grad_input, _, iterations, marginal_error = _call(x, t, c, p.cfg, cost_grad=False)
    return Terms(loss, grad_input, iterations, marginal_error)
