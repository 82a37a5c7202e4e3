"""The study's metrics, computed by the Rust crate (``circot::metrics``), as ``circot eval``.

* Classification: confusion matrix, per-class precision, recall and F1, macro-F1, accuracy,
  mean accuracy (balanced accuracy).
* Affective: how far in the circumplex the errors fall (affective error distance, error
  severity, VA error distance, quadrant preservation).
* ABAW challenge scores: EXPR per edition, AU, VA and the multi-task sum.

Conventions (the crate's):

* A **negative true label** (Aff-Wild2's ``-1``) drops the sample from every metric; a true
  label ``≥ K`` or a prediction outside ``0..K`` is an error.
* Scores are read by **argmax**, ties to the lowest class (as ``numpy.argmax``).
* **zero_division = 0**: a precision, recall or F1 with a zero denominator is 0, and macro-F1
  averages over **all K classes** (a class absent from truth and predictions counts as 0).
* **Mean accuracy** averages recall over the classes present in the truth.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _native
from ._cost import (
    CostMatrix,
    _as_floats,
    _as_int,
    _as_labels,
    _as_names,
    _as_positions,
    _as_real,
    _as_str,
    _shape_text,
    _to_array,
)

__all__ = [
    "QUADRANT_CENTRAL_RADIUS",
    "abaw_au",
    "abaw_expr",
    "abaw_multi_task",
    "abaw_va",
    "accuracy",
    "argmax",
    "ccc",
    "confusion_matrix",
    "evaluate",
    "macro_f1",
    "mean_accuracy",
    "quadrant",
]

#: Classes closer than this to the circumplex origin have no quadrant (Neutral).
QUADRANT_CENTRAL_RADIUS: float = float(_native.QUADRANT_CENTRAL_RADIUS)

CostLike = Union[CostMatrix, str, Any]


def _edition(abaw: Any) -> Optional[str]:
    if abaw is None:
        return None
    if isinstance(abaw, bool):
        raise TypeError("abaw must be an edition number 1..8 or a name like 'abaw3', got bool")
    if isinstance(abaw, (int, np.integer)):
        return str(int(abaw))
    if isinstance(abaw, str):
        return abaw
    raise TypeError(
        f"abaw must be an edition number 1..8 or a name like 'abaw3', got {type(abaw).__name__}"
    )


def _predictions(y_pred: Any) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(labels, None) for (N,) predictions, (None, scores) for (N, K) scores."""
    array = _to_array(y_pred, "y_pred")
    if array.ndim == 1:
        return _as_labels(array, "y_pred"), None
    if array.ndim == 2:
        return None, _as_floats(array, "y_pred", 2, "(N, K) scores")
    raise ValueError(
        f"y_pred must be (N,) predicted labels or (N, K) scores, "
        f"got shape {_shape_text(array.shape)}"
    )


