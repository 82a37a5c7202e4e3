"""circot.solve on NumPy arrays: the reference vectors, dtypes, defining properties, errors."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest
from conftest import EPS_MACH, asymmetric_cost

import circot


def _case_inputs(case: Dict[str, Any], dtype: Any = np.float64):
    c = np.array(case["C"])
    z = np.array([case["logits"]], dtype=dtype)
    b = np.array([case["b"]], dtype=dtype)
    return c, z, b


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_reference_vectors_float64(cases: List[Dict[str, Any]], backend: str) -> None:
    for case in cases:
        c, z, b = _case_inputs(case)
        ref = case["converged"]
        s = circot.solve(c, z, b, eps=case["eps"], logits=True, tol=1e-13, max_iter=100_000,
                         backend=backend, plan=True)  # fmt: skip
        # Converged to 1e-13 in L1: values agree to about tol · max C / ε (the conditioning).
        scale = max(1.0, case["max_C"] / case["eps"])
        tol = 1e-11 * scale
        assert s.marginal_error[0] <= 1e-13, case["id"]
        assert abs(s.loss[0] - ref["dual_kl"]) <= tol, case["id"]
        assert abs(s.transport_cost[0] - ref["loss_linear"]) <= tol, case["id"]
        np.testing.assert_allclose(s.plan[0], ref["P"], atol=tol, err_msg=case["id"])
        np.testing.assert_allclose(s.grad_logits[0], ref["grad_logits"], atol=tol, err_msg=case["id"])
        support = np.array(case["b"]) > 0
        np.testing.assert_allclose(s.g[0][support], np.array(ref["g"])[support], atol=tol * 10)
        np.testing.assert_allclose(s.f[0], ref["f"], atol=tol * 10, err_msg=case["id"])


def test_reference_vectors_float32_within_the_dtype_floor(cases: List[Dict[str, Any]]) -> None:
    eps32 = EPS_MACH[np.dtype(np.float32)]
    for case in cases:
        c, z, b = _case_inputs(case, np.float32)
        s = circot.solve(c, z, b, eps=case["eps"], logits=True, backend="cpu", max_iter=100_000)
        assert s.loss.dtype == np.float32
        k, scale = c.shape[0], case["max_C"] / case["eps"]
        # f32 rounding of potentials: about K · (max C/ε) · ε_mach per unit of cost, plus the
        # stopping tolerance (an L1 marginal error moves the value by at most tol · max C).
        bound = 8 * k * scale * eps32 * case["max_C"] + s.tol * case["max_C"]
        assert abs(float(s.loss[0]) - case["converged"]["dual_kl"]) <= bound, case["id"]


def test_entropy_convention_matches_reference(cases: List[Dict[str, Any]]) -> None:
    for case in cases[:10]:
        c, z, b = _case_inputs(case)
        s = circot.solve(c, z, b, eps=case["eps"], logits=True, tol=1e-13, max_iter=100_000,
                         convention="entropy", backend="cpu")  # fmt: skip
        tol = 1e-11 * max(1.0, case["max_C"] / case["eps"])
        assert abs(s.loss[0] - case["converged"]["dual_entropy"]) <= tol, case["id"]


def test_one_hot_labels_closed_form() -> None:
    c = asymmetric_cost(8, seed=3)
    rng = np.random.default_rng(5)
    a = rng.dirichlet(np.ones(8), size=97)
    y = rng.integers(0, 8, size=97)
    s = circot.solve(c, a, y, eps=0.05, backend="cpu")
    # P = a·e_yᵀ whatever ε: loss = Σ_i a_i C[i, y].
    expected = np.einsum("bi,ib->b", a, c[:, y])
    np.testing.assert_allclose(s.loss, expected, atol=16 * EPS_MACH[np.dtype(np.float64)])
    assert (s.iterations == 1).all()


def test_marginals_of_the_plan() -> None:
    rng = np.random.default_rng(11)
    c = asymmetric_cost(7, seed=1)
    a = rng.dirichlet(np.ones(7), size=33)
    b = rng.dirichlet(np.ones(7), size=33)
    s = circot.solve(c, a, b, eps=0.1, tol=1e-12, plan=True, backend="cpu")
    np.testing.assert_allclose(s.plan.sum(axis=1), b, atol=1e-13)  # columns exact after g
    assert np.abs(s.plan.sum(axis=2) - a).sum(axis=1).max() <= 1e-12
    assert (s.loss >= 0).all()
    assert s.converged() == 33 and s.batch == 33


def test_half_types_agree_with_float32() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(2)
    c = circot.cost("affectnet8").values
    z = rng.normal(size=(31, 8)).astype(np.float32)
    y = rng.integers(0, 8, size=31)
    ref = circot.solve(c, z, y, eps=0.05, logits=True, smoothing=0.1, backend="cpu")
    for dtype in (np.float16, ml_dtypes.bfloat16):
        zh = z.astype(dtype)
        s = circot.solve(c, zh, y, eps=0.05, logits=True, smoothing=0.1, backend="cpu")
        assert s.loss.dtype == np.dtype(dtype)
        eps_h = float(ml_dtypes.finfo(dtype).eps)
        # The inputs were rounded to the half type: the loss moves by about ε_h · |z| · max C,
        # and the result is rounded once more.
        bound = 4 * eps_h * (1 + np.abs(z).max())
        np.testing.assert_allclose(s.loss.astype(np.float32), ref.loss, atol=bound)


def test_divergence_is_zero_at_equal_arguments_and_positive_elsewhere() -> None:
    rng = np.random.default_rng(4)
    c = circot.cost("affwild2-8").values
    p = rng.dirichlet(np.ones(8), size=9)
    q = rng.dirichlet(np.ones(8), size=9)
    # a → β with β = a is slow for the alternating iteration (a nearly diagonal plan): room to
    # converge, so that S(p, p) = 0 is a property of the answer.
    same = circot.solve(
        c, p, p, eps=0.1, tol=1e-12, divergence=True, backend="cpu", max_iter=100_000
    )
    np.testing.assert_allclose(same.loss, 0.0, atol=1e-10)
    other = circot.solve(c, p, q, eps=0.1, tol=1e-12, divergence=True, backend="cpu")
    assert (other.loss > 0).all()
    assert other.f is None and other.grad_source is not None


def test_divergence_reports_its_self_terms_converged_at_the_defaults() -> None:
    # The README's workload: AffectNet-8 circumplex, eps 0.05, float32 logits, smoothing 0.1.
    rng = np.random.default_rng(5)
    z = (2.0 * rng.standard_normal((64, 8))).astype(np.float32)
    y = rng.integers(0, 8, 64)
    s = circot.solve("affectnet8", z, y, eps=0.05, logits=True, smoothing=0.1, divergence=True)
    assert s.self_iterations is not None and s.self_marginal_error is not None
    assert s.self_iterations.shape == (64, 2) and s.self_iterations.dtype == np.uint32
    assert (s.self_marginal_error <= s.tol).all()
    assert (s.self_iterations < 200).all()
    plain = circot.solve("affectnet8", z, y, eps=0.05, logits=True, smoothing=0.1)
    assert plain.self_iterations is None and plain.self_marginal_error is None


def test_warm_start_converges_faster_to_the_same_answer() -> None:
    c = circot.cost("affectnet7").values
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(7), size=5)
    q = rng.dirichlet(np.ones(7), size=5)
    cold = circot.solve(c, p, q, eps=0.05, tol=1e-11, backend="cpu")
    warm = circot.solve(c, p, q, eps=0.05, tol=1e-11, backend="cpu", init_g=cold.g)
    assert (warm.iterations < cold.iterations).all()
    np.testing.assert_allclose(warm.loss, cold.loss, atol=1e-10)


def test_inputs_are_not_modified_and_views_give_the_same_bits() -> None:
    rng = np.random.default_rng(7)
    c = circot.cost("affectnet8").values
    z = rng.normal(size=(16, 16)).astype(np.float32)
    view = z[::2, ::2]  # strided, not contiguous
    before = z.copy()
    y = rng.integers(0, 8, size=8)
    s_view = circot.solve(c, view, y, eps=0.05, logits=True, smoothing=0.2, backend="cpu")
    s_copy = circot.solve(c, np.ascontiguousarray(view), y, eps=0.05, logits=True,
                          smoothing=0.2, backend="cpu")  # fmt: skip
    np.testing.assert_array_equal(z, before)
    np.testing.assert_array_equal(s_view.loss, s_copy.loss)
    np.testing.assert_array_equal(s_view.grad_logits, s_copy.grad_logits)


def test_empty_batch_gives_empty_outputs() -> None:
    c = circot.cost("affectnet8").values
    s = circot.solve(c, np.zeros((0, 8)), np.zeros((0,), dtype=np.int64), eps=0.05)
    assert s.loss.shape == (0,) and s.f.shape == (0, 8)


def test_ignored_labels_give_zeros() -> None:
    c = circot.cost("affwild2-8").values
    z = np.random.default_rng(0).normal(size=(3, 8))
    s = circot.solve(c, z, np.array([2, -1, 5]), eps=0.05, logits=True, smoothing=0.1)
    assert s.loss[1] == 0.0 and s.iterations[1] == 0 and not s.grad_logits[1].any()


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(source=np.ones((2, 8), dtype=np.int32)), TypeError, "source must be"),
        (dict(source=np.full((2, 8), 0.125, dtype=np.float32), target=np.full((2, 8), 0.125)),
         TypeError, "target"),
        (dict(source=np.full((2, 7), 1 / 7)), ValueError, "shape"),
        (dict(source=np.full((8,), 0.125)), ValueError, "source must be a 2-D"),
        (dict(target=np.array([0, 8])), ValueError, "label 8 of problem 1"),
        (dict(target=np.array([0.5, 1.0])), ValueError, "target"),
        (dict(eps=-1.0), ValueError, "eps = -1"),
        (dict(eps=float("nan")), ValueError, "eps = NaN"),
        (dict(max_iter=0), ValueError, "max_iter = 0"),
        (dict(backend="gpu"), ValueError, "unknown backend"),
        (dict(convention="kld"), ValueError, "unknown convention"),
        (dict(smoothing=1.5), ValueError, "smoothing"),
        (dict(cost=np.ones((3, 4))), ValueError, "square"),
        (dict(cost=-np.ones((8, 8))), ValueError, "negative"),
        (dict(cost=np.array("x")), TypeError, "cost"),
        (dict(source=np.array([[np.nan] + [0.125] * 7, [0.125] * 8])), ValueError, "not finite"),
        (dict(source=np.array([[0.5] * 8, [0.125] * 8])), ValueError, "sums to"),
    ],
)
def test_bad_input_names_the_problem(kwargs: Dict[str, Any], error: type, text: str) -> None:
    args: Dict[str, Any] = dict(
        cost=circot.cost("affectnet8").values,
        source=np.full((2, 8), 0.125),
        target=np.array([0, 1]),
        eps=0.05,
    )
    args.update(kwargs)
    with pytest.raises(error, match=text):
        circot.solve(args.pop("cost"), args.pop("source"), args.pop("target"), **args)


def test_unknown_preset_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nosuch"):
        circot.solve("nosuch", np.full((1, 8), 0.125), np.array([0]), eps=0.05)


def test_docstring_examples() -> None:
    import doctest

    import circot._solve

    result = doctest.testmod(circot._solve, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
