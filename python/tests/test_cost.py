"""circot.CostMatrix and circot.cost: the study's costs over the crate.

Known values come from shared/domain/affect.md (AffectNet validation means, Russell & Mehrabian
PAD norms for Aff-Wild2, EMFACS-7 prototypes restricted to Aff-Wild2's 12 AUs) and are
recomputed here independently with NumPy where they are formulas.
"""

from __future__ import annotations

import pickle
from typing import List, Tuple

import numpy as np
import pytest

import circot
from circot import PRESETS, CostMatrix, cost

AFFECTNET = [
    ("Neutral", (-0.0247, -0.0185)),
    ("Happy", (0.6720, 0.0808)),
    ("Sad", (-0.6281, -0.2670)),
    ("Surprise", (0.1831, 0.7005)),
    ("Fear", (-0.1174, 0.7600)),
    ("Disgust", (-0.6843, 0.4460)),
    ("Anger", (-0.4259, 0.5537)),
    ("Contempt", (-0.5103, 0.5761)),
]
AFFWILD2_NAMES = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise",
                  "Other"]
AFFWILD2_POINTS = [(0.0, 0.0), (-0.51, 0.59), (-0.60, 0.35), (-0.64, 0.60), (0.81, 0.51),
                   (-0.63, -0.27), (0.40, 0.67)]
K_OF = {"affectnet8": 8, "affectnet7": 7, "affwild2-7": 7, "affwild2-8": 8}


def circumplex(points: List[Tuple[float, float]]) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    d = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1])
    return d / d.max()


def jaccard(a: set, b: set) -> float:
    union = a | b
    return 0.0 if not union else 1.0 - len(a & b) / len(union)


# ----------------------------------------------------------------------------------------------
# Presets and their properties.


def test_presets_are_the_crates() -> None:
    assert PRESETS == ("affectnet8", "affectnet7", "affwild2-7", "affwild2-8")
    assert circot.PRESETS is PRESETS


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("kind", ["circumplex", "uniform", "au"])
def test_every_preset_cost_is_bounded_with_zero_diagonal(preset: str, kind: str) -> None:
    c = cost(preset, kind)
    k = K_OF[preset]
    assert c.k == k and c.values.shape == (k, k) and c.values.dtype == np.float64
    assert np.all(np.diag(c.values) == 0.0)
    assert np.all((c.values >= 0.0) & (c.values <= 1.0))
    np.testing.assert_array_equal(c.values, c.values.T)
    assert c.max == c.values.max() == 1.0
    assert c.class_names is not None and len(c.class_names) == k
    assert c.positions is not None and len(c.positions) == k
    assert CostMatrix.preset(preset, kind) == c


def test_affectnet_circumplex_is_the_normalised_va_distance() -> None:
    c = CostMatrix.preset("affectnet8")
    assert c.class_names == [name for name, _ in AFFECTNET]
    want = circumplex([p for _, p in AFFECTNET])
    np.testing.assert_allclose(c.values, want, rtol=0, atol=1e-15)
    # affect.md: Anger-Contempt is the closest pair, 0.087 raw and 0.062 normalised by
    # Happy-Disgust (1.4047).
    off = c.values + np.eye(8) * 2
    i, j = np.unravel_index(np.argmin(off), off.shape)
    assert {c.class_names[i], c.class_names[j]} == {"Anger", "Contempt"}
    assert c.values[6, 7] == pytest.approx(0.062, abs=5e-4)
    assert c.values[1, 5] == 1.0
    assert c.values[6, 7] * 1.4047 == pytest.approx(0.087, abs=5e-4)
    # AffectNet-7 drops Contempt; its normalisation is the same maximum.
    np.testing.assert_allclose(CostMatrix.preset("affectnet7").values, want[:7, :7], atol=1e-15)