def evaluate(
    y_true: Any,
    y_pred: Any,
    *,
    num_classes: Optional[int] = None,
    preset: Optional[str] = None,
    cost: Optional[CostLike] = None,
    class_names: Optional[List[str]] = None,
    quadrant_radius: float = QUADRANT_CENTRAL_RADIUS,
    abaw: Union[int, str, None] = None,
    va_pred: Any = None,
    va_true: Any = None,
    au_pred: Any = None,
    au_true: Any = None,
    au_threshold: float = 0.5,
) -> Dict[str, Any]:
    """Every metric of ``circot eval --json``, in one dict.

    Parameters
    ----------
    y_true : array_like of int
        (N,) true labels; negative ones are ignored.
    y_pred : array_like
        (N,) predicted labels (integers), or (N, K) scores (probabilities or logits, read by
        argmax).
    num_classes : int, optional
        K for label predictions. Default: the preset's or the cost's K, else the largest label
        plus one (at least 2). Scores give K themselves.
    preset : str, optional
        A preset: its class names, its circumplex positions (VA error distance, quadrant
        preservation) and, without ``cost``, its circumplex cost.
    cost : CostMatrix, str or array_like, optional
        The cost pricing the errors (affective error distance, error severity). A preset name
        means its circumplex cost. A :class:`~circot.CostMatrix` also lends its class names and
        positions when no ``preset`` is given.
    class_names : list of str, optional
        Names for the ``classes`` entry (default: the preset's or the cost's, else indices).
    quadrant_radius : float
        Classes within this distance of the origin have no quadrant.
    abaw : int or str, optional
        ABAW edition (``3`` or ``"abaw3"``): adds its EXPR score (ABAW1-2:
        ``0.67·macro-F1 + 0.33·accuracy`` over 7 classes; ABAW3+: macro-F1 over 8).
    va_pred, va_true : array_like, optional
        (N, 2) valence-arousal predictions and annotations: the ABAW VA score (frames whose
        truth is outside ``[-1, 1]``, e.g. -5, are ignored).
    au_pred, au_true : array_like, optional
        (N, 12) AU scores (active when ``≥ au_threshold``) and labels in {0, 1} (-1 ignored):
        the ABAW AU score. With EXPR, VA and AU on an edition that ran the multi-task challenge
        (3, 4, 7), ``abaw_multi_task`` is their sum.
    au_threshold : float
        Activation threshold of the AU scores.

    Returns
    -------
    dict
        ``classes`` (names), ``num_classes``, ``samples`` (counted), ``ignored``, ``errors``,
        ``confusion`` (K × K int64 ndarray, rows truth), ``support``, ``per_class_f1``,
        ``precision``, ``recall`` (K ndarrays), ``macro_f1``, ``accuracy``,
        ``mean_accuracy``, ``affective_error_distance``, ``error_severity``,
        ``va_error_distance``, ``quadrant_preservation``, ``quadrant_errors``,
        ``abaw_edition``, ``abaw_expr``, ``abaw_va``, ``ccc_valence``, ``ccc_arousal``,
        ``va_ignored``, ``abaw_au``, ``au_f1`` (12 ndarray) and ``abaw_multi_task``; each is
        None when it does not apply.

    Raises
    ------
    ValueError
        Mismatched lengths, a label out of range, no counted sample, non-finite scores, a
        cost or preset of another K, an unknown ABAW edition, or an edition scored over
        another number of classes.
    TypeError
        Non-integer labels (floats with a fractional part, strings) or non-numeric scores.

    Examples
    --------
    >>> from circot.metrics import evaluate
    >>> r = evaluate([0, 0, 1, 1, 2, -1], [0, 1, 1, 1, 1, 2])
    >>> r["confusion"].tolist()
    [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    >>> round(r["macro_f1"], 4), r["accuracy"], r["mean_accuracy"], r["ignored"]
    (0.4444, 0.6, 0.5, 1)
    >>> r = evaluate([6, 6, 6, 2], [6, 7, 1, 2], preset="affectnet8")
    >>> r["errors"], r["quadrant_preservation"], round(r["error_severity"], 4)
    (2, 0.5, 0.2283)
    """
    labels, scores = _predictions(y_pred)
    truth = _as_labels(y_true, "y_true")
    k = None if num_classes is None else _as_int(num_classes, "num_classes")
    preset_name = None if preset is None else _as_str(preset, "preset")
    cost_values: Optional[np.ndarray] = None
    positions = None
    names = _as_names(class_names)
    if cost is not None:
        if isinstance(cost, str):
            from ._cost import cost as _preset_cost

            cost = _preset_cost(cost)
        if isinstance(cost, CostMatrix):
            cost_values = cost.values
            positions = cost.positions
            if names is None:
                names = cost.class_names
        else:
            cost_values = _as_floats(cost, "cost", 2, "a (K, K) matrix")
    return _native.metrics_evaluate(
        truth,
        labels,
        scores,
        num_classes=k,
        preset=preset_name,
        cost=cost_values,
        positions=positions,
        class_names=names,
        quadrant_radius=_as_real(quadrant_radius, "quadrant_radius"),
        abaw=_edition(abaw),
        va_pred=None if va_pred is None else _as_floats(va_pred, "va_pred", 2, "(N, 2)"),
        va_true=None if va_true is None else _as_floats(va_true, "va_true", 2, "(N, 2)"),
        au_pred=None if au_pred is None else _as_floats(au_pred, "au_pred", 2, "(N, 12)"),
        au_true=None if au_true is None else _as_labels(au_true, "au_true", 2, "(N, 12)"),
        au_threshold=_as_real(au_threshold, "au_threshold"),
    )


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """The K × K confusion counts (rows: truth, columns: prediction); negative truths ignored.

    Parameters
    ----------
    y_true : array_like of int
        (N,) true labels.
    y_pred : array_like
        (N,) predicted labels or (N, K) scores.
    num_classes : int, optional
        K (default: the largest label plus one, at least 2; scores give K).

    Returns
    -------
    ndarray of int64

    Examples
    --------
    >>> from circot.metrics import confusion_matrix
    >>> confusion_matrix([0, 1, 1], [0, 0, 1]).tolist()
    [[1, 0], [1, 1]]
    """
    return evaluate(y_true, y_pred, num_classes=num_classes)["confusion"]


