"""``circot.solve``: a batch of entropic optimal-transport problems on NumPy arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from . import _native

__all__ = ["Solution", "solve", "as_cost_array"]

CostLike = Union[str, "np.typing.ArrayLike", Any]


def as_cost_array(cost: CostLike) -> np.ndarray:
    """The (K, K) float64 matrix of a preset name, a :class:`circot.CostMatrix` or an array.

    A preset name (``"affectnet8"``, ``"affectnet7"``, ``"affwild2-7"``, ``"affwild2-8"``) means
    that preset's circumplex cost. The crate validates the matrix on every call.
    """
    if isinstance(cost, str):
        from ._cost import cost as preset_cost

        return np.asarray(preset_cost(cost).values, dtype=np.float64)
    return np.asarray(cost)


@dataclass(frozen=True)
class Solution:
    """Per-problem results of :func:`solve` for a batch of B problems with K classes.

    Every array has one row per problem; fields that do not apply are ``None`` (``grad_logits``
    without logits, ``plan`` unless asked for; ``transport_cost``, ``f``, ``g`` and
    ``grad_source`` of a divergence, which combines three solves and has no single plan).

    Attributes
    ----------
    loss : ndarray (B,)
        The dual value after the last g-update, in the requested convention (with
        ``divergence=True``: the debiased Sinkhorn divergence).
    transport_cost : ndarray (B,) or None
        ``⟨P, C⟩``.
    f, g : ndarray (B, K) or None
        Potentials in the KL convention, units of C, shifted so that ``mean(f) = mean(g)``.
    grad_source : ndarray (B, K) or None
        Gradient w.r.t. the source probabilities, centred (sums to zero).
    grad_logits : ndarray (B, K) or None
        Gradient w.r.t. the logits, when the source was logits.
    iterations : ndarray (B,) of uint32
        g-updates per problem (1 for one-hot labels, solved in closed form; 0 if ignored).
    marginal_error : ndarray (B,)
        L1 row-marginal error ``Σ_i |Σ_j P_ij − a_i|`` after the last g-update.
    plan : ndarray (B, K, K) or None
        Transport plans when ``plan=True`` (with ``divergence=True``: ``∂S/∂C`` per problem).
    executed : str
        The backend that ran: ``"cpu"``, ``"cuda"`` or ``"reference"``.
    tol : float
        The stopping tolerance used.
    self_iterations, self_marginal_error : ndarray (B, 2) or None
        With ``divergence=True``: iterations (uint32) and final L1 row-marginal errors of the
        self terms ``OT(a, a)`` (column 0) and ``OT(β, β)`` (column 1); ``iterations`` and
        ``marginal_error`` are those of ``a → β``.
    """

    loss: np.ndarray
    transport_cost: Optional[np.ndarray]
    f: Optional[np.ndarray]
    g: Optional[np.ndarray]
    grad_source: Optional[np.ndarray]
    grad_logits: Optional[np.ndarray]
    iterations: np.ndarray
    marginal_error: np.ndarray
    plan: Optional[np.ndarray]
    executed: str
    tol: float
    self_iterations: Optional[np.ndarray] = None
    self_marginal_error: Optional[np.ndarray] = None

    @property
    def batch(self) -> int:
        """Number of problems."""
        return int(self.loss.shape[0])

    def converged(self) -> int:
        """Number of problems whose final marginal error is within the tolerance used."""
        return int(np.count_nonzero(self.marginal_error.astype(np.float64) <= self.tol))


def solve(
    cost: CostLike,
    source: "np.typing.ArrayLike",
    target: "np.typing.ArrayLike",
    *,
    eps: float,
    logits: bool = False,
    smoothing: float = 0.0,
    convention: str = "kl",
    divergence: bool = False,
    max_iter: int = 1000,
    tol: Optional[float] = None,
    backend: str = "auto",
    plan: bool = False,
    init_g: Optional["np.typing.ArrayLike"] = None,
) -> Solution:
    """Solve a batch of entropic OT problems ``OT_ε(a_b, β_b)`` with one shared cost.

    Parameters
    ----------
    cost
        A preset name (its circumplex cost), a :class:`circot.CostMatrix` or a (K, K) array:
        finite, non-negative, ``2 <= K <= 32``; ``cost[i, j]`` prices moving mass from source
        class ``i`` to target class ``j``.
    source
        (B, K) probabilities (rows on the simplex) or, with ``logits=True``, logits.
        float16, bfloat16 (``ml_dtypes``), float32 or float64; the half types compute in float32.
    target
        (B,) integer class labels (negative: ignored problem, all outputs 0) or (B, K)
        distributions in the source's dtype.
    eps
        Entropic regularisation ε in units of the cost (> 0).
    logits
        Whether ``source`` holds logits (``a = softmax(z)``, computed as ``z − LSE(z)``).
    smoothing
        Label smoothing ``s`` for label targets: ``β = (1 − s)·e_y + s/K``.
    convention
        ``"kl"`` (``⟨P,C⟩ + ε·KL(P‖a⊗β)``, the default) or ``"entropy"`` (``⟨P,C⟩ − ε·H(P)``).
    divergence
        Return the debiased Sinkhorn divergence ``OT(a,β) − ½OT(a,a) − ½OT(β,β)`` instead.
    max_iter
        Iteration cap per problem; reaching it is reported in ``iterations``, not an error.
    tol
        Stop a problem when its L1 row-marginal error is ``<= tol``; ``None``: the default for
        the dtype (``Solution.tol`` says which was used).
    backend
        ``"auto"`` (CUDA when usable, else the CPU), ``"cpu"``, ``"cuda"`` or ``"reference"``
        (the float64 oracle).
    plan
        Also return the (B, K, K) plans.
    init_g
        A warm start: (B, K) target potentials, for example the ``g`` of an earlier solve.

    Returns
    -------
    Solution

    Raises
    ------
    TypeError
        A wrong dtype (the message names the argument).
    ValueError
        A wrong shape or value (the message names it: index, value, shape).

    Examples
    --------
    >>> import numpy as np, circot
    >>> z = np.array([[2.0, 0.1, -1.0, 0.3, 0.0, -0.5, 0.2, 0.0]], dtype=np.float32)
    >>> s = circot.solve("affectnet8", z, np.array([1]), eps=0.05, logits=True, smoothing=0.1)
    >>> s.loss.shape, s.grad_logits.shape, bool(s.marginal_error[0] <= s.tol)
    ((1,), (1, 8), True)
    """
    cost_array = as_cost_array(cost)
    source_array = np.asarray(source)
    target_array = np.asarray(target)
    if divergence:
        if init_g is not None:
            raise ValueError("init_g (a warm start) is not supported with divergence=True")
        t = _native.terms(
            cost_array, source_array, target_array, eps=eps, logits=logits,
            smoothing=smoothing, divergence=True, convention=convention, max_iter=max_iter,
            tol=tol, backend=backend, cost_grad=plan, ignore_index=None,
        )  # fmt: skip
        grad = t["grad_input"]
        return Solution(
            loss=t["loss"], transport_cost=None, f=None, g=None,
            grad_source=None if logits else grad, grad_logits=grad if logits else None,
            iterations=t["iterations"].astype(np.uint32), marginal_error=t["marginal_error"],
            plan=t["grad_cost"], executed=t["executed"], tol=t["tol"],
            self_iterations=t["self_iterations"].astype(np.uint32),
            self_marginal_error=t["self_marginal_error"],
        )  # fmt: skip
    out = _native.solve(
        cost_array, source_array, target_array, eps=eps, logits=logits, smoothing=smoothing,
        convention=convention, max_iter=max_iter, tol=tol, backend=backend, plan=plan,
        init_g=None if init_g is None else np.asarray(init_g),
    )  # fmt: skip
    return Solution(**out)
