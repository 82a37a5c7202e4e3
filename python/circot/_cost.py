"""Ground costs between classes: the study's presets, the uniform control, user matrices,
circumplex costs from valence-arousal positions, the action-unit (Jaccard) cost, their
AU-augmented mix, and costs placed at a dataset's own annotation centroids.

Everything is built and validated by the Rust crate (``circot::CostMatrix``); this module only
converts arguments and wraps the result in an immutable :class:`CostMatrix`.
"""

from __future__ import annotations

import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native

__all__ = ["CostMatrix", "cost", "PRESETS", "KINDS", "AU_VOCABULARIES"]

#: The built-in class sets, in the CLI's order.
PRESETS: Tuple[str, ...] = tuple(_native.cost_presets())
#: The cost kinds :func:`cost` builds (``circot cost --kind``).
KINDS: Tuple[str, ...] = ("circumplex", "uniform", "au")
#: The named AU vocabularies and their AU numbers.
AU_VOCABULARIES: Dict[str, Tuple[int, ...]] = {
    name: tuple(_native.cost_vocabulary(name)) for name in ("affwild2", "emfacs")
}

Position = Optional[Tuple[float, float]]
ClassesLike = Union[str, Sequence[str]]
VocabularyLike = Union[str, Sequence[int]]

_INT64_MAX = np.iinfo(np.int64).max


# ----------------------------------------------------------------------------------------------
# Argument conversion shared by the toolkit modules (metrics, stats, degeneracy).


def _to_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, CostMatrix):
        return value.values
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} could not be converted to an array: {e}") from None


