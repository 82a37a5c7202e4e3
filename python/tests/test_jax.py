"""circot.jax.sinkhorn_loss: the XLA FFI custom call against a plain JAX log-domain Sinkhorn.

Tolerances follow shared/design/numerics.md: the precision floor of a potential is
``K·(max C/ε)·ε_mach`` (in units of C); a solve stopped at L1 row-marginal error ``tol`` has a
dual value within about ``tol·max|f| ≤ 2·tol·max C`` of the optimum, and a gradient w.r.t.
the logits (``a ⊙ (f − ⟨a,f⟩)``, whose error is ``a_i·Δf_i ≈ ε·r_i``) within about ``ε·tol``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Optional, Tuple

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402

from circot.jax import sinkhorn_loss, sinkhorn_terms  # noqa: E402

K = 5
EPS = 0.2


@pytest.fixture
def x64():
    """64-bit JAX for the duration of one test."""
    with jax.enable_x64(True):
        yield


def random_cost(rng: np.random.Generator, k: int = K) -> np.ndarray:
    """An asymmetric cost in [0, 1] with a zero diagonal and max exactly 1."""
    c = rng.uniform(0.1, 1.0, size=(k, k))
    np.fill_diagonal(c, 0.0)
    return c / c.max()


def simplex(rng: np.random.Generator, b: int, k: int = K) -> np.ndarray:
    p = rng.uniform(0.05, 1.0, size=(b, k))
    return p / p.sum(axis=1, keepdims=True)


def floor(k: int, cmax: float, eps: float, dtype) -> float:
    """The precision floor ``K·(max C/ε)·ε_mach`` of a potential, in units of C."""
    return k * (cmax / eps) * float(jnp.finfo(dtype).eps)


def iterations_for(cmax: float, eps: float, digits: float = 40.0) -> int:
    """A fixed iteration count for the oracle: the Hilbert-metric contraction of one Sinkhorn
    step is at most ``tanh(max C/(4ε))²`` (Franklin–Lorenz), so this many steps shrink the
    initial error by ``e^-digits``."""
    rate = np.tanh(cmax / (4 * eps)) ** 2
    return int(np.ceil(digits / -np.log(rate)))


def plain_ot(a: jax.Array, beta: jax.Array, c: jax.Array, eps: float, iters: int) -> jax.Array:
    """KL-convention OT_ε(a, β) of one problem by plain log-domain Sinkhorn (f, then g, from
    g = 0), the dual value ⟨f,a⟩ + ⟨g,β⟩ after the last g-update."""
    log_a = jnp.log(a)
    log_b = jnp.where(beta > 0, jnp.log(jnp.where(beta > 0, beta, 1.0)), -jnp.inf)

    def step(_, fg):
        f, g = fg
        f = -eps * logsumexp(log_b[None, :] + (g[None, :] - c) / eps, axis=1)
        g = -eps * logsumexp(log_a[:, None] + (f[:, None] - c) / eps, axis=0)
        return f, g

    zeros = jnp.zeros_like(a)
    f, g = jax.lax.fori_loop(0, iters, step, (zeros, zeros))
    return f @ a + jnp.sum(jnp.where(beta > 0, g * beta, 0.0))


def plain_batch(
    logits: jax.Array, beta: jax.Array, c: jax.Array, eps: float, iters: int
) -> jax.Array:
    a = jax.nn.softmax(logits, axis=-1)
    return jax.vmap(lambda ai, bi: plain_ot(ai, bi, c, eps, iters))(a, beta)


def problem(seed: int, b: int = 6) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, K)) * 1.5, simplex(rng, b), random_cost(rng)


def tols(cmax: float, eps: float, dtype=np.float64) -> Tuple[float, float, float]:
    """(solver tol, value atol, logit-gradient atol) for this problem's scale."""
    fl = floor(K, cmax, eps, dtype)
    tol = 4 * fl
    return tol, 2 * cmax * tol + 4 * fl * cmax, 2 * eps * tol + 4 * fl * cmax