def test_affwild2_other_is_at_distance_one_and_anger_fear_is_closest() -> None:
    c = cost("affwild2-8")
    assert c.class_names == AFFWILD2_NAMES
    assert c.positions[7] is None and c.positions[1] == (-0.51, 0.59)
    np.testing.assert_allclose(c.values[:7, :7], circumplex(AFFWILD2_POINTS), atol=1e-15)
    assert np.all(c.values[7, :7] == 1.0) and np.all(c.values[:7, 7] == 1.0)
    off = c.values[:7, :7] + np.eye(7) * 2
    i, j = np.unravel_index(np.argmin(off), off.shape)
    assert {c.class_names[i], c.class_names[j]} == {"Anger", "Fear"}
    assert c.values[1, 3] == pytest.approx(0.0796, abs=5e-5)  # the crate docs: 0.079
    np.testing.assert_array_equal(cost("affwild2-7").values, circumplex(AFFWILD2_POINTS))


def test_uniform_is_one_minus_identity() -> None:
    for k in (2, 7, 32):
        np.testing.assert_array_equal(CostMatrix.uniform(k).values, 1.0 - np.eye(k))
    np.testing.assert_array_equal(cost("affwild2-8", "uniform").values, 1.0 - np.eye(8))
    named = CostMatrix.uniform(2, ["a", "b"])
    assert named.class_names == ["a", "b"] and named.positions is None


# ----------------------------------------------------------------------------------------------
# The CostMatrix object.


def test_cost_matrix_is_immutable_and_read_only() -> None:
    c = cost("affectnet8")
    with pytest.raises(ValueError, match="read-only"):
        c.values[0, 1] = 5.0
    with pytest.raises(ValueError):
        c.values.setflags(write=True)
    with pytest.raises(AttributeError, match="immutable"):
        c.k = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        c.extra = 1  # type: ignore[attr-defined]
    names = c.class_names
    names[0] = "changed"
    assert c.class_names[0] == "Neutral"
    # np.asarray sees the read-only matrix; a copy or another dtype is writable.
    a = np.asarray(c)
    assert not a.flags.writeable
    np.testing.assert_array_equal(a, c.values)
    f32 = np.asarray(c, dtype=np.float32)
    assert f32.dtype == np.float32 and f32.flags.writeable
    assert np.array(c).flags.writeable


def test_from_matrix_copies_and_keeps_asymmetry() -> None:
    m = np.array([[0.0, 2.0, 1.0], [0.5, 0.0, 3.0], [1.0, 1.0, 0.0]])
    c = CostMatrix.from_matrix(m, ["x", "y", "z"])
    m[0, 1] = 99.0
    assert c.values[0, 1] == 2.0 and c.values[1, 0] == 0.5
    assert c.max == 3.0 and c.k == 3 and c.class_names == ["x", "y", "z"]
    assert c.positions is None
    assert CostMatrix(m.tolist()) == CostMatrix.from_matrix(m)  # lists work too
    ints = CostMatrix([[0, 1], [1, 0]])
    assert ints.values.dtype == np.float64


def test_repr_is_the_clis_table() -> None:
    text = repr(cost("affwild2-8"))
    assert text.startswith("CostMatrix: affwild2-8 circumplex cost (K = 8, max 1.0):")
    assert "Happiness" in text and "Other" in text and "1.0000" in text
    assert "custom" in repr(CostMatrix([[0, 1], [1, 0]]))
    assert "au (alpha 0.25, AU set emfacs)" in repr(
        cost("affectnet8", "au", alpha=0.25, vocabulary="emfacs")
    )


def test_equality_hash_and_pickle() -> None:
    a = cost("affectnet8")
    b = pickle.loads(pickle.dumps(a))
    assert a == b and hash(a) == hash(b)
    assert b.positions == a.positions and repr(b) == repr(a)
    assert a != cost("affectnet8", "uniform")
    assert CostMatrix.uniform(2) != CostMatrix.uniform(2, ["a", "b"])


# ----------------------------------------------------------------------------------------------
# Circumplex from positions, action units, the AU-augmented mix.


