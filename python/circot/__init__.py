"""circot: batched, differentiable entropic optimal-transport (Sinkhorn) losses on small class
spaces (K = 2..32; 7 or 8 facial-expression classes first).

``import circot`` needs only NumPy. The PyTorch loss is in :mod:`circot.torch`, the JAX custom
call in :mod:`circot.jax`; each imports its framework only when it is imported itself.
"""

from __future__ import annotations

from . import degeneracy, metrics, stats
from ._cost import PRESETS, CostMatrix, cost
from ._native import __version__
from ._solve import Solution, solve

__all__ = [
    "PRESETS",
    "CostMatrix",
    "Solution",
    "__version__",
    "cost",
    "degeneracy",
    "metrics",
    "solve",
    "stats",
]