# ---------------------------------------------------------------------------------------------
# Values and gradients against the plain Sinkhorn


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_value_matches_plain_sinkhorn(x64, backend: str) -> None:
    z, beta, c = problem(0)
    tol, atol, _ = tols(c.max(), EPS)
    got = sinkhorn_loss(
        jnp.asarray(z), jnp.asarray(beta), c, EPS, reduction="none", tol=tol, backend=backend
    )
    want = plain_batch(jnp.asarray(z), jnp.asarray(beta), jnp.asarray(c), EPS,
                       iterations_for(c.max(), EPS))  # fmt: skip
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def test_probability_input_matches_logits(x64) -> None:
    z, beta, c = problem(1)
    tol, atol, _ = tols(c.max(), EPS)
    a = jax.nn.softmax(jnp.asarray(z), axis=-1)
    from_p = sinkhorn_loss(a, beta, c, EPS, probabilities=True, reduction="none", tol=tol)
    from_z = sinkhorn_loss(jnp.asarray(z), beta, c, EPS, reduction="none", tol=tol)
    np.testing.assert_allclose(from_p, from_z, rtol=0, atol=2 * atol)
    # d/dp is the centred potential: its rows sum to zero.
    grad_p = jax.grad(lambda p: sinkhorn_loss(p, beta, c, EPS, probabilities=True, tol=tol))(a)
    np.testing.assert_allclose(grad_p.sum(axis=1), 0.0, atol=K * floor(K, 1, EPS, np.float64))


def test_labels_with_smoothing_match_plain_sinkhorn(x64) -> None:
    z, _, c = problem(2)
    labels = np.array([0, 4, 2, 2, 1, 3])
    s = 0.1
    tol, atol, _ = tols(c.max(), EPS)
    got = sinkhorn_loss(jnp.asarray(z), jnp.asarray(labels), c, EPS, label_smoothing=s,
                        reduction="none", tol=tol)  # fmt: skip
    beta = (1 - s) * np.eye(K)[labels] + s / K
    want = plain_batch(jnp.asarray(z), jnp.asarray(beta), jnp.asarray(c), EPS,
                       iterations_for(c.max(), EPS))  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def test_one_hot_labels_closed_form(x64) -> None:
    z, _, c = problem(3)
    labels = np.array([0, 1, 2, 3, 4, 0])
    got = sinkhorn_loss(jnp.asarray(z), jnp.asarray(labels), c, EPS, reduction="none")
    a = np.asarray(jax.nn.softmax(jnp.asarray(z), axis=-1))
    want = np.einsum("bi,ib->b", a, c[:, labels])
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * K * np.finfo(np.float64).eps)


def test_grad_logits_matches_autodiff_of_plain_sinkhorn(x64) -> None:
    z, beta, c = problem(4)
    tol, _, gatol = tols(c.max(), EPS)
    iters = iterations_for(c.max(), EPS)
    got = jax.grad(lambda x: sinkhorn_loss(x, beta, c, EPS, reduction="sum", tol=tol))(
        jnp.asarray(z)
    )
    want = jax.grad(lambda x: plain_batch(x, jnp.asarray(beta), jnp.asarray(c), EPS, iters).sum())(
        jnp.asarray(z)
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=gatol)


def central_difference(f, x: np.ndarray, v: np.ndarray, h: float) -> float:
    return float((f(x + h * v) - f(x - h * v)) / (2 * h))


def test_grad_logits_finite_differences(x64) -> None:
    z, beta, c = problem(5)
    tol, atol, _ = tols(c.max(), EPS)
    loss = lambda x: sinkhorn_loss(jnp.asarray(x), beta, c, EPS, reduction="sum", tol=tol)
    grad = np.asarray(jax.grad(loss)(z))
    v = np.random.default_rng(50).normal(size=z.shape)
    h = np.cbrt(np.finfo(np.float64).eps)
    # Truncation h²·|L'''|/6 with |L'''| ≲ B·max C/ε² per unit direction, plus the solves'
    # value error (atol per problem, B problems) amplified by 1/h.
    b = z.shape[0]
    bound = h**2 * b * c.max() / EPS**2 * np.abs(v).max() ** 3 + 2 * b * atol / h
    assert abs(central_difference(loss, z, v, h) - float(np.sum(grad * v))) <= bound