def macro_f1(y_true: Any, y_pred: Any, num_classes: Optional[int] = None) -> float:
    """Unweighted mean of the per-class F1 over all K classes (zero_division = 0).

    Parameters
    ----------
    y_true : array_like of int
        (N,) true labels.
    y_pred : array_like
        (N,) predicted labels or (N, K) scores.
    num_classes : int, optional
        K; a class absent from both truth and predictions counts as F1 = 0.

    Returns
    -------
    float

    Examples
    --------
    >>> from circot.metrics import macro_f1
    >>> round(macro_f1([0, 0, 1, 1, 2], [0, 1, 1, 1, 1]), 4)
    0.4444
    >>> round(macro_f1([0, 0, 1, 1, 2], [0, 1, 1, 1, 1], num_classes=4), 4)
    0.3333
    """
    return float(evaluate(y_true, y_pred, num_classes=num_classes)["macro_f1"])


def accuracy(y_true: Any, y_pred: Any, num_classes: Optional[int] = None) -> float:
    """Share of counted samples predicted correctly.

    Parameters
    ----------
    y_true : array_like of int
        (N,) true labels.
    y_pred : array_like
        (N,) predicted labels or (N, K) scores.
    num_classes : int, optional
        K.

    Returns
    -------
    float

    Examples
    --------
    >>> from circot.metrics import accuracy
    >>> accuracy([0, 1, 1, -1], [0, 0, 1, 1])
    0.6666666666666666
    """
    return float(evaluate(y_true, y_pred, num_classes=num_classes)["accuracy"])


def mean_accuracy(y_true: Any, y_pred: Any, num_classes: Optional[int] = None) -> float:
    """Mean per-class recall over the classes present in the truth (balanced accuracy).

    Parameters
    ----------
    y_true : array_like of int
        (N,) true labels.
    y_pred : array_like
        (N,) predicted labels or (N, K) scores.
    num_classes : int, optional
        K.

    Returns
    -------
    float

    Examples
    --------
    >>> from circot.metrics import mean_accuracy
    >>> mean_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
    0.5
    """
    return float(evaluate(y_true, y_pred, num_classes=num_classes)["mean_accuracy"])


def abaw_expr(
    y_true: Any, y_pred: Any, edition: Union[int, str]
) -> float:
    """The ABAW EXPR score of an edition (K must be the edition's: 7 for ABAW1-2, 8 after).

    Parameters
    ----------
    y_true : array_like of int
        (N,) true labels (-1 ignored).
    y_pred : array_like
        (N,) predicted labels or (N, K) scores.
    edition : int or str
        1..8 or ``"abaw3"``.

    Returns
    -------
    float

    Examples
    --------
    >>> from circot.metrics import abaw_expr
    >>> abaw_expr([0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7], "abaw5")
    1.0
    """
    name = _edition(edition)
    assert name is not None
    array = _to_array(y_pred, "y_pred")
    # Label predictions are over the edition's classes.
    k = _native.metrics_abaw_edition(name)["expr_classes"] if array.ndim == 1 else None
    return float(evaluate(y_true, array, num_classes=k, abaw=name)["abaw_expr"])


def argmax(scores: Any) -> np.ndarray:
    """The predicted class of each row of (N, K) scores, ties to the lowest class.

    Parameters
    ----------
    scores : array_like
        (N, K) probabilities or logits, finite.

    Returns
    -------
    ndarray of int64

    Examples
    --------
    >>> from circot.metrics import argmax
    >>> argmax([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [-1.0, 3.0, 0.5]]).tolist()
    [0, 0, 1]
    """
    return _native.metrics_argmax(_as_floats(scores, "scores", 2, "(N, K) scores"))


