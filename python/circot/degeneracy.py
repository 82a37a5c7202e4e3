"""Degeneracy analysis of a ground cost (``circot::degeneracy``, ``circot cost --analyse``):
which class pairs the OT term cannot tell apart.

For a K × K cost ``C`` with largest entry ``M > 0``:

* the **normalised distance** of a pair is ``d_ij = (C_ij + C_ji) / (2M)``;
* the **typical price** ``m_j`` of true class ``j`` is the median of ``C_lj`` over ``l ≠ j``;
* the **separation** is ``s_ij = min(C_ij / m_j, C_ji / m_i)``, which no per-class
  re-weighting (class-weighted loss, re-sampling) can change.

A pair is **degenerate** when ``s_ij < threshold`` (default 0.25) or, with ``eps``, when its
symmetrised cost is ``≤ eps`` (the entropic plan moves mass across it almost freely). With
class frequencies, a class whose share is below ``rare_share / K`` is **rare**.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from . import _native
from ._cost import CostMatrix, _as_floats, _as_optional_real, _as_real, cost

__all__ = ["DEFAULT_RARE_SHARE", "DEFAULT_THRESHOLD", "analyse", "analyze"]

#: Default separation threshold.
DEFAULT_THRESHOLD: float = float(_native.DEGENERACY_THRESHOLD)
#: Default rare-class share, as a fraction of the uniform share 1/K.
DEFAULT_RARE_SHARE: float = float(_native.DEGENERACY_RARE_SHARE)


def analyse(
    cost_or_preset: Any,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    eps: Optional[float] = None,
    frequencies: Any = None,
    rare_share: float = DEFAULT_RARE_SHARE,
) -> Dict[str, Any]:
    """Analyses a cost's class pairs: distances, separations, the degenerate ones.

    Parameters
    ----------
    cost_or_preset : CostMatrix, str or array_like
        A cost, a preset name (its circumplex cost), or a (K, K) matrix.
    threshold : float
        Pairs with separation below it are degenerate (> 0).
    eps : float, optional
        The entropic ε the cost is used with (cost units): pairs costing ``≤ eps`` are
        degenerate too.
    frequencies : array_like, optional
        (K,) class counts or shares, to flag rare classes.
    rare_share : float
        A class is rare when its share is below ``rare_share / K`` (> 0).

    Returns
    -------
    dict
        ``names``; ``pairs``: every pair nearest first, each a dict with ``name``
        (``"A-B"``), ``i``, ``j``, ``classes``, ``cost`` (symmetrised), ``distance``,
        ``separation``, ``within_eps`` (None without eps), ``degenerate`` and ``rare`` (a pair
        of bools); ``degenerate``: the degenerate pair names, nearest first; ``typical``
        (K ndarray); ``nearest``: per class, its nearest class and distance; ``shares``
        (K ndarray or None); ``rare`` (list of bool); ``threshold``, ``eps``, ``rare_share``;
        ``report``: the CLI's text.

    Raises
    ------
    ValueError
        A non-positive or non-finite threshold, eps or rare share; frequencies of the wrong
        length, negative, non-finite or all zero; an invalid cost or unknown preset.

    Examples
    --------
    >>> from circot.degeneracy import analyse
    >>> analyse("affectnet8")["degenerate"]
    ['Anger-Contempt']
    >>> r = analyse("affwild2-8")
    >>> r["pairs"][0]["name"], r["degenerate"]
    ('Anger-Fear', ['Anger-Fear'])
    """
    if isinstance(cost_or_preset, str):
        c = cost(cost_or_preset)
    elif isinstance(cost_or_preset, CostMatrix):
        c = cost_or_preset
    else:
        c = CostMatrix(_as_floats(cost_or_preset, "cost_or_preset", 2, "a (K, K) matrix"))
    return _native.degeneracy_analyse(
        c.values,
        c.class_names,
        threshold=_as_real(threshold, "threshold"),
        eps=_as_optional_real(eps, "eps"),
        frequencies=None
        if frequencies is None
        else _as_floats(frequencies, "frequencies", 1, "(K,) class frequencies"),
        rare_share=_as_real(rare_share, "rare_share"),
    )


#: US spelling, as the CLI's ``--analyze`` alias.
analyze = analyse