def test_grad_cost_matches_plans(x64) -> None:
    z, beta, c = problem(6)
    tol, atol, _ = tols(c.max(), EPS)
    iters = iterations_for(c.max(), EPS)
    weight = np.linspace(0.5, 2.0, K)
    got = jax.grad(lambda cc: sinkhorn_loss(jnp.asarray(z), beta, cc, EPS, weight=weight,
                                            reduction="sum", tol=tol))(jnp.asarray(c))  # fmt: skip
    w = beta @ weight
    want = jax.grad(lambda cc: jnp.sum(w * plain_batch(jnp.asarray(z), jnp.asarray(beta), cc,
                                                       EPS, iters)))(jnp.asarray(c))  # fmt: skip
    assert got.shape == (K, K) and got.dtype == jnp.float64
    # ∂L/∂C = Σ_b w_b P_b; a plan entry errs by about its row's marginal error (≤ tol).
    plan_atol = w.sum() * (tol + 4 * floor(K, c.max(), EPS, np.float64))
    np.testing.assert_allclose(got, want, rtol=0, atol=plan_atol)
    # The same cost gradient with the logits differentiated too (one call, both outputs).
    gz, gc = jax.grad(lambda x, cc: sinkhorn_loss(x, beta, cc, EPS, weight=weight,
                                                  reduction="sum", tol=tol),
                      argnums=(0, 1))(jnp.asarray(z), jnp.asarray(c))  # fmt: skip
    np.testing.assert_allclose(gc, got, rtol=0, atol=0)
    assert gz.shape == z.shape


def test_grad_cost_finite_differences(x64) -> None:
    z, beta, c = problem(7)
    tol, atol, _ = tols(c.max(), EPS)
    loss = lambda cc: sinkhorn_loss(jnp.asarray(z), beta, jnp.asarray(cc), EPS, reduction="sum",
                                    tol=tol)  # fmt: skip
    grad = np.asarray(jax.grad(loss)(jnp.asarray(c)))
    v = np.random.default_rng(70).uniform(-1, 1, size=c.shape)
    np.fill_diagonal(v, 0.0)
    h = np.cbrt(np.finfo(np.float64).eps)
    b = z.shape[0]
    bound = h**2 * b / EPS**2 + 2 * b * atol / h
    assert abs(central_difference(loss, c, v, h) - float(np.sum(grad * v))) <= bound


def test_entropy_convention(x64) -> None:
    z, beta, c = problem(8)
    tol, atol, _ = tols(c.max(), EPS)
    kl = sinkhorn_loss(jnp.asarray(z), beta, c, EPS, reduction="none", tol=tol)
    ent = sinkhorn_loss(jnp.asarray(z), beta, c, EPS, reduction="none", tol=tol,
                        convention="entropy")  # fmt: skip
    a = np.asarray(jax.nn.softmax(jnp.asarray(z), axis=-1))
    h = lambda p: -np.sum(p * np.log(p), axis=1)
    np.testing.assert_allclose(ent, kl - EPS * (h(a) + h(beta)), rtol=0, atol=2 * atol)


def test_divergence(x64) -> None:
    z, beta, c = problem(9)
    tol, atol, _ = tols(c.max(), EPS)
    iters = iterations_for(c.max(), EPS)
    a = jax.nn.softmax(jnp.asarray(z), axis=-1)
    zero = sinkhorn_loss(jnp.asarray(z), a, c, EPS, divergence=True, reduction="none", tol=tol)
    np.testing.assert_allclose(zero, 0.0, rtol=0, atol=4 * atol)
    got = sinkhorn_loss(jnp.asarray(z), beta, c, EPS, divergence=True, reduction="none", tol=tol)
    cj = jnp.asarray(c)
    ot = lambda p, q: jax.vmap(lambda pi, qi: plain_ot(pi, qi, cj, EPS, iters))(p, q)
    want = ot(a, beta) - 0.5 * ot(a, a) - 0.5 * ot(jnp.asarray(beta), jnp.asarray(beta))
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * atol)