def _shape_text(shape: Tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_ndim(array: np.ndarray, name: str, ndim: int, shape: str) -> None:
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {shape}, got shape {_shape_text(array.shape)}")


def _as_labels(value: Any, name: str, ndim: int = 1, shape: str = "(N,) labels") -> np.ndarray:
    """``value`` as an int64 array of ``ndim`` dimensions; integral floats are accepted."""
    array = _to_array(value, name)
    _check_ndim(array, name, ndim, shape)
    kind = array.dtype.kind
    if kind == "i":
        return array.astype(np.int64, copy=False)
    if kind == "u":
        if array.size and int(array.max()) > _INT64_MAX:
            raise ValueError(f"{name} holds a label above the int64 range")
        return array.astype(np.int64)
    if kind == "f":
        flat = array.reshape(-1)
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {flat[bad[0]]} is not finite")
        fractional = np.flatnonzero((flat != np.trunc(flat)) | (np.abs(flat) >= 2.0**63))
        if fractional.size:
            i = fractional[0]
            raise TypeError(
                f"{name} must be integer labels, got float values with a fractional part "
                f"({name}[{i}] = {flat[i]})"
            )
        return array.astype(np.int64)
    raise TypeError(f"{name} must be integer labels, got dtype {array.dtype}")


def _as_floats(value: Any, name: str, ndim: int, shape: str) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions (integers and booleans convert)."""
    array = _to_array(value, name)
    _check_ndim(array, name, ndim, shape)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def _as_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _as_optional_real(value: Any, name: str) -> Optional[float]:
    return None if value is None else _as_real(value, name)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def _as_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _as_names(value: Any, name: str = "class_names") -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of str, got {type(value).__name__}")
    names = list(value)
    for i, n in enumerate(names):
        if not isinstance(n, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(n).__name__}")
    return names


def _as_classes(value: Any) -> Union[str, List[str]]:
    """A preset name, or custom class names."""
    if isinstance(value, str):
        return value
    names = _as_names(value, "classes")
    assert names is not None
    return names


def _as_au_list(value: Any, name: str) -> List[int]:
    if isinstance(value, str):
        raise TypeError(f"{name} must be a sequence of AU numbers, got str")
    array = _as_labels(value, name, 1, "a sequence of AU numbers")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"{name}: AU numbers must be in 0..=255, got {array.tolist()}")
    return [int(v) for v in array]


def _as_vocabulary(value: Any) -> Union[str, List[int]]:
    if isinstance(value, str):
        return value
    return _as_au_list(value, "vocabulary")


def _as_prototypes(value: Any) -> Optional[List[Optional[List[int]]]]:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"prototypes must be a sequence (one AU list or None per class), "
            f"got {type(value).__name__}"
        )
    return [None if p is None else _as_au_list(p, f"prototypes[{i}]") for i, p in enumerate(value)]


def _as_positions(value: Any, name: str = "positions") -> List[Position]:
    """One ``(valence, arousal)`` or ``None`` per class."""
    if isinstance(value, str):
        raise TypeError(f"{name} must be (K, 2) valence-arousal points, got str")
    if isinstance(value, Sequence) and any(p is None for p in value):
        out: List[Position] = []
        for i, p in enumerate(value):
            if p is None:
                out.append(None)
            else:
                point = _as_floats(p, f"{name}[{i}]", 1, "a (valence, arousal) pair")
                if point.shape != (2,):
                    raise ValueError(
                        f"{name}[{i}] must be a (valence, arousal) pair, "
                        f"got shape {_shape_text(point.shape)}"
                    )
                out.append((float(point[0]), float(point[1])))
        return out
    points = _as_floats(value, name, 2, "(K, 2) valence-arousal points")
    if points.shape[1] != 2:
        raise ValueError(
            f"{name} must be (K, 2) valence-arousal points, got shape {_shape_text(points.shape)}"
        )
    return [(float(v), float(a)) for v, a in points]


# ----------------------------------------------------------------------------------------------


def _restore(state: Dict[str, Any]) -> "CostMatrix":
    return CostMatrix._from_native(state)


class CostMatrix:
    """An immutable, validated K × K ground cost (``2 ≤ K ≤ 32``, finite, non-negative).

    Entry ``(i, j)`` is the price of moving mass from class ``i`` to class ``j``; it need not be
    symmetric. Build one with the classmethods (or :func:`cost`); ``CostMatrix(m)`` is
    :meth:`from_matrix`. ``np.asarray(c)`` gives the read-only float64 matrix.

    Parameters
    ----------
    values : array_like
        A (K, K) real matrix, copied.
    class_names : sequence of str, optional
        One name per class.

    Attributes
    ----------
    values : ndarray
        The read-only (K, K) float64 matrix.
    k : int
        Number of classes.
    max : float
        The largest entry (0 for an all-zero cost).
    class_names : list of str or None
        Class names, where known.
    positions : list of (float, float) or None, or None
        The classes' (valence, arousal) positions where known (presets, custom positions,
        annotation centroids); ``None`` for a class without one.
    centroids : dict or None
        For :meth:`from_annotations`: the centroids and what was skipped.

    Examples
    --------
    >>> import circot
    >>> c = circot.CostMatrix.preset("affectnet8")
    >>> c.k, c.max, c.class_names[6]
    (8, 1.0, 'Anger')
    >>> bool((c.values.diagonal() == 0).all())
    True
    >>> circot.CostMatrix([[0, 2], [1, 0]]).values.tolist()
    [[0.0, 2.0], [1.0, 0.0]]
    """

    __slots__ = ("_values", "_class_names", "_positions", "_max", "_table", "_description",
                 "_centroids")

    def __init__(self, values: Any, class_names: Optional[Sequence[str]] = None) -> None:
        m = _as_floats(values, "values", 2, "a (K, K) matrix")
        self._set(_native.cost_from_matrix(m, _as_names(class_names)))

    @classmethod
    def _from_native(cls, state: Dict[str, Any]) -> "CostMatrix":
        obj = cls.__new__(cls)
        obj._set(state)
        return obj

    def _set(self, state: Dict[str, Any]) -> None:
        values = np.array(state["values"], dtype=np.float64, order="C")
        values.setflags(write=False)
        positions = state.get("positions")
        set_ = object.__setattr__
        set_(self, "_values", values)
        set_(self, "_class_names", None if state["class_names"] is None
             else tuple(state["class_names"]))
        set_(self, "_positions", None if positions is None
             else tuple(None if p is None else (float(p[0]), float(p[1])) for p in positions))
        set_(self, "_max", float(state["max"]))
        set_(self, "_table", str(state["table"]))
        set_(self, "_description", str(state["description"]))
        set_(self, "_centroids", state.get("centroids"))

    def _state(self) -> Dict[str, Any]:
        return {
            "values": self._values,
            "class_names": None if self._class_names is None else list(self._class_names),
            "positions": None if self._positions is None else list(self._positions),
            "max": self._max,
            "table": self._table,
            "description": self._description,
            "centroids": self._centroids,
        }

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CostMatrix is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CostMatrix is immutable")

    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]:
        return (_restore, (self._state(),))

    # -- accessors ---------------------------------------------------------------------------

    @property
    def values(self) -> np.ndarray:
        """The (K, K) float64 matrix (a read-only view)."""
        return self._values.view()

    @property
    def k(self) -> int:
        """Number of classes K."""
        return int(self._values.shape[0])

    @property
    def max(self) -> float:
        """The largest entry (0 for an all-zero cost)."""
        return self._max

    @property
    def class_names(self) -> Optional[List[str]]:
        """Class names (a new list), or None."""
        return None if self._class_names is None else list(self._class_names)

    @property
    def positions(self) -> Optional[List[Position]]:
        """Class (valence, arousal) positions where known (a new list), or None."""
        return None if self._positions is None else list(self._positions)

    @property
    def centroids(self) -> Optional[Dict[str, Any]]:
        """Annotation centroids (:meth:`from_annotations` only), or None."""
        if self._centroids is None:
            return None
        return {key: (list(v) if isinstance(v, list) else v) for key, v in self._centroids.items()}

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self._values.dtype:
            if copy is False:
                raise ValueError("converting a CostMatrix to another dtype needs a copy")
            return self._values.astype(dtype)
        return self._values.copy() if copy else self._values.view()

    def __repr__(self) -> str:
        return (
            f"CostMatrix: {self._description} cost (K = {self.k}, max {self._max}):\n"
            f"{self._table.rstrip()}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CostMatrix):
            return NotImplemented
        return self._class_names == other._class_names and bool(
            np.array_equal(self._values, other._values)
        )

    def __hash__(self) -> int:
        return hash((self._values.tobytes(), self._values.shape, self._class_names))

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def from_matrix(cls, m: Any, class_names: Optional[Sequence[str]] = None) -> "CostMatrix":
        """A user matrix, validated: square, ``2 ≤ K ≤ 32``, finite, non-negative.

        Parameters
        ----------
        m : array_like
            The (K, K) matrix (copied).
        class_names : sequence of str, optional
            One name per class.

        Returns
        -------
        CostMatrix

        Raises
        ------
        ValueError
            If ``m`` is not square, K is outside 2..32, or an entry is negative or not finite
            (the message names the entry).
        TypeError
            If ``m`` is not numeric.

        Examples
        --------
        >>> from circot import CostMatrix
        >>> CostMatrix.from_matrix([[0.0, 1.0], [0.5, 0.0]]).max
        1.0
        >>> CostMatrix.from_matrix([[0.0, -1.0], [1.0, 0.0]])
        Traceback (most recent call last):
        ...
        ValueError: cost[0, 1] = -1 is negative
        """
        return cls(m, class_names)

    @classmethod
    def preset(
        cls,
        name: str,
        kind: str = "circumplex",
        *,
        alpha: Optional[float] = None,
        vocabulary: VocabularyLike = "affwild2",
    ) -> "CostMatrix":
        """A built-in class set's cost, with its class names and positions.

        Parameters
        ----------
        name : str
            One of :data:`PRESETS` (``affectnet8``, ``affectnet7``, ``affwild2-7``,
            ``affwild2-8``).
        kind : {"circumplex", "uniform", "au"}
            The valence-arousal distance divided by its maximum; ``1 − I``; or
            ``alpha·circumplex + (1 − alpha)·action-unit``.
        alpha : float, optional
            Weight of the circumplex part of ``kind="au"`` (default 0.5, as the CLI).
        vocabulary : {"affwild2", "emfacs"} or sequence of int
            AUs the prototypes are restricted to for ``kind="au"``.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> c = CostMatrix.preset("affwild2-8")
        >>> c.class_names[7], c.positions[7], float(c.values[7, 0])
        ('Other', None, 1.0)
        >>> CostMatrix.preset("affectnet7", "uniform").values[0, :3].tolist()
        [0.0, 1.0, 1.0]
        """
        return cost(_as_str(name, "name"), kind, alpha=alpha, vocabulary=vocabulary)

    @classmethod
    def uniform(cls, k: int, class_names: Optional[Sequence[str]] = None) -> "CostMatrix":
        """The uniform control ``1 − I``: every confusion costs the same.

        Parameters
        ----------
        k : int
            Number of classes, 2..32.
        class_names : sequence of str, optional
            One name per class.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> CostMatrix.uniform(3).values.tolist()
        [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
        >>> CostMatrix.uniform(1)
        Traceback (most recent call last):
        ...
        ValueError: number of classes K = 1 is outside 2..=32
        """
        return cls._from_native(_native.cost_uniform(_as_int(k, "k"), _as_names(class_names)))

    @classmethod
    def from_valence_arousal(
        cls, points: Any, class_names: Optional[Sequence[str]] = None
    ) -> "CostMatrix":
        """Euclidean distances between valence-arousal points, divided by their maximum.

        The cost lies in ``[0, 1]`` with a zero diagonal (all zeros if every point coincides).
        A class given as ``None`` has no position and is placed at distance 1 from every
        other class (Aff-Wild2's rule for ``Other``).

        Parameters
        ----------
        points : array_like
            (K, 2) (valence, arousal) points, or a sequence of pairs and ``None``.
        class_names : sequence of str, optional
            One name per class.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> c = CostMatrix.from_valence_arousal([(0.0, 0.0), (0.3, 0.4), (0.0, 0.5)])
        >>> c.values.round(3).tolist()
        [[0.0, 1.0, 1.0], [1.0, 0.0, 0.632], [1.0, 0.632, 0.0]]
        >>> CostMatrix.from_valence_arousal([(0.0, 0.0), None]).values.tolist()
        [[0.0, 1.0], [1.0, 0.0]]
        """
        state = _native.cost_from_valence_arousal(
            _as_positions(points, "points"), _as_names(class_names)
        )
        return cls._from_native(state)

    @classmethod
    def action_units(
        cls,
        classes: ClassesLike,
        vocabulary: VocabularyLike = "affwild2",
        *,
        prototypes: Optional[Sequence[Optional[Sequence[int]]]] = None,
    ) -> "CostMatrix":
        """The action-unit cost: Jaccard distances of the classes' EMFACS-7 AU prototypes.

        Prototypes are restricted to ``vocabulary``. Neutral's empty set is at distance 1 from
        any non-empty set; a class without a prototype (``Other``, an unknown name) is at 1
        from every other class.

        Parameters
        ----------
        classes : str or sequence of str
            A preset name, or custom class names (their prototypes come from the EMFACS names:
            Neutral, Happy/Happiness, Sad/Sadness, Surprise, Fear, Anger, Disgust, Contempt).
        vocabulary : {"affwild2", "emfacs"} or sequence of int
            The 12 AUs Aff-Wild2 annotates, every EMFACS AU, or explicit AU numbers.
        prototypes : sequence of (sequence of int or None), optional
            Replacement prototypes, one per class.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> c = CostMatrix.action_units("affwild2-8")
        >>> round(float(c.values[1, 3]), 4)  # Anger {4, 7, 23} vs Fear {1, 2, 4, 7, 26}
        0.6667
        >>> float(CostMatrix.action_units("affectnet8").values[6, 7])  # Anger vs Contempt
        1.0
        """
        state = _native.cost_action_units(
            _as_classes(classes), _as_vocabulary(vocabulary), _as_prototypes(prototypes)
        )
        return cls._from_native(state)

    @classmethod
    def au_augmented(
        cls,
        classes: ClassesLike,
        alpha: float,
        vocabulary: VocabularyLike = "affwild2",
        *,
        positions: Any = None,
        prototypes: Optional[Sequence[Optional[Sequence[int]]]] = None,
    ) -> "CostMatrix":
        """The AU-augmented cost ``alpha·C_VA + (1 − alpha)·C_AU``.

        ``alpha = 1`` is the circumplex cost, ``alpha = 0`` the action-unit cost; the mix lies
        in ``[0, 1]``.

        Parameters
        ----------
        classes : str or sequence of str
            A preset name, or custom class names (then ``positions`` is required).
        alpha : float
            Weight of the circumplex part, in ``[0, 1]``.
        vocabulary : {"affwild2", "emfacs"} or sequence of int
            AUs the prototypes are restricted to.
        positions : array_like, optional
            (K, 2) valence-arousal points (or pairs and ``None``), replacing the preset's.
        prototypes : sequence of (sequence of int or None), optional
            Replacement AU prototypes, one per class.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> c = CostMatrix.au_augmented("affwild2-8", 0.5)
        >>> float(c.values[1, 3]) > 0.35  # Anger-Fear, 0.079 on the circumplex alone
        True
        >>> CostMatrix.au_augmented("affwild2-8", 1.5)
        Traceback (most recent call last):
        ...
        ValueError: alpha = 1.5 must be in [0, 1]
        """
        return cost(
            classes,
            "au",
            alpha=alpha,
            vocabulary=vocabulary,
            positions=positions,
            prototypes=prototypes,
        )

    @classmethod
    def from_annotations(
        cls,
        labels: Any,
        va: Any,
        classes: ClassesLike,
        *,
        kind: str = "circumplex",
        alpha: Optional[float] = None,
        vocabulary: VocabularyLike = "affwild2",
        prototypes: Optional[Sequence[Optional[Sequence[int]]]] = None,
    ) -> "CostMatrix":
        """The cost of ``classes`` placed at their centroids in a dataset's own annotations.

        Samples with a negative label (ignored), a label ``≥ K`` (not a class, e.g.
        AffectNet's 8-10) or a valence/arousal outside ``[-1, 1]`` or not finite (Aff-Wild2's
        -5) are skipped; a class without a valid sample is an error. The centroids are in
        :attr:`centroids`.

        Parameters
        ----------
        labels : array_like of int
            (N,) class labels.
        va : array_like
            (N, 2) valence, arousal per sample.
        classes : str or sequence of str
            A preset name or custom class names.
        kind : {"circumplex", "uniform", "au"}
            As in :func:`cost`.
        alpha : float, optional
            Weight of the circumplex part of ``kind="au"`` (default 0.5).
        vocabulary : {"affwild2", "emfacs"} or sequence of int
            AUs for ``kind="au"``.
        prototypes : sequence of (sequence of int or None), optional
            Replacement AU prototypes, one per class.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> c = CostMatrix.from_annotations(
        ...     [0, 1, 1, -1, 0], [[0.2, -0.4], [-0.5, 0.5], [-0.3, 0.7], [0.9, 0.9], [-5, -5]],
        ...     ["Calm", "Tense"])
        >>> c.centroids["counts"], [tuple(round(x, 3) for x in p) for p in c.positions]
        ([1, 2], [(0.2, -0.4), (-0.4, 0.6)])
        """
        kind = _as_str(kind, "kind")
        if kind != "au" and alpha is not None:
            raise ValueError(f"alpha weights the circumplex part of kind='au'; got kind={kind!r}")
        state = _native.cost_from_annotations(
            _as_labels(labels, "labels"),
            _as_floats(va, "va", 2, "(N, 2) valence-arousal annotations"),
            _as_classes(classes),
            kind,
            0.5 if alpha is None else _as_real(alpha, "alpha"),
            _as_vocabulary(vocabulary),
            _as_prototypes(prototypes),
        )
        return cls._from_native(state)

    def mix(self, alpha: float, other: Any) -> "CostMatrix":
        """``alpha·self + (1 − alpha)·other``, entry by entry, keeping this cost's names.

        Parameters
        ----------
        alpha : float
            In ``[0, 1]``.
        other : CostMatrix or array_like
            A cost of the same K.

        Returns
        -------
        CostMatrix

        Examples
        --------
        >>> from circot import CostMatrix
        >>> CostMatrix.uniform(2).mix(0.25, [[0, 2], [2, 0]]).values.tolist()
        [[0.0, 1.75], [1.75, 0.0]]
        """
        second = _as_floats(other, "other", 2, "a (K, K) matrix")
        state = _native.cost_mix(
            self._values,
            _as_real(alpha, "alpha"),
            second,
            self.class_names,
            self.positions,
        )
        return CostMatrix._from_native(state)


def cost(
    preset: ClassesLike,
    kind: str = "circumplex",
    *,
    alpha: Optional[float] = None,
    vocabulary: VocabularyLike = "affwild2",
    positions: Any = None,
    prototypes: Optional[Sequence[Optional[Sequence[int]]]] = None,
    annotations: Optional[Tuple[Any, Any]] = None,
) -> CostMatrix:
    """A study cost, as ``circot cost`` builds it.

    Parameters
    ----------
    preset : str or sequence of str
        One of :data:`PRESETS`, or custom class names (which need ``positions`` or
        ``annotations`` for a circumplex or AU-augmented cost).
    kind : {"circumplex", "uniform", "au"}
        Valence-arousal distance over its maximum; ``1 − I``; or the AU-augmented mix
        ``alpha·circumplex + (1 − alpha)·Jaccard distance of EMFACS action-unit prototypes``.
    alpha : float, optional
        Weight of the circumplex part of ``kind="au"``, in ``[0, 1]`` (default 0.5). Only for
        ``kind="au"``.
    vocabulary : {"affwild2", "emfacs"} or sequence of int
        AUs the prototypes are restricted to (``kind="au"``).
    positions : array_like, optional
        (K, 2) valence-arousal points (or pairs and ``None``), replacing the preset's.
    prototypes : sequence of (sequence of int or None), optional
        Replacement AU prototypes, one per class.
    annotations : (labels, va), optional
        Place the classes at their centroids in these annotations (see
        :meth:`CostMatrix.from_annotations`).

    Returns
    -------
    CostMatrix

    Raises
    ------
    ValueError
        An unknown preset or kind (the message lists the valid ones), alpha outside ``[0, 1]``,
        custom classes without positions.

    Examples
    --------
    >>> import circot
    >>> circot.PRESETS
    ('affectnet8', 'affectnet7', 'affwild2-7', 'affwild2-8')
    >>> round(float(circot.cost("affectnet8").values[6, 7]), 3)  # Anger-Contempt
    0.062
    >>> c = circot.cost("affectnet8", "au", alpha=0.5)
    >>> round(float(c.values[6, 7]), 3)
    0.531
    >>> circot.cost("fer2013")
    Traceback (most recent call last):
    ...
    ValueError: unknown preset "fer2013"; expected one of affectnet8, affectnet7, affwild2-7, affwild2-8
    """
    classes = _as_classes(preset)
    kind = _as_str(kind, "kind")
    if annotations is not None:
        if positions is not None:
            raise ValueError("pass positions or annotations, not both")
        if not isinstance(annotations, (tuple, list)) or len(annotations) != 2:
            raise TypeError("annotations must be a (labels, va) pair")
        labels, va = annotations
        return CostMatrix.from_annotations(
            labels, va, classes, kind=kind, alpha=alpha, vocabulary=vocabulary,
            prototypes=prototypes,
        )
    if kind != "au" and alpha is not None:
        raise ValueError(f"alpha weights the circumplex part of kind='au'; got kind={kind!r}")
    state = _native.cost_build(
        classes,
        kind,
        0.5 if alpha is None else _as_real(alpha, "alpha"),
        _as_vocabulary(vocabulary),
        None if positions is None else _as_positions(positions),
        _as_prototypes(prototypes),
    )
    return CostMatrix._from_native(state)
