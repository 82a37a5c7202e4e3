"""circot.metrics, circot.stats and circot.degeneracy over the crate.

Known values: the crate's tests (tests/metrics.rs, tests/stats.rs, tests/study_costs.rs) and
shared/domain/affect.md (p = 0.625 and p = 0.031 on 5 paired seeds; Anger-Contempt on AffectNet
and Anger-Fear on Aff-Wild2 as the degenerate pairs). Independent expected values are computed
by hand with NumPy, or with scipy where its method coincides with the crate's.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest
import scipy.stats

import circot
from circot import cost, degeneracy, metrics, stats
from circot.metrics import evaluate

ALTERNATIVES = ("two-sided", "greater", "less")


def hand_metrics(y: np.ndarray, p: np.ndarray, k: int) -> Dict[str, Any]:
    """Confusion, F1 (zero_division 0, all K classes) and mean accuracy, by hand."""
    keep = y >= 0
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (y[keep], p[keep]), 1)
    tp = np.diag(m).astype(float)
    predicted, actual = m.sum(0), m.sum(1)
    denominator = predicted + actual
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    return {
        "confusion": m,
        "per_class_f1": f1,
        "macro_f1": f1.mean(),
        "accuracy": tp.sum() / m.sum(),
        "mean_accuracy": recall[actual > 0].mean(),
    }


# ----------------------------------------------------------------------------------------------
# Classification metrics.


def test_hand_computed_confusion_and_f1() -> None:
    r = evaluate([0, 0, 1, 1, 2, -1], [0, 1, 1, 1, 1, 2])
    np.testing.assert_array_equal(r["confusion"], [[1, 1, 0], [0, 2, 0], [0, 1, 0]])
    assert r["confusion"].dtype == np.int64
    assert (r["samples"], r["ignored"], r["errors"], r["num_classes"]) == (5, 1, 2, 3)
    np.testing.assert_array_equal(r["support"], [2, 2, 1])
    np.testing.assert_array_equal(r["precision"], [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(r["recall"], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(r["per_class_f1"], [2 / 3, 2 / 3, 0.0], atol=1e-15)
    assert r["macro_f1"] == pytest.approx(4 / 9, abs=1e-15)
    assert r["accuracy"] == pytest.approx(0.6, abs=1e-15)
    assert r["mean_accuracy"] == pytest.approx(0.5, abs=1e-15)
    assert r["classes"] == ["0", "1", "2"]
    # Without a cost or preset there are no affective metrics, and no ABAW tracks.
    for key in ("affective_error_distance", "error_severity", "quadrant_preservation",
                "quadrant_errors", "abaw_expr", "abaw_va", "abaw_au", "abaw_multi_task"):
        assert r[key] is None, key


def test_a_class_absent_everywhere_counts_as_f1_zero_but_not_in_mean_accuracy() -> None:
    y, p = [0, 0, 1, 1, 2, -1], [0, 1, 1, 1, 1, 2]
    r = evaluate(y, p, num_classes=4)
    assert r["per_class_f1"][3] == 0.0
    assert r["macro_f1"] == pytest.approx((4 / 3) / 4, abs=1e-15)
    assert r["mean_accuracy"] == pytest.approx(0.5, abs=1e-15)
    assert metrics.macro_f1(y, p, num_classes=4) == r["macro_f1"]
    assert metrics.accuracy(y, p, 4) == pytest.approx(0.6)
    assert metrics.mean_accuracy(y, p, 4) == pytest.approx(0.5)
    np.testing.assert_array_equal(metrics.confusion_matrix(y, p, 4), r["confusion"])


def test_random_predictions_match_a_hand_computation() -> None:
    rng = np.random.default_rng(7)
    for k in (2, 7, 8, 32):
        y = rng.integers(-1, k, 300)
        p = rng.integers(0, k, 300)
        scores = rng.normal(size=(300, k))
        for pred, labels in ((p, p), (scores, scores.argmax(1))):
            r = evaluate(y, pred, num_classes=k)
            want = hand_metrics(y, labels, k)
            np.testing.assert_array_equal(r["confusion"], want["confusion"])
            np.testing.assert_allclose(r["per_class_f1"], want["per_class_f1"], atol=1e-15)
            for key in ("macro_f1", "accuracy", "mean_accuracy"):
                assert r[key] == pytest.approx(want[key], abs=1e-14), key


def test_scores_are_read_by_argmax_with_ties_to_the_lowest_class() -> None:
    scores = [[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [-1.0, 3.0, 0.5]]
    np.testing.assert_array_equal(metrics.argmax(scores), [0, 0, 1])
    r = evaluate([0, 1, 1], scores)
    np.testing.assert_array_equal(r["confusion"], [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    assert r["num_classes"] == 3  # K from the scores, not the labels


def test_labels_as_lists_integral_floats_and_other_int_dtypes() -> None:
    want = evaluate(np.array([0, 1, 1]), np.array([0, 0, 1]))
    for y, p in (([0.0, 1.0, 1.0], [0, 0, 1]), (np.array([0, 1, 1], np.uint8),
                                                np.array([0, 0, 1], np.int16))):
        np.testing.assert_array_equal(evaluate(y, p)["confusion"], want["confusion"])


# ----------------------------------------------------------------------------------------------
# Affective metrics.


def test_affective_error_distance_and_severity_average_the_cost() -> None:
    c = cost("affectnet8")
    # Anger (6) -> Anger, Contempt (7), Happy (1); Sad (2) -> Sad.
    r = evaluate([6, 6, 6, 2], [6, 7, 1, 2], preset="affectnet8")
    priced = c.values[6, 7] + c.values[6, 1]
    assert r["errors"] == 2
    assert r["affective_error_distance"] == pytest.approx(priced / 2, abs=1e-15)
    assert r["error_severity"] == pytest.approx(priced / 4, abs=1e-15)
    raw = np.hypot(0.0844, 0.0224) + np.hypot(1.0979, 0.4729)  # affect.md's table
    assert r["va_error_distance"] == pytest.approx(raw / 2, abs=1e-12)
    assert (r["quadrant_preservation"], r["quadrant_errors"]) == (0.5, 2)
    assert r["classes"][6] == "Anger"
    # The same from the CostMatrix itself (it carries the preset's positions and names).
    rc = evaluate([6, 6, 6, 2], [6, 7, 1, 2], cost=c)
    for key in ("affective_error_distance", "error_severity", "va_error_distance",
                "quadrant_preservation", "quadrant_errors"):
        assert rc[key] == r[key], key
    assert rc["classes"] == c.class_names


def test_quadrants_skip_central_and_unplaced_classes() -> None:
    # Aff-Wild2: Anger -> Fear (same quadrant), Anger -> Happiness (not), Neutral -> Anger and
    # Anger -> Other (no quadrant, still errors).
    r = evaluate([1, 1, 0, 1], [3, 4, 1, 7], preset="affwild2-8")
    assert r["errors"] == 4
    assert (r["quadrant_preservation"], r["quadrant_errors"]) == (0.5, 2)
    assert metrics.quadrant((-0.51, 0.59)) == (-1, 1)
    assert metrics.quadrant((0.0, 0.0)) is None and metrics.quadrant(None) is None
    assert metrics.quadrant((0.0, 0.5), radius=0.0) is None  # on an axis
    assert metrics.quadrant((-0.0247, -0.0185)) is None  # AffectNet's Neutral is central
    assert metrics.QUADRANT_CENTRAL_RADIUS == 0.1
    # A cost without positions: the cost metrics, no VA or quadrant metrics.
    plain = evaluate([1, 1, 0, 1], [3, 4, 1, 7], cost=cost("affwild2-8").values)
    assert plain["error_severity"] == pytest.approx(r["error_severity"], abs=0)
    assert plain["quadrant_preservation"] is None and plain["va_error_distance"] is None
    assert plain["quadrant_errors"] is None


def test_no_errors_means_no_error_distance() -> None:
    r = evaluate([0, 2], [0, 2], cost=circot.CostMatrix.uniform(3))
    assert (r["errors"], r["affective_error_distance"], r["error_severity"]) == (0, None, 0.0)


def test_cost_and_preset_must_agree_with_the_predictions() -> None:
    with pytest.raises(ValueError, match="preset affectnet8 has 8 classes but the predictions "
                                         "have 7"):
        evaluate([0, 1], np.eye(7)[:2], preset="affectnet8")
    with pytest.raises(ValueError, match=r"cost is 4 x 4 but the predictions have 3 classes"):
        evaluate([0, 1], [[1, 0, 0], [0, 1, 0]], cost=circot.CostMatrix.uniform(4))
    with pytest.raises(ValueError, match="num_classes = 4 but the scores have 3 columns"):
        evaluate([0, 1], [[1, 0, 0], [0, 1, 0]], num_classes=4)
    with pytest.raises(ValueError, match=r"class_names has 2 names but the predictions have 3"):
        evaluate([0, 1, 2], [0, 1, 2], class_names=["a", "b"])


# ----------------------------------------------------------------------------------------------
# CCC and ABAW.


def test_ccc_identities() -> None:
    x = np.array([0.3, -0.2, 0.5, 0.1, -0.7])
    assert metrics.ccc(x, x) == pytest.approx(1.0, abs=1e-12)
    c = x - x.mean()
    assert metrics.ccc(c, -c) == pytest.approx(-1.0, abs=1e-12)
    assert metrics.ccc(c, 0.5 * c) == pytest.approx(1 / 1.25, abs=1e-12)
    var = (c**2).mean()
    assert metrics.ccc(x, x + 0.4) == pytest.approx(2 * var / (2 * var + 0.16), abs=1e-12)
    y = np.array([0.1, 0.0, 0.4, 0.4, -0.2])
    # Lin's CCC from Pearson's r and population moments.
    r = scipy.stats.pearsonr(x, y)[0]
    want = 2 * r * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert metrics.ccc(x, y) == pytest.approx(want, abs=1e-12)
    assert metrics.ccc([0.2] * 3, [0.2] * 3) == 1.0
    with pytest.raises(ValueError, match=r"no valid sample in CCC input \(it is empty\)"):
        metrics.ccc([], [])
    with pytest.raises(ValueError, match=r"CCC x\[0\] = NaN is not finite"):
        metrics.ccc([np.nan], [0.0])
    with pytest.raises(ValueError, match=r"CCC prediction has shape \(1,\), expected \(2,\)"):
        metrics.ccc([0.0], [0.0, 1.0])


def test_abaw_expr_per_edition() -> None:
    y = [0, 1, 2, 3, 4, 5, 6, 6]
    p = [0, 1, 2, 3, 4, 5, 6, 5]
    r7 = evaluate(y, p, num_classes=7, abaw=2)
    assert r7["abaw_edition"] == "abaw2"
    assert r7["abaw_expr"] == pytest.approx(0.67 * r7["macro_f1"] + 0.33 * r7["accuracy"],
                                            abs=1e-15)
    assert metrics.abaw_expr(y, p, "abaw1") == r7["abaw_expr"]
    with pytest.raises(ValueError, match="ABAW3 EXPR is scored over 8 classes, got 7"):
        evaluate(y, p, num_classes=7, abaw="abaw3")
    r8 = evaluate(y, p, num_classes=8, abaw="ABAW3")
    assert r8["abaw_expr"] == r8["macro_f1"]
    assert metrics.abaw_expr(y, p, 5) == r8["macro_f1"]
    with pytest.raises(ValueError, match=r'unknown ABAW edition "abaw9"; expected abaw1 to '
                                         r"abaw8"):
        evaluate(y, p, abaw="abaw9")
    with pytest.raises(TypeError, match="abaw must be an edition number"):
        evaluate(y, p, abaw=3.0)  # type: ignore[arg-type]


def test_abaw_va_au_and_multi_task() -> None:
    va_true = np.array([[0.1, 0.2], [-0.3, 0.4], [-5.0, -5.0], [0.5, -0.1]])
    va_pred = np.array([[0.1, 0.2], [-0.3, 0.4], [0.9, 0.9], [0.5, -0.1]])
    va = metrics.abaw_va(va_pred, va_true)
    assert va["ignored"] == 1 and va["score"] == pytest.approx(1.0, abs=1e-12)
    # AU1: truth 1 1 0 -1, predicted .9 .2 .7 .9: TP 1, FN 1, FP 1 -> F1 1/2; other AUs 0.
    au_true = np.zeros((4, 12), dtype=np.int64)
    au_pred = np.zeros((4, 12))
    au_true[:, 0] = [1, 1, 0, -1]
    au_pred[:, 0] = [0.9, 0.2, 0.7, 0.9]
    au = metrics.abaw_au(au_pred, au_true)
    assert au["per_au_f1"][0] == 0.5 and au["score"] == pytest.approx(0.5 / 12, abs=1e-15)
    assert au["action_units"] == [1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26]
    y = [0, 1, 2, 3, 4, 5, 6, 7]
    tracks = dict(va_pred=va_pred, va_true=va_true, au_pred=au_pred, au_true=au_true)
    r = evaluate(y, y, num_classes=8, abaw=3, **tracks)
    assert (r["abaw_va"], r["va_ignored"]) == (va["score"], 1)
    assert r["abaw_au"] == au["score"]
    np.testing.assert_array_equal(r["au_f1"], au["per_au_f1"])
    assert r["abaw_multi_task"] == pytest.approx(1.0 + va["score"] + au["score"], abs=1e-15)
    assert evaluate(y, y, num_classes=8, abaw=5, **tracks)["abaw_multi_task"] is None
    assert metrics.abaw_multi_task(7, 0.4, 0.3, 0.5) == pytest.approx(1.2, abs=1e-15)
    with pytest.raises(ValueError, match=r"multi-task challenge \(3, 4 or 7\) = 5"):
        metrics.abaw_multi_task(5, 0.4, 0.3, 0.5)
    with pytest.raises(ValueError, match="va_pred and va_true must be given together"):
        evaluate(y, y, va_pred=va_pred)
    with pytest.raises(ValueError, match=r"AU predictions has shape \(4, 11\), expected \(4, 12\)"):
        metrics.abaw_au(au_pred[:, :11], au_true)
    # Truth of the wrong width is the truth's error, never "expected" the shape it has.
    with pytest.raises(ValueError, match=r"AU truth has shape \(4, 11\), expected \(4, 12\)"):
        metrics.abaw_au(au_pred, au_true[:, :11])
    with pytest.raises(ValueError, match=r"label 2 of problem 0 is not below K = 2"):
        metrics.abaw_au(au_pred, np.full((4, 12), 2))
    with pytest.raises(ValueError, match=r"VA predictions has shape \(3, 2\), expected \(4, 2\)"):
        metrics.abaw_va(va_pred[:3], va_true)


# ----------------------------------------------------------------------------------------------
# Metric errors: ValueError / TypeError naming the problem.


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, error, message",
    [
        ([0, 3], [0, 1], {"num_classes": 3}, ValueError,
         r"label 3 of problem 1 is not below K = 3"),
        ([0, 1], [0, -2], {"num_classes": 3}, ValueError,
         r"predicted label -2 of sample 1 is outside 0..3"),
        ([-1, -1], [0, 1], {}, ValueError, r"no valid sample in the labels"),
        ([0, 1], [0], {}, ValueError, r"predictions has shape \(1,\), expected \(2,\)"),
        ([0], [[0.5, np.nan]], {}, ValueError, r"\[0, 1\] = NaN is not finite"),
        ([0, 1], [[0.5, 0.5]], {}, ValueError, r"scores has shape \(1, 2\), expected \(2, 2\)"),
        ([0, 1], np.zeros((2, 2, 2)), {}, ValueError,
         r"y_pred must be \(N,\) predicted labels or \(N, K\) scores, got shape \(2, 2, 2\)"),
        ([[0, 1]], [0, 1], {}, ValueError, r"y_true must be \(N,\) labels, got shape \(1, 2\)"),
        ([0.5, 1.0], [0, 1], {}, TypeError,
         r"y_true must be integer labels, got float values with a fractional part"),
        ([0, 1], [0.0, 1.5], {}, TypeError, r"y_pred must be integer labels"),
        ([0.0, np.nan], [0, 1], {}, ValueError, r"y_true\[1\] = nan is not finite"),
        (["a", "b"], [0, 1], {}, TypeError, r"y_true must be integer labels, got dtype <U1"),
        ([True, False], [0, 1], {}, TypeError, r"y_true must be integer labels, got dtype bool"),
        ([0, 1], [["a", "b"], ["c", "d"]], {}, TypeError, r"y_pred must be real numbers"),
        ([0, 1], [0, 1], {"num_classes": 1}, ValueError,
         r"number of classes K = 1 is outside 2..=32"),
        ([0, 1], [0, 1], {"num_classes": -1}, ValueError, r"num_classes = -1 must be"),
        ([0, 1], [0, 1], {"num_classes": 2.0}, TypeError, r"num_classes must be an integer"),
        ([0, 1], [0, 1], {"preset": "fer"}, ValueError, r'unknown preset "fer"'),
        ([0, 1], [0, 1], {"cost": [[0, -1], [1, 0]]}, ValueError, r"cost\[0, 1\] = -1 is negative"),
        ([0, 1], [0, 1], {"cost": 3}, ValueError, r"cost must be a \(K, K\) matrix"),
        ([0, 1], [0, 1], {"quadrant_radius": -1.0, "cost": [[0, 1], [1, 0]]}, ValueError,
         r"quadrant central radius = -1 is outside \[0, inf\)"),
    ],
)
def test_metric_errors(y_true: Any, y_pred: Any, kwargs: Dict[str, Any], error: type,
                       message: str) -> None:
    with pytest.raises(error, match=message):
        evaluate(y_true, y_pred, **kwargs)


# ----------------------------------------------------------------------------------------------
# Paired tests.


def test_affect_md_five_seed_p_values() -> None:
    # Differences 1, 2, 3, 4, -5: T+ = 10, two-sided p = 20/32 = 0.625 for both tests.
    d = [1.0, 2.0, 3.0, 4.0, -5.0]
    w = stats.wilcoxon(d)
    assert (w["statistic"], w["exact"], w["n"], w["n_used"]) == (10.0, True, 5, 5)
    assert w["p_value"] == pytest.approx(20 / 32, abs=1e-12)
    assert w["test"] == "wilcoxon" and w["alternative"] == "two-sided"
    assert "exact signed-rank" in w["method"]
    s = stats.sign_flip(d, [0.0] * 5)
    assert (s["statistic"], s["exact"]) == (1.0, True)
    assert s["p_value"] == pytest.approx(20 / 32, abs=1e-12)
    # Every seed better: one-sided 1/32 = 0.03125 (affect.md's 0.031), two-sided 2/32.
    x = [0.71, 0.69, 0.73, 0.70, 0.72]
    y = [0.65, 0.66, 0.64, 0.68, 0.61]
    for test in (stats.wilcoxon, stats.sign_flip):
        assert test(x, y, alternative="greater")["p_value"] == pytest.approx(1 / 32, abs=1e-12)
        assert test(x, y)["p_value"] == pytest.approx(2 / 32, abs=1e-12)
        assert test(x, y, alternative="less")["p_value"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_wilcoxon_exact_matches_scipy(alternative: str) -> None:
    rng = np.random.default_rng(20261122)
    cases = [
        ([0.61, 0.63, 0.60, 0.64, 0.62], [0.60, 0.61, 0.57, 0.60, 0.67]),
        (np.round(rng.normal(0.3, 1.0, 20), 3), np.zeros(20)),
        (rng.normal(0.1, 1.0, 12), rng.normal(0.0, 1.0, 12)),
    ]
    for x, y in cases:
        ours = stats.wilcoxon(x, y, alternative=alternative, method="exact")
        theirs = scipy.stats.wilcoxon(x, y, alternative=alternative, method="exact")
        assert ours["p_value"] == pytest.approx(theirs.pvalue, abs=1e-12)
        if alternative != "two-sided":  # scipy's two-sided statistic is min(T+, T-)
            assert ours["statistic"] == pytest.approx(theirs.statistic, abs=1e-12)
        assert ours["exact"]


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
def test_wilcoxon_normal_with_ties_and_zeros_matches_scipy(alternative: str,
                                                           zero_method: str) -> None:
    # 0.25·[2, 0, 2, -1, 3, 3, 2, -1, 4, -2]: a zero and ties (dyadic, exact in f64).
    d = 0.25 * np.array([2, 0, 2, -1, 3, 3, 2, -1, 4, -2], dtype=float)
    x, y = 0.5 + d, np.full(10, 0.5)
    ours = stats.wilcoxon(x, y, alternative=alternative, method="normal",
                          zero_method=zero_method)
    theirs = scipy.stats.wilcoxon(x, y, alternative=alternative, method="approx",
                                  correction=True, zero_method=zero_method)
    assert not ours["exact"] and "normal approximation" in ours["method"]
    assert ours["p_value"] == pytest.approx(theirs.pvalue, rel=1e-9)
    assert stats.wilcoxon(x, y, alternative=alternative, method="approx",
                          zero_method=zero_method)["p_value"] == ours["p_value"]


def test_wilcoxon_exact_with_ties_and_zeros_known_values() -> None:
    # tests/stats.rs: scipy.stats.permutation_test over every sign pattern, zeros dropped.
    d = 0.25 * np.array([2, 0, 2, -1, 3, 3, 2, -1, 4, -2], dtype=float)
    for alternative, want in zip(ALTERNATIVES, [0.0859375, 0.04296875, 0.96875]):
        r = stats.wilcoxon(d, alternative=alternative)
        assert (r["statistic"], r["n"], r["n_used"]) == (37.5, 10, 9)
        assert r["p_value"] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_sign_flip_matches_scipy_permutation_test(alternative: str) -> None:
    d = np.array([0.371, 0.455, -0.407, 0.21, -0.119, -0.796, -0.677, 0.137, -1.865, 0.014,
                  1.574, 1.698])
    want = scipy.stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative=alternative
    ).pvalue
    r = stats.sign_flip(d, np.zeros(12), alternative=alternative)
    assert r["p_value"] == pytest.approx(want, abs=1e-12)
    assert r["statistic"] == pytest.approx(d.mean(), abs=1e-15)
    assert r["method"] == "exact sign-flip permutation distribution (2^12 sign patterns)"


def test_paired_test_properties() -> None:
    rng = np.random.default_rng(5)
    for n in (1, 3, 5, 8, 20, 35, 60):
        x, y = rng.normal(0.2, 1, n), rng.normal(0, 1, n)
        for test in (stats.wilcoxon, stats.sign_flip):
            two = test(x, y)["p_value"]
            greater = test(x, y, alternative="greater")["p_value"]
            less = test(x, y, alternative="less")["p_value"]
            assert 0.0 <= min(two, greater, less) and max(two, greater, less) <= 1.0
            assert test(y, x)["p_value"] == pytest.approx(two, abs=1e-12)
            assert test(y, x, alternative="less")["p_value"] == pytest.approx(greater, abs=1e-12)
            assert two == pytest.approx(min(1.0, 2 * min(greater, less)), abs=1e-12)
    # auto: exact up to 50 (Wilcoxon) / 30 (sign flip), normal beyond.
    x, y = rng.normal(0.1, 1, 60), rng.normal(0, 1, 60)
    assert not stats.wilcoxon(x, y)["exact"] and not stats.sign_flip(x, y)["exact"]
    assert stats.wilcoxon(x[:25], y[:25])["exact"] and stats.sign_flip(x[:25], y[:25])["exact"]
    # No nonzero difference: p = 1.
    r = stats.wilcoxon([0.5, 0.5], [0.5, 0.5])
    assert (r["p_value"], r["n_used"], r["statistic"]) == (1.0, 0, 0.0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: stats.wilcoxon([1.0, 2.0], [1.0]), ValueError, r"y has shape \(1,\), expected \(2,\)"),
        (lambda: stats.wilcoxon([], []), ValueError, r"no valid sample in the paired samples"),
        (lambda: stats.sign_flip([1.0, np.nan], [0.0, 0.0]), ValueError, r"x\[1\] = NaN is not finite"),
        (lambda: stats.wilcoxon([1.0], [np.inf]), ValueError, r"y\[0\] = inf is not finite"),
        (lambda: stats.wilcoxon([1.0], alternative="bigger"), ValueError,
         r'unknown alternative "bigger"; expected two-sided, greater or less'),
        (lambda: stats.wilcoxon([1.0], method="asymptotic"), ValueError, r'unknown method "asymptotic"'),
        (lambda: stats.wilcoxon([1.0], zero_method="zsplit"), ValueError,
         r'unknown zero_method "zsplit"; expected wilcox or pratt'),
        (lambda: stats.sign_flip(np.ones(41), method="exact"), ValueError,
         r"exact sign-flip test enumerates 2\^n sign patterns: n = 41 exceeds 40"),
        (lambda: stats.wilcoxon(np.arange(1.0, 1002.0), method="exact"), ValueError,
         r"exact Wilcoxon test .* n = 1001 exceeds 1000"),
        (lambda: stats.wilcoxon([[1.0, 2.0]]), ValueError, r"x must be \(n,\) values, got shape \(1, 2\)"),
        (lambda: stats.wilcoxon(["a"]), TypeError, r"x must be real numbers, got dtype <U1"),
        (lambda: stats.wilcoxon([1.0], alternative=1), TypeError, r"alternative must be a str"),
    ],
)
def test_paired_test_errors(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# ----------------------------------------------------------------------------------------------
# Degeneracy.


def test_the_study_degenerate_pairs() -> None:
    affectnet = degeneracy.analyse("affectnet8")
    assert affectnet["degenerate"] == ["Anger-Contempt"]
    nearest = affectnet["pairs"][0]
    assert nearest["name"] == "Anger-Contempt" and nearest["classes"] == ("Anger", "Contempt")
    assert (nearest["i"], nearest["j"], nearest["degenerate"]) == (6, 7, True)
    assert nearest["distance"] == pytest.approx(0.062, abs=5e-4)
    assert nearest["within_eps"] is None
    for preset in ("affwild2-7", "affwild2-8"):
        r = degeneracy.analyse(preset)
        assert r["degenerate"] == ["Anger-Fear"], preset
        assert r["pairs"][0]["name"] == "Anger-Fear"
    assert "DEGENERATE" in affectnet["report"] and "Anger-Contempt" in affectnet["report"]


def test_the_au_augmented_and_uniform_costs_separate_every_pair() -> None:
    for preset in ("affectnet8", "affwild2-8"):
        assert degeneracy.analyse(cost(preset, "au", alpha=0.5))["degenerate"] == []
        assert degeneracy.analyse(cost(preset, "uniform"))["degenerate"] == []


def test_analysis_follows_its_definitions() -> None:
    c = cost("affwild2-8")
    m = c.values
    k = c.k
    r = degeneracy.analyse(c)
    assert len(r["pairs"]) == k * (k - 1) // 2 and r["names"] == c.class_names
    distances = [p["distance"] for p in r["pairs"]]
    assert distances == sorted(distances)
    typical = np.array([np.median(np.delete(m[:, j], j)) for j in range(k)])
    np.testing.assert_allclose(r["typical"], typical, atol=1e-15)
    for p in r["pairs"]:
        i, j = p["i"], p["j"]
        assert p["cost"] == pytest.approx((m[i, j] + m[j, i]) / 2, abs=1e-15)
        assert p["distance"] == pytest.approx((m[i, j] + m[j, i]) / 2 / m.max(), abs=1e-15)
        sep = min(m[i, j] / typical[j], m[j, i] / typical[i])
        assert p["separation"] == pytest.approx(sep, abs=1e-15)
        assert p["degenerate"] == (sep < 0.25)
    assert r["nearest"][1]["class"] == "Anger" and r["nearest"][1]["nearest"] == "Fear"
    assert r["threshold"] == degeneracy.DEFAULT_THRESHOLD == 0.25
    assert r["rare_share"] == degeneracy.DEFAULT_RARE_SHARE == 0.5


def test_separation_is_invariant_to_per_class_reweighting() -> None:
    # A weight w_j on the samples of class j scales the column C[:, j]: separations stay.
    base = cost("affectnet8").values
    w = np.array([1.0, 0.2, 3.0, 1.5, 7.0, 0.9, 0.5, 12.0])
    a = degeneracy.analyse(base)
    b = degeneracy.analyse(base * w[None, :])
    sep_a = {(p["i"], p["j"]): p["separation"] for p in a["pairs"]}
    sep_b = {(p["i"], p["j"]): p["separation"] for p in b["pairs"]}
    for pair, s in sep_a.items():
        assert sep_b[pair] == pytest.approx(s, rel=1e-12)
    assert b["degenerate"] == ["6-7"]  # an unnamed matrix: indices


def test_eps_and_rare_classes() -> None:
    counts = [75, 134, 25, 14, 6, 4, 25, 4]  # shares: Contempt well under half of 1/8
    r = degeneracy.analyse("affectnet8", eps=0.1, frequencies=counts)
    np.testing.assert_allclose(r["shares"], np.array(counts) / sum(counts), atol=1e-15)
    assert r["rare"] == [s < 0.5 / 8 for s in np.array(counts) / sum(counts)]
    first = r["pairs"][0]
    assert first["within_eps"] is True and first["rare"] == (False, True)
    assert "rare: Contempt" in r["report"]
    # A large eps makes every pair degenerate; a tiny threshold and eps none of them.
    assert len(degeneracy.analyse("affectnet8", eps=10.0)["degenerate"]) == 28
    assert degeneracy.analyse("affectnet8", threshold=0.01)["degenerate"] == []


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"threshold": 0.0}, ValueError, r"threshold = 0 is outside \(0, inf\)"),
        ({"threshold": np.nan}, ValueError, r"threshold = NaN is outside \(0, inf\)"),
        ({"eps": -1.0}, ValueError, r"eps = -1 is outside \(0, inf\)"),
        ({"rare_share": 0.0}, ValueError, r"rare share = 0 is outside \(0, inf\)"),
        ({"frequencies": [1, 2]}, ValueError, r"class frequencies has shape \(2,\), expected \(8,\)"),
        ({"frequencies": [1, 2, 3, 4, 5, 6, 7, -1]}, ValueError, r"frequency\[7\] = -1 is negative"),
        ({"frequencies": [0] * 8}, ValueError, r"no valid sample in class frequencies"),
        ({"frequencies": [np.nan] * 8}, ValueError, r"frequency\[0\] = NaN is not finite"),
        ({"frequencies": ["a"] * 8}, TypeError, r"frequencies must be real numbers"),
        ({"threshold": "0.2"}, TypeError, r"threshold must be a real number, got str"),
    ],
)
def test_degeneracy_errors(kwargs: Dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        degeneracy.analyse("affectnet8", **kwargs)


def test_degeneracy_input_errors() -> None:
    with pytest.raises(ValueError, match=r'unknown preset "affectnet"'):
        degeneracy.analyse("affectnet")
    with pytest.raises(ValueError, match=r"cost\[0, 1\] = NaN is not finite"):
        degeneracy.analyse([[0.0, np.nan], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"cost_or_preset must be a \(K, K\) matrix"):
        degeneracy.analyse([1.0, 2.0])


@pytest.mark.parametrize("module", [metrics, stats, degeneracy])
def test_docstring_examples(module: Any) -> None:
    import doctest

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