# ---------------------------------------------------------------------------------------------
# Reductions, weights, ignore_index, label smoothing (torch.nn.CrossEntropyLoss semantics)


def test_label_reductions_weights_and_ignore_index(x64) -> None:
    z, _, c = problem(10)
    labels = np.array([0, -100, 2, 4, -100, 1])
    weight = np.array([0.5, 1.0, 2.0, 1.5, 3.0])
    per = np.asarray(sinkhorn_loss(z, labels, c, EPS, reduction="none"))
    assert per[1] == 0.0 and per[4] == 0.0
    kept = labels != -100
    w = np.where(kept, weight[np.where(kept, labels, 0)], 0.0)
    tight = 8 * K * np.finfo(np.float64).eps
    weighted = sinkhorn_loss(z, labels, c, EPS, weight=weight, reduction="none")
    np.testing.assert_allclose(weighted, w * per, rtol=tight, atol=0)
    np.testing.assert_allclose(sinkhorn_loss(z, labels, c, EPS, weight=weight, reduction="sum"),
                               np.sum(w * per), rtol=tight)  # fmt: skip
    np.testing.assert_allclose(sinkhorn_loss(z, labels, c, EPS, weight=weight),
                               np.sum(w * per) / w.sum(), rtol=tight)  # fmt: skip
    np.testing.assert_allclose(sinkhorn_loss(z, labels, c, EPS),
                               per[kept].mean(), rtol=tight)  # fmt: skip
    # Ignored rows get no gradient; kept rows get their weight over Σw.
    g = np.asarray(jax.grad(lambda x: sinkhorn_loss(x, labels, c, EPS, weight=weight))(z))
    assert np.all(g[~kept] == 0.0)
    g_each = np.asarray(jax.grad(lambda x: sinkhorn_loss(x, labels, c, EPS, reduction="sum"))(z))
    np.testing.assert_allclose(g, g_each * (w / w.sum())[:, None], rtol=tight, atol=tight)


def test_all_ignored_gives_zero_not_nan(x64) -> None:
    z, _, c = problem(11, b=3)
    labels = np.array([-1, -1, -1])
    for weight in (None, np.ones(K)):
        value = sinkhorn_loss(z, labels, c, EPS, weight=weight, ignore_index=-1)
        loss = lambda x: sinkhorn_loss(x, labels, c, EPS, weight=weight, ignore_index=-1)
        grad = jax.grad(loss)(z)
        assert float(value) == 0.0
        assert np.all(np.asarray(grad) == 0.0)


def test_label_smoothing_of_labels_equals_smoothed_distributions(x64) -> None:
    z, _, c = problem(12)
    labels = np.array([1, 0, 3, 3, 4, 2])
    s = 0.2
    tol, atol, _ = tols(c.max(), EPS)
    from_labels = sinkhorn_loss(z, labels, c, EPS, label_smoothing=s, reduction="none", tol=tol)
    beta = (1 - s) * np.eye(K)[labels] + s / K
    from_dists = sinkhorn_loss(z, beta, c, EPS, reduction="none", tol=tol)
    np.testing.assert_allclose(from_labels, from_dists, rtol=0, atol=2 * atol)
    # Probability targets are smoothed the same way (CE semantics).
    onehot = np.eye(K)[labels]
    smoothed = sinkhorn_loss(z, onehot, c, EPS, label_smoothing=s, reduction="none", tol=tol)
    np.testing.assert_allclose(smoothed, from_dists, rtol=0, atol=2 * atol)


def test_probability_target_weights_and_mean(x64) -> None:
    z, beta, c = problem(13)
    weight = np.array([0.5, 1.0, 2.0, 1.5, 3.0])
    per = np.asarray(sinkhorn_loss(z, beta, c, EPS, reduction="none"))
    w = beta @ weight
    tight = 8 * K * np.finfo(np.float64).eps
    np.testing.assert_allclose(sinkhorn_loss(z, beta, c, EPS, weight=weight, reduction="none"),
                               w * per, rtol=tight)  # fmt: skip
    np.testing.assert_allclose(sinkhorn_loss(z, beta, c, EPS, weight=weight),
                               np.sum(w * per) / len(per), rtol=tight)  # fmt: skip
    np.testing.assert_allclose(sinkhorn_loss(z, beta, c, EPS), per.mean(), rtol=tight)


