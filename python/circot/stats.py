"""Paired tests over seeds, computed by the Rust crate (``circot::stats``), as ``circot stats``.

The differences are ``d = x − y``: ``alternative="greater"`` means "x tends to exceed y".

* **Wilcoxon signed-rank**: zeros dropped before ranking by default (``zero_method="wilcox"``,
  scipy's default) or ranked then dropped (``"pratt"``); tied ``|d|`` get their mid-rank. The
  exact null distribution is computed by dynamic programming, exact with ties and zeros. The
  statistic is ``T⁺``, the sum of the positive ranks, for every alternative.
* **Sign flip**: the exact permutation test on the mean difference (every one of the ``2^n``
  sign patterns); the statistic is the mean of ``x − y``.
* ``method="auto"`` is exact up to 50 nonzero differences (Wilcoxon, as scipy) or 30 pairs
  (sign flip), and the normal approximation beyond; ``"exact"`` and ``"normal"`` (alias
  ``"approx"``) force one. Every result says which method produced it.

With 5 seeds the attainable exact p-values are multiples of 1/32 (e.g. 20/32 = 0.625
two-sided, 1/32 = 0.03125 one-sided when every seed improves).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from . import _native
from ._cost import _as_floats, _as_str

__all__ = ["sign_flip", "wilcoxon"]


def _pair(x: Any, y: Optional[Any]) -> "tuple[np.ndarray, np.ndarray]":
    xs = _as_floats(x, "x", 1, "(n,) values")
    ys = np.zeros_like(xs) if y is None else _as_floats(y, "y", 1, "(n,) values")
    return xs, ys


def wilcoxon(
    x: Any,
    y: Optional[Any] = None,
    *,
    alternative: str = "two-sided",
    method: str = "auto",
    zero_method: str = "wilcox",
) -> Dict[str, Any]:
    """The Wilcoxon signed-rank test of the paired differences ``x − y``.

    Parameters
    ----------
    x : array_like
        (n,) scores of the first condition (e.g. macro-F1 per seed), finite.
    y : array_like, optional
        (n,) scores of the second condition on the same seeds; omitted, ``x`` holds the
        differences.
    alternative : {"two-sided", "greater", "less"}
        About ``x − y``.
    method : {"auto", "exact", "normal"}
        ``"approx"`` is accepted for ``"normal"`` (scipy's name).
    zero_method : {"wilcox", "pratt"}
        Zero differences: dropped, or ranked and then dropped.

    Returns
    -------
    dict
        ``test``, ``alternative``, ``statistic`` (``T⁺``), ``p_value``, ``method`` (in
        words), ``exact`` (bool), ``n`` (pairs given) and ``n_used`` (nonzero differences).
        Without any nonzero difference, ``p_value`` is 1.

    Raises
    ------
    ValueError
        Different lengths, no pair, a non-finite value, an unknown option, or
        ``method="exact"`` beyond 1000 nonzero differences.

    Examples
    --------
    >>> from circot.stats import wilcoxon
    >>> x = [0.61, 0.63, 0.60, 0.64, 0.62]
    >>> y = [0.60, 0.61, 0.57, 0.60, 0.67]   # differences .01 .02 .03 .04 -.05
    >>> r = wilcoxon(x, y)
    >>> r["statistic"], r["p_value"], r["exact"]
    (10.0, 0.625, True)
    >>> wilcoxon([0.70] * 5, y, alternative="greater")["p_value"]
    0.03125
    """
    xs, ys = _pair(x, y)
    return _native.stats_paired(
        "wilcoxon",
        xs,
        ys,
        _as_str(alternative, "alternative"),
        _as_str(method, "method"),
        _as_str(zero_method, "zero_method"),
    )


def sign_flip(
    x: Any,
    y: Optional[Any] = None,
    *,
    alternative: str = "two-sided",
    method: str = "auto",
) -> Dict[str, Any]:
    """The sign-flip permutation test on the mean of the paired differences ``x − y``.

    Under the null each difference is as likely to have either sign; zeros are kept (flipping
    one changes nothing). Two-sided is ``P(|S| ≥ |s|)`` for the signed sum ``S``.

    Parameters
    ----------
    x : array_like
        (n,) scores of the first condition, finite.
    y : array_like, optional
        (n,) scores of the second condition; omitted, ``x`` holds the differences.
    alternative : {"two-sided", "greater", "less"}
        About ``x − y``.
    method : {"auto", "exact", "normal"}
        Exact enumerates ``2^n`` patterns (n ≤ 40); ``"approx"`` is accepted for ``"normal"``.

    Returns
    -------
    dict
        ``test``, ``alternative``, ``statistic`` (the mean difference), ``p_value``,
        ``method`` (in words), ``exact``, ``n``, ``n_used``.

    Raises
    ------
    ValueError
        Different lengths, no pair, a non-finite value, an unknown option, or
        ``method="exact"`` beyond 40 pairs.

    Examples
    --------
    >>> from circot.stats import sign_flip
    >>> r = sign_flip([1.0, 2.0, 3.0, 4.0, -5.0])
    >>> r["statistic"], r["p_value"], r["method"]
    (1.0, 0.625, 'exact sign-flip permutation distribution (2^5 sign patterns)')
    """
    xs, ys = _pair(x, y)
    return _native.stats_paired(
        "sign-flip",
        xs,
        ys,
        _as_str(alternative, "alternative"),
        _as_str(method, "method"),
        "wilcox",
    )