def ccc(x: Any, y: Any) -> float:
    """Lin's concordance correlation coefficient with population moments (as ABAW).

    ``2·s_xy / (s_x² + s_y² + (x̄ − ȳ)²)``; 1 if both are constant and equal.

    Parameters
    ----------
    x, y : array_like
        (N,) finite values, N ≥ 1.

    Returns
    -------
    float

    Examples
    --------
    >>> from circot.metrics import ccc
    >>> ccc([0.1, -0.3, 0.5], [0.1, -0.3, 0.5])
    1.0
    >>> round(ccc([1.0, -1.0], [-1.0, 1.0]), 6)
    -1.0
    """
    return float(
        _native.metrics_ccc(_as_floats(x, "x", 1, "(N,)"), _as_floats(y, "y", 1, "(N,)"))
    )


def abaw_va(va_pred: Any, va_true: Any) -> Dict[str, Any]:
    """The ABAW VA score ``(CCC_V + CCC_A) / 2``.

    Frames whose true valence or arousal is outside ``[-1, 1]`` or not finite (Aff-Wild2's
    -5) are ignored.

    Parameters
    ----------
    va_pred, va_true : array_like
        (N, 2) valence, arousal.

    Returns
    -------
    dict
        ``score``, ``ccc_valence``, ``ccc_arousal``, ``ignored``.

    Examples
    --------
    >>> from circot.metrics import abaw_va
    >>> r = abaw_va([[0.1, 0.2], [-0.3, 0.4], [0.9, 0.9]], [[0.1, 0.2], [-0.3, 0.4], [-5, -5]])
    >>> round(r["score"], 6), r["ignored"]
    (1.0, 1)
    """
    return _native.metrics_abaw_va(
        _as_floats(va_pred, "va_pred", 2, "(N, 2)"), _as_floats(va_true, "va_true", 2, "(N, 2)")
    )


def abaw_au(au_pred: Any, au_true: Any, threshold: float = 0.5) -> Dict[str, Any]:
    """The ABAW AU score: mean binary F1 of "active" over Aff-Wild2's 12 AUs.

    Parameters
    ----------
    au_pred : array_like
        (N, 12) scores or 0/1; active when ``≥ threshold``.
    au_true : array_like of int
        (N, 12) labels in {0, 1}; -1 is ignored.
    threshold : float
        Activation threshold.

    Returns
    -------
    dict
        ``score``, ``per_au_f1`` (12 ndarray), ``action_units`` (the AU numbers).

    Examples
    --------
    >>> import numpy as np
    >>> from circot.metrics import abaw_au
    >>> truth = np.zeros((4, 12), dtype=int); truth[:, 0] = [1, 1, 0, -1]
    >>> pred = np.zeros((4, 12)); pred[:, 0] = [0.9, 0.2, 0.7, 0.9]
    >>> r = abaw_au(pred, truth)
    >>> float(r["per_au_f1"][0]), round(r["score"], 6)
    (0.5, 0.041667)
    """
    return _native.metrics_abaw_au(
        _as_floats(au_pred, "au_pred", 2, "(N, 12)"),
        _as_labels(au_true, "au_true", 2, "(N, 12)"),
        _as_real(threshold, "threshold"),
    )


def abaw_multi_task(edition: Union[int, str], va: float, expr: float, au: float) -> float:
    """The multi-task score ``VA + EXPR + AU`` of ABAW3, 4 or 7.

    Parameters
    ----------
    edition : int or str
        An edition that ran the multi-task challenge.
    va, expr, au : float
        The track scores.

    Returns
    -------
    float

    Examples
    --------
    >>> from circot.metrics import abaw_multi_task
    >>> round(abaw_multi_task(3, 0.4, 0.3, 0.5), 6)
    1.2
    """
    name = _edition(edition)
    assert name is not None
    return float(
        _native.metrics_abaw_multi_task(
            name, _as_real(va, "va"), _as_real(expr, "expr"), _as_real(au, "au")
        )
    )


def quadrant(
    position: Optional[Tuple[float, float]], radius: float = QUADRANT_CENTRAL_RADIUS
) -> Optional[Tuple[int, int]]:
    """The quadrant ``(sign V, sign A)`` of a class position.

    Parameters
    ----------
    position : (float, float) or None
        Valence, arousal.
    radius : float
        Positions within this distance of the origin have no quadrant.

    Returns
    -------
    (int, int) or None
        None for no position, a central one, or one on an axis.

    Examples
    --------
    >>> from circot.metrics import quadrant
    >>> quadrant((-0.51, 0.59)), quadrant((0.0, 0.0)), quadrant(None)
    ((-1, 1), None, None)
    """
    p = None if position is None else _as_positions([position], "position")[0]
    return _native.metrics_quadrant(p, _as_real(radius, "radius"))