# ---------------------------------------------------------------------------------------------
# jit and vmap


def test_jit_matches_eager(x64) -> None:
    z, beta, c = problem(14)
    labels = np.array([0, 1, -100, 3, 4, 2])
    # Label smoothing of labels happens in the handler (the same bits under jit); smoothing of
    # distributions is jnp arithmetic that XLA may fuse differently, so it is left out here.
    f = lambda x, y, cc: sinkhorn_loss(x, y, cc, EPS, label_smoothing=0.05 if y.ndim == 1 else 0)
    per = lambda x, y, cc: sinkhorn_loss(x, y, cc, EPS, label_smoothing=0.05 if y.ndim == 1 else 0,
                                         reduction="none")  # fmt: skip
    # XLA may reassociate the reduction's B-term sums: a few ulps of B terms.
    rtol = z.shape[0] * np.finfo(np.float64).eps
    for target in (labels, beta):
        np.testing.assert_array_equal(jax.jit(per)(z, target, c), per(z, target, c))
        np.testing.assert_allclose(jax.jit(f)(z, target, c), f(z, target, c), rtol=rtol)
        np.testing.assert_allclose(jax.jit(jax.grad(f))(z, target, c), jax.grad(f)(z, target, c),
                                   rtol=rtol, atol=rtol * 1e-3)  # fmt: skip


def test_vmap_shared_cost_matches_loop(x64) -> None:
    rng = np.random.default_rng(15)
    zs = rng.normal(size=(3, 4, K))
    ys = rng.integers(0, K, size=(3, 4))
    c = random_cost(rng)
    f = lambda x, y: sinkhorn_loss(x, y, c, EPS, label_smoothing=0.1, reduction="none")
    got = jax.vmap(f)(zs, ys)
    want = np.stack([f(zs[i], ys[i]) for i in range(3)])
    np.testing.assert_array_equal(got, want)
    # Only one operand vmapped (the other broadcast), and nested vmap.
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(0, None))(zs, ys[0]),
                                  np.stack([f(zs[i], ys[0]) for i in range(3)]))  # fmt: skip
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(None, 0))(zs[0], ys),
                                  np.stack([f(zs[0], ys[i]) for i in range(3)]))  # fmt: skip
    nested = jax.vmap(jax.vmap(f, in_axes=(0, None)), in_axes=(None, 0))(zs, ys)
    assert nested.shape == (3, 3, 4)
    np.testing.assert_array_equal(nested[2, 1], f(zs[1], ys[2]))
    # vmap of grad and of jit.
    g = jax.vmap(jax.grad(lambda x, y: sinkhorn_loss(x, y, c, EPS)))(zs, ys)
    for i in range(3):
        each = jax.grad(lambda x: sinkhorn_loss(x, ys[i], c, EPS))(zs[i])
        np.testing.assert_array_equal(g[i], each)
    np.testing.assert_array_equal(jax.jit(jax.vmap(f))(zs, ys), want)