def test_from_valence_arousal_is_normalised_distance_with_unplaced_classes_at_one() -> None:
    points = [(0.3, -0.6), (-0.5, 0.6), (0.1, 0.1)]
    c = CostMatrix.from_valence_arousal(points, ["Calm", "Angry", "Mild"])
    np.testing.assert_allclose(c.values, circumplex(points), atol=1e-15)
    assert c.class_names == ["Calm", "Angry", "Mild"]
    assert c.positions == points
    np.testing.assert_array_equal(CostMatrix.from_valence_arousal(np.array(points)).values,
                                  c.values)
    with_none = CostMatrix.from_valence_arousal([(0.3, -0.6), (-0.5, 0.6), None])
    assert with_none.values[0, 2] == with_none.values[2, 1] == 1.0
    assert with_none.values[0, 1] == 1.0  # the only placed pair is the maximum
    same = CostMatrix.from_valence_arousal([(0.2, 0.2), (0.2, 0.2)])
    np.testing.assert_array_equal(same.values, np.zeros((2, 2)))


def test_action_unit_cost_is_affect_mds_jaccard() -> None:
    aus = {
        "Neutral": set(), "Anger": {4, 7, 23}, "Disgust": {15}, "Fear": {1, 2, 4, 7, 26},
        "Happiness": {6, 12}, "Sadness": {1, 4, 15}, "Surprise": {1, 2, 26},
    }
    c = CostMatrix.action_units("affwild2-8")
    for i, a in enumerate(AFFWILD2_NAMES):
        for j, b in enumerate(AFFWILD2_NAMES):
            want = 0.0 if i == j else (1.0 if "Other" in (a, b) else jaccard(aus[a], aus[b]))
            assert c.values[i, j] == pytest.approx(want, abs=1e-15), (a, b)
    assert c.values[1, 3] == pytest.approx(0.67, abs=5e-3)
    assert CostMatrix.action_units("affectnet8").values[6, 7] == 1.0  # Anger-Contempt
    hc = CostMatrix.action_units(["Happiness", "Contempt"])
    assert hc.values[0, 1] == 0.5 and hc.class_names == ["Happiness", "Contempt"]
    # Unrestricted EMFACS sets: Anger {4,5,7,23} vs Fear {1,2,4,5,7,20,26} share 3 of 8.
    full = CostMatrix.action_units("affwild2-8", "emfacs")
    assert full.values[1, 3] == pytest.approx(1 - 3 / 8, abs=1e-15)
    assert circot._cost.AU_VOCABULARIES["affwild2"] == (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
    # An explicit vocabulary and explicit prototypes.
    np.testing.assert_array_equal(
        CostMatrix.action_units("affwild2-8", list(circot._cost.AU_VOCABULARIES["affwild2"])).values,
        c.values,
    )
    custom = CostMatrix.action_units(["A", "B", "C"], prototypes=[[1, 2], [2, 4], None])
    assert custom.values[0, 1] == pytest.approx(2 / 3) and custom.values[0, 2] == 1.0


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_au_augmented_mixes_circumplex_and_action_units(alpha: float) -> None:
    va = cost("affwild2-8").values
    au = CostMatrix.action_units("affwild2-8").values
    mixed = CostMatrix.au_augmented("affwild2-8", alpha)
    np.testing.assert_allclose(mixed.values, alpha * va + (1 - alpha) * au, atol=1e-15)
    assert mixed == cost("affwild2-8", "au", alpha=alpha)
    assert mixed.class_names == AFFWILD2_NAMES


def test_au_default_alpha_is_one_half_and_separates_anger_fear() -> None:
    c = cost("affwild2-8", "au")
    assert c == cost("affwild2-8", "au", alpha=0.5)
    assert c.values[1, 3] > 0.35  # 0.079 on the circumplex alone


def test_custom_classes_with_positions_and_mix() -> None:
    names = ["Calm", "Angry", "Afraid"]
    points = [(0.3, -0.6), (-0.5, 0.6), (-0.6, 0.7)]
    c = cost(names, positions=points)
    np.testing.assert_allclose(c.values, circumplex(points), atol=1e-15)
    au = cost(names, "au", alpha=0.0, positions=points)
    np.testing.assert_array_equal(au.values, CostMatrix.action_units(names).values)
    u = cost(names, "uniform")
    np.testing.assert_array_equal(u.values, 1 - np.eye(3))
    mixed = c.mix(0.25, u)
    np.testing.assert_allclose(mixed.values, 0.25 * c.values + 0.75 * u.values, atol=1e-15)
    assert mixed.class_names == names


# ----------------------------------------------------------------------------------------------
# Costs from annotations.


def annotations() -> Tuple[np.ndarray, np.ndarray]:
    labels = np.array([0, 1, 1, 2, 2, -1, 3, 1, 2, 0])
    va = np.array([
        [0.1, 0.0], [-0.5, 0.6], [-0.3, 0.4], [-0.6, 0.7], [-0.4, 0.9],
        [0.9, 0.9],     # label -1: ignored
        [0.9, 0.9],     # label 3 >= K: not a class
        [-5.0, -5.0],   # Aff-Wild2's ignored VA
        [np.nan, 0.2],
        [-0.1, 1.2],    # out of range
    ])
    return labels, va


def test_from_annotations_places_classes_at_valid_centroids() -> None:
    labels, va = annotations()
    names = ["Neutral", "Anger", "Fear"]
    c = CostMatrix.from_annotations(labels, va, names)
    centroids = c.centroids
    assert centroids is not None
    assert centroids["counts"] == [1, 2, 2]
    assert (centroids["skipped_ignored_label"], centroids["skipped_not_a_class"],
            centroids["skipped_invalid_va"]) == (1, 1, 3)
    np.testing.assert_allclose(centroids["positions"], [(0.1, 0.0), (-0.4, 0.5), (-0.5, 0.8)],
                               atol=1e-12)
    want = circumplex([(0.1, 0.0), (-0.4, 0.5), (-0.5, 0.8)])
    np.testing.assert_allclose(c.values, want, atol=1e-12)
    assert c.class_names == names
    assert "from annotations" in repr(c)
    # The same through cost(), and the AU kind on the centroids.
    assert cost(names, annotations=(labels, va)) == c
    au = cost(names, "au", alpha=0.5, annotations=(labels, va.tolist()))
    want_au = 0.5 * c.values + 0.5 * CostMatrix.action_units(names).values
    np.testing.assert_allclose(au.values, want_au, atol=1e-12)


def test_from_annotations_errors_name_the_problem() -> None:
    labels = [0, 1, 2]
    with pytest.raises(ValueError, match=r"class 2 \(Bored\) has no valid annotated sample"):
        CostMatrix.from_annotations(labels, [[0.1, 0.1], [0.2, 0.2], [-5, -5]],
                                    ["Calm", "Tense", "Bored"])
    with pytest.raises(ValueError, match="valence-arousal annotations has shape"):
        CostMatrix.from_annotations(labels, [[0.1, 0.1]], ["Calm", "Tense", "Bored"])
    with pytest.raises(ValueError, match=r"va must be \(N, 2\)"):
        CostMatrix.from_annotations(labels, [0.1, 0.2, 0.3], ["Calm", "Tense", "Bored"])
    with pytest.raises(TypeError, match="labels must be integer labels"):
        CostMatrix.from_annotations([0.5, 1, 2], [[0.1, 0.1]] * 3, ["Calm", "Tense", "Bored"])
    with pytest.raises(ValueError, match="alpha weights"):
        CostMatrix.from_annotations(labels, [[0.1, 0.1]] * 3, ["A", "B", "C"], alpha=0.3)
    with pytest.raises(ValueError, match="not both"):
        cost(["A", "B"], positions=[(0, 0), (1, 1)], annotations=([0, 1], [[0, 0], [1, 1]]))


# ----------------------------------------------------------------------------------------------
# Every error path: ValueError or TypeError naming the problem.


@pytest.mark.parametrize(
    "values, message",
    [
        ([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0]], r"cost matrix must be square, got 2 x 3"),
        ([[0.0]], r"number of classes K = 1 is outside 2..=32"),
        (np.zeros((33, 33)), r"number of classes K = 33 is outside 2..=32"),
        ([[0.0, np.nan], [1.0, 0.0]], r"cost\[0, 1\] = NaN is not finite"),
        ([[0.0, 1.0], [np.inf, 0.0]], r"cost\[1, 0\] = inf is not finite"),
        ([[0.0, 1.0], [-0.5, 0.0]], r"cost\[1, 0\] = -0.5 is negative"),
        (np.zeros((2, 2, 2)), r"values must be a \(K, K\) matrix, got shape \(2, 2, 2\)"),
        ([0.0, 1.0], r"values must be a \(K, K\) matrix, got shape \(2,\)"),
        ([[0.0, 1.0], [1.0]], r"values could not be converted to an array"),
    ],
)
def test_from_matrix_rejects_invalid_matrices(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CostMatrix.from_matrix(values)


def test_type_errors_name_the_argument() -> None:
    with pytest.raises(TypeError, match="values must be real numbers, got dtype <U1"):
        CostMatrix([["a", "b"], ["c", "d"]])
    with pytest.raises(TypeError, match="k must be an integer, got float"):
        CostMatrix.uniform(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="k must be an integer, got bool"):
        CostMatrix.uniform(True)
    with pytest.raises(TypeError, match="class_names must be a sequence of str, got str"):
        CostMatrix.uniform(2, "ab")
    with pytest.raises(TypeError, match=r"class_names\[1\] must be a str"):
        CostMatrix.uniform(2, ["a", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="classes must be a sequence of str"):
        cost(8)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a str"):
        CostMatrix.preset(["Neutral", "Happy"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="alpha must be a real number, got str"):
        cost("affectnet8", "au", alpha="0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="kind must be a str"):
        cost("affectnet8", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="vocabulary must be integer labels"):
        CostMatrix.action_units("affectnet8", [1.5, 2])
    with pytest.raises(TypeError, match="points must be"):
        CostMatrix.from_valence_arousal("ab")


def test_value_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r'unknown preset "fer2013"; expected one of affectnet8'):
        cost("fer2013")
    with pytest.raises(ValueError, match=r'unknown cost kind "jaccard"; expected circumplex, '
                                         r"uniform or au"):
        cost("affectnet8", "jaccard")
    with pytest.raises(ValueError, match=r'unknown AU set "facs"; expected affwild2 or emfacs'):
        CostMatrix.action_units("affectnet8", "facs")
    with pytest.raises(ValueError, match=r"vocabulary: AU numbers must be in 0..=255"):
        CostMatrix.action_units("affectnet8", [1, 2, 300])
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"alpha = .* must be in \[0, 1\]"):
            cost("affwild2-8", "au", alpha=alpha)
    with pytest.raises(ValueError, match="alpha weights the circumplex part of kind='au'"):
        cost("affwild2-8", alpha=0.5)
    with pytest.raises(ValueError, match="custom classes have no circumplex positions"):
        cost(["Calm", "Angry"])
    with pytest.raises(ValueError, match=r"number of classes K = 1 is outside 2..=32"):
        cost(["Calm"], "uniform")
    with pytest.raises(ValueError, match=r"number of classes K = 40 is outside 2..=32"):
        CostMatrix.uniform(40)
    with pytest.raises(ValueError, match=r"k = -3 must be a number of classes"):
        CostMatrix.uniform(-3)
    with pytest.raises(ValueError, match=r"class names has shape \(3,\), expected \(2,\)"):
        CostMatrix.uniform(2, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"position of class 1 = \(NaN, 0.2\) is not finite"):
        CostMatrix.from_valence_arousal([(0.0, 0.0), (np.nan, 0.2)])
    with pytest.raises(ValueError, match=r"class positions has shape \(2,\), expected \(3,\)"):
        CostMatrix.from_valence_arousal([(0.0, 0.0), (0.1, 0.2)], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"points must be \(K, 2\)"):
        CostMatrix.from_valence_arousal([(0.0, 0.0, 1.0), (0.1, 0.2, 0.3)])
    with pytest.raises(ValueError, match=r"class AU prototypes has shape \(2,\), expected \(8,\)"):
        CostMatrix.action_units("affectnet8", prototypes=[[1], [2]])
    with pytest.raises(ValueError, match=r"cost to mix has shape \(3, 3\), expected \(2, 2\)"):
        CostMatrix.uniform(2).mix(0.5, CostMatrix.uniform(3))


def test_docstring_examples() -> None:
    import doctest

    import circot._cost

    result = doctest.testmod(circot._cost, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