def test_vmap_over_costs(x64) -> None:
    rng = np.random.default_rng(16)
    zs = rng.normal(size=(3, 4, K))
    beta = simplex(rng, 4)
    cs = np.stack([random_cost(rng) for _ in range(3)])
    f = lambda x, cc: sinkhorn_loss(x, beta, cc, EPS, reduction="none")
    loop = np.stack([f(zs[i], cs[i]) for i in range(3)])
    np.testing.assert_array_equal(jax.vmap(f)(zs, cs), loop)
    np.testing.assert_array_equal(jax.vmap(f, in_axes=(None, 0))(zs[0], cs),
                                  np.stack([f(zs[0], cs[i]) for i in range(3)]))  # fmt: skip
    # Per-cost gradients under vmap, and an unbatched cost's gradient summed over the vmap.
    gc = jax.vmap(jax.grad(lambda x, cc: sinkhorn_loss(x, beta, cc, EPS), argnums=1))(zs, cs)
    for i in range(3):
        want = jax.grad(lambda cc: sinkhorn_loss(zs[i], beta, cc, EPS))(jnp.asarray(cs[i]))
        np.testing.assert_array_equal(gc[i], want)
    total = jax.grad(lambda cc: jax.vmap(lambda x: sinkhorn_loss(x, beta, cc, EPS))(zs).sum())(
        jnp.asarray(cs[0])
    )
    each = sum(jax.grad(lambda cc: sinkhorn_loss(zs[i], beta, cc, EPS))(jnp.asarray(cs[0]))
               for i in range(3))  # fmt: skip
    np.testing.assert_allclose(total, each, rtol=0, atol=4 * np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------------
# Element types (default 32-bit JAX)


def test_float32_without_x64() -> None:
    z, beta, c = problem(17)
    got = sinkhorn_loss(jnp.asarray(z, jnp.float32), jnp.asarray(beta, jnp.float32), c, EPS,
                        reduction="none")  # fmt: skip
    assert got.dtype == jnp.float32
    with jax.enable_x64(True):
        want = plain_batch(jnp.asarray(z), jnp.asarray(beta), jnp.asarray(c), EPS,
                           iterations_for(c.max(), EPS))  # fmt: skip
    # The crate's default tol in f32 is its precision floor (≥ 1e-6).
    fl = floor(K, c.max(), EPS, np.float32)
    tol = max(1e-6, fl)
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * c.max() * tol + 4 * fl * c.max())
    labels = jnp.array([0, 1, 2, 3, 4, 0], dtype=jnp.int32)
    g = jax.jit(jax.grad(lambda x: sinkhorn_loss(x, labels, c, EPS)))(jnp.asarray(z, jnp.float32))
    assert g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g)))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision(dtype) -> None:
    z, beta, c = problem(18)
    x = jnp.asarray(z, dtype)
    t = jnp.asarray(beta, dtype)
    got = sinkhorn_loss(x, t, c, EPS, reduction="none")
    assert got.dtype == dtype
    # The same rounded inputs solved in f32 (the half target's rows renormalised, as the crate
    # does after its row-sum check).
    t32 = t.astype(jnp.float32)
    want = sinkhorn_loss(x.astype(jnp.float32), t32 / t32.sum(axis=1, keepdims=True), c, EPS,
                         reduction="none", tol=1e-6)  # fmt: skip
    # Half storage, f32 arithmetic (numerics.md): the f32 solve at its default tolerance
    # max(1e-6, K·(max C/ε)·ε_f32), then the result rounded to the half type (≤ ε_half·|L|).
    fl = floor(K, c.max(), EPS, np.float32)
    tol = max(1e-6, fl)
    want = np.asarray(want)
    atol = float(jnp.finfo(dtype).eps) * np.abs(want) + 2 * c.max() * tol + 4 * fl * c.max()
    err = np.abs(np.asarray(got, np.float32) - want)
    assert np.all(err <= atol), (err, atol)
    g = jax.grad(lambda v: sinkhorn_loss(v, t, c, EPS).astype(jnp.float32))(x)
    assert g.dtype == dtype and bool(jnp.all(jnp.isfinite(g.astype(jnp.float32))))


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_arguments_raise_at_trace_time() -> None:
    z, beta, c = problem(19)
    labels = np.array([0, 1, 2, 3, 4, 0])
    cases = [
        (TypeError, "input", dict(input=np.arange(30).reshape(6, 5))),
        (ValueError, "input", dict(input=z[0])),
        (ValueError, "input", dict(input=np.zeros((6, 1)))),
        (TypeError, "target", dict(target=labels > 0)),
        (ValueError, "target", dict(target=labels[:5])),
        (ValueError, "target", dict(target=beta[:, :4])),
        (ValueError, "cost", dict(cost=c[:4, :4])),
        (TypeError, "cost", dict(cost=c > 0.5)),
        (ValueError, "cost", dict(cost=-c)),
        (ValueError, "weight", dict(weight=np.ones(K + 1))),
        (ValueError, "reduction", dict(reduction="avg")),
        (ValueError, "convention", dict(convention="ent")),
        (ValueError, "eps", dict(eps=0.0)),
        (ValueError, "label_smoothing", dict(label_smoothing=1.5)),
        (ValueError, "max_iter", dict(max_iter=0)),
        (ValueError, r"target\[2\] = 9 is outside 0..5", dict(target=np.array([0, 1, 9, 0, 0, 0]))),
        (ValueError, r"target\[0\] = -3", dict(target=np.array([-3, 1, 1, 0, 0, 0]))),
    ]
    for error, match, override in cases:
        args = dict(input=z, target=labels, cost=c, eps=EPS)
        args.update(override)
        with pytest.raises(error, match=match):
            sinkhorn_loss(**args)
        if set(override) <= {"input", "target"} and match in ("input", "target"):
            with pytest.raises(error, match=match):  # shapes and dtypes: also under jit
                jax.jit(lambda x, y: sinkhorn_loss(x, y, c, EPS))(args["input"], args["target"])


def test_out_of_range_label_inside_jit_is_a_clear_error() -> None:
    z, _, c = problem(20)
    f = jax.jit(lambda x, y: sinkhorn_loss(x, y, c, EPS))
    with pytest.raises(Exception, match=r"target\[3\] = 5 is outside 0..5"):
        jax.block_until_ready(f(z, np.array([0, 1, 2, 5, 0, 0])))
    with pytest.raises(Exception, match=r"target\[0\] = -7 is outside"):
        jax.block_until_ready(f(z, np.array([-7, 1, 2, 3, 0, 0])))
    # The process survives and the next call works.
    assert np.isfinite(float(f(z, np.array([0, 1, 2, 3, -100, 0]))))


def test_invalid_cost_inside_jit_is_a_clear_error() -> None:
    z, beta, _ = problem(21)
    f = jax.jit(lambda x, cc: sinkhorn_loss(x, beta, cc, EPS))
    bad = np.ones((K, K))
    bad[1, 2] = -0.5
    with pytest.raises(Exception, match=r"cost.*negative"):
        jax.block_until_ready(f(z, bad))
    bad[1, 2] = np.nan
    with pytest.raises(Exception, match=r"cost.*finite"):
        jax.block_until_ready(f(z, bad))


def test_probabilities_off_the_simplex_inside_jit() -> None:
    _, beta, c = problem(22)
    f = jax.jit(lambda p: sinkhorn_loss(p, beta, c, EPS, probabilities=True))
    with pytest.raises(Exception, match="circot.jax.sinkhorn_loss"):
        jax.block_until_ready(f(np.full((6, K), 0.5, np.float32)))


def test_unsupported_derivatives_raise() -> None:
    z, beta, c = problem(23)
    with pytest.raises(ValueError, match="target distributions"):
        jax.grad(lambda t: sinkhorn_loss(z, t, c, EPS))(jnp.asarray(beta, jnp.float32))
    with pytest.raises(Exception, match="differentiat"):
        jax.hessian(lambda x: sinkhorn_loss(x, beta, c, EPS))(jnp.asarray(z, jnp.float32))


def raw_call(results, source, target, cost, **overrides):
    """The custom call without the Python layer's checks, to exercise the handler's own."""
    attrs = dict(eps=np.float64(EPS), logits=np.bool_(True), smoothing=np.float64(0.0),
                 divergence=np.bool_(False), convention="kl", max_iter=np.int64(100),
                 tol=np.float64(-1.0), backend="cpu", cost_grad=np.bool_(False),
                 ignore_index=np.int64(-100))  # fmt: skip
    attrs.update(overrides)
    attrs = {k: v for k, v in attrs.items() if v is not None}
    call = jax.ffi.ffi_call("circot_sinkhorn_loss", results, vmap_method="expand_dims")
    return jax.block_until_ready(call(source, target, cost, **attrs))


def test_handler_validates_buffers_and_attributes() -> None:
    z = np.zeros((3, K), np.float32)
    y = np.zeros((3,), np.int32)
    c = 1.0 - np.eye(K, dtype=np.float32)
    sds = jax.ShapeDtypeStruct
    good = [sds((3,), jnp.float32), sds((3, K), jnp.float32), sds((0,), jnp.float32),
            sds((3,), jnp.int32), sds((3,), jnp.float32)]  # fmt: skip
    out = raw_call(good, z, y, c)
    np.testing.assert_allclose(out[0], (K - 1) / K, rtol=4 * np.finfo(np.float32).eps)
    wrong_grad = list(good)
    wrong_grad[1] = sds((3, K + 1), jnp.float32)
    with pytest.raises(Exception, match=r"grad_input result must have shape \[3, 5\]"):
        raw_call(wrong_grad, z, y, c)
    wrong_iters = list(good)
    wrong_iters[3] = sds((3,), jnp.float32)
    with pytest.raises(Exception, match="iterations result must be int32"):
        raw_call(wrong_iters, z, y, c)
    with pytest.raises(Exception, match="grad_cost result must have shape"):
        raw_call(good, z, y, c, cost_grad=np.bool_(True))
    with pytest.raises(Exception, match="target must be int32/int64 labels or float32"):
        raw_call(good, z, y.astype(np.int16), c)
    with pytest.raises(Exception, match=r"cost must have shape \(K, K\)"):
        raw_call(good, z, y, c[:, :4])
    with pytest.raises(Exception, match=r"source must be float32, float64"):
        raw_call(good, z.astype(np.int32), y, c)
    with pytest.raises(Exception, match='missing attribute "backend"'):
        raw_call(good, z, y, c, backend=None)
    with pytest.raises(Exception, match="unknown backend"):
        raw_call(good, z, y, c, backend="tpu")
    with pytest.raises(Exception, match='attribute "logits" must be a bool'):
        raw_call(good, z, y, c, logits="yes")


def test_terms_report_convergence(x64) -> None:
    z, beta, c = problem(25)
    tol, _, _ = tols(c.max(), EPS)
    terms = sinkhorn_terms(z, beta, c, EPS, tol=tol)
    assert terms.iterations.dtype == jnp.int32 and terms.iterations.shape == (6,)
    assert np.all(np.asarray(terms.iterations) >= 1)
    assert np.all(np.asarray(terms.marginal_error) <= tol)
    np.testing.assert_array_equal(terms.loss, sinkhorn_loss(z, beta, c, EPS, tol=tol,
                                                            reduction="none"))  # fmt: skip
    capped = sinkhorn_terms(z, beta, c, EPS, tol=tol, max_iter=2)
    assert np.all(np.asarray(capped.iterations) == 2)  # reaching max_iter is reported, no error
    labels = sinkhorn_terms(z, np.array([0, 1, -100, 3, 4, 2]), c, EPS)
    np.testing.assert_array_equal(labels.iterations, [1, 1, 0, 1, 1, 1])  # closed form, ignored
    assert np.all(np.asarray(labels.grad_input)[2] == 0.0)


def test_empty_batch() -> None:
    c = 1.0 - np.eye(3)
    empty = np.zeros((0, 3), np.float32)
    assert float(sinkhorn_loss(empty, np.zeros((0,), np.int32), c)) == 0.0
    assert sinkhorn_loss(empty, empty, c, reduction="none").shape == (0,)
    assert jax.grad(lambda x: sinkhorn_loss(x, empty, c))(empty).shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# Packaging


def test_preset_cost() -> None:
    import circot

    try:
        values = np.asarray(circot.cost("affectnet8").values)
    except NotImplementedError:
        pytest.skip("circot.cost is not implemented yet")
    z = np.random.default_rng(24).normal(size=(4, 8)).astype(np.float32)
    y = np.array([0, 7, 3, -100])
    np.testing.assert_array_equal(sinkhorn_loss(z, y, "affectnet8"), sinkhorn_loss(z, y, values))


def test_import_circot_without_jax() -> None:
    code = "import sys; sys.modules['jax'] = None; import circot; print(circot.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_docstring_examples() -> None:
    import doctest

    import circot.jax

    result = doctest.testmod(circot.jax, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
