"""circot.torch: the loss against a plain PyTorch Sinkhorn and the Rust library, autograd
(gradcheck for logits and cost), opcheck, torch.compile, autocast, CrossEntropyLoss semantics,
double backward, errors."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest
from conftest import asymmetric_cost

torch = pytest.importorskip("torch")

import circot  # noqa: E402
from circot.torch import SinkhornLoss, sinkhorn_loss, sinkhorn_terms  # noqa: E402

F64_EPS = float(torch.finfo(torch.float64).eps)
F32_EPS = float(torch.finfo(torch.float32).eps)


def affectnet8() -> torch.Tensor:
    return torch.tensor(circot.cost("affectnet8").values)


def plain_sinkhorn(z: torch.Tensor, beta: torch.Tensor, c: torch.Tensor, eps: float,
                   iters: int) -> torch.Tensor:  # fmt: skip
    """What a user writes by hand: log-domain Sinkhorn (f-update, then g-update, from g = 0),
    the loss as the dual value ⟨f,a⟩ + ⟨g,β⟩, autograd through the iterations."""
    log_a = torch.log_softmax(z, dim=1)
    log_b = torch.log(beta)
    g = torch.zeros_like(beta)
    f = torch.zeros_like(beta)
    for _ in range(iters):
        f = -eps * torch.logsumexp(log_b[:, None, :] + (g[:, None, :] - c) / eps, dim=2)
        g = -eps * torch.logsumexp(log_a[:, :, None] + (f[:, :, None] - c) / eps, dim=1)
    return (f * log_a.exp()).sum(1) + (g * beta).sum(1)


def smoothed(y: torch.Tensor, k: int, s: float) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, k).double() * (1 - s) + s / k


def test_value_and_gradient_match_a_plain_pytorch_sinkhorn() -> None:
    gen = torch.Generator().manual_seed(0)
    c = affectnet8()
    z = torch.randn(37, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 8, (37,), generator=gen)
    eps, s = 0.1, 0.1
    ours = sinkhorn_loss(z, y, c, eps, label_smoothing=s, reduction="none", tol=1e-13,
                         max_iter=100_000)  # fmt: skip
    (g_ours,) = torch.autograd.grad(ours.sum(), z)
    z2 = z.detach().clone().requires_grad_(True)
    plain = plain_sinkhorn(z2, smoothed(y, 8, s), c, eps, iters=3000)
    (g_plain,) = torch.autograd.grad(plain.sum(), z2)
    # Both at convergence: the envelope gradient equals the unrolled one.
    scale = c.max().item() / eps
    torch.testing.assert_close(ours, plain.detach(), atol=1e3 * F64_EPS * scale, rtol=0)
    torch.testing.assert_close(g_ours, g_plain, atol=1e4 * F64_EPS * scale, rtol=0)


def test_agrees_with_the_rust_library() -> None:
    rng = np.random.default_rng(1)
    c = asymmetric_cost(7, seed=2)
    z = rng.normal(size=(97, 7)).astype(np.float32)
    y = rng.integers(0, 7, size=97)
    s = circot.solve(c, z, y, eps=0.05, logits=True, smoothing=0.1, backend="cpu")
    zt = torch.from_numpy(z.copy()).requires_grad_(True)
    per = sinkhorn_loss(zt, torch.from_numpy(y), torch.from_numpy(c), 0.05,
                        label_smoothing=0.1, reduction="none", backend="cpu")  # fmt: skip
    per.sum().backward()
    np.testing.assert_array_equal(per.detach().numpy(), s.loss)
    np.testing.assert_array_equal(zt.grad.numpy(), s.grad_logits)


def test_gradcheck_logits_and_probabilities() -> None:
    gen = torch.Generator().manual_seed(3)
    c = torch.as_tensor(asymmetric_cost(5, seed=4))
    z = torch.randn(6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (6,), generator=gen)
    beta = torch.softmax(torch.randn(6, 5, generator=gen, dtype=torch.float64), 1)
    opts: Dict[str, Any] = dict(tol=1e-14, max_iter=100_000)
    assert torch.autograd.gradcheck(
        lambda z: sinkhorn_loss(z, y, c, 0.1, label_smoothing=0.2, **opts), (z,))
    assert torch.autograd.gradcheck(
        lambda z: sinkhorn_loss(z, beta, c, 0.1, reduction="sum", **opts), (z,))
    assert torch.autograd.gradcheck(
        lambda z: sinkhorn_loss(z, beta, c, 0.1, divergence=True, **opts), (z,))
    assert torch.autograd.gradcheck(
        lambda z: sinkhorn_loss(z, beta, c, 0.1, convention="entropy", **opts), (z,))


def test_gradcheck_cost() -> None:
    gen = torch.Generator().manual_seed(5)
    # Every entry away from 0, so finite differences keep the cost non-negative.
    c = torch.as_tensor(asymmetric_cost(4, seed=6) + 0.05).requires_grad_(True)
    z = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    beta = torch.softmax(torch.randn(5, 4, generator=gen, dtype=torch.float64), 1)
    y = torch.tensor([0, 3, -100, 1, 2])
    opts: Dict[str, Any] = dict(tol=1e-14, max_iter=100_000)
    assert torch.autograd.gradcheck(lambda c: sinkhorn_loss(z, beta, c, 0.1, **opts), (c,))
    assert torch.autograd.gradcheck(
        lambda c: sinkhorn_loss(z, y, c, 0.1, label_smoothing=0.1, **opts), (c,))
    assert torch.autograd.gradcheck(
        lambda c: sinkhorn_loss(z, beta, c, 0.1, divergence=True, **opts), (c,))


def test_opcheck() -> None:
    gen = torch.Generator().manual_seed(7)
    c = affectnet8()
    z = torch.randn(9, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 8, (9,), generator=gen)
    beta = torch.softmax(torch.randn(9, 8, generator=gen, dtype=torch.float64), 1)
    op = torch.ops.circot.sinkhorn_terms.default
    for target in (y, beta):
        for cost in (c, c.clone().requires_grad_(True)):
            args = (z, target, cost, 0.05, True, 0.1 if target is y else 0.0, False, "kl",
                    1000, None, "cpu", cost.requires_grad, -100)  # fmt: skip
            torch.library.opcheck(op, args)


def test_torch_compile_fullgraph_gives_the_same_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(8)
    criterion = SinkhornLoss("affectnet8", eps=0.05, label_smoothing=0.1,
                             weight=torch.linspace(0.5, 1.5, 8))  # fmt: skip
    z = torch.randn(33, 8, generator=gen, requires_grad=True)
    y = torch.randint(0, 8, (33,), generator=gen)
    y[3] = -100
    eager = criterion(z, y)
    (g_eager,) = torch.autograd.grad(eager, z)
    compiled = torch.compile(criterion, fullgraph=True)
    value = compiled(z, y)
    (g_compiled,) = torch.autograd.grad(value, z)
    torch.testing.assert_close(value, eager, atol=4 * F32_EPS, rtol=4 * F32_EPS)
    torch.testing.assert_close(g_compiled, g_eager, atol=4 * F32_EPS, rtol=4 * F32_EPS)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_half_logits(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(9)
    model = torch.nn.Linear(16, 8)
    x = torch.randn(64, 16, generator=gen)
    y = torch.randint(0, 8, (64,), generator=gen)
    criterion = SinkhornLoss("affectnet8", eps=0.05, label_smoothing=0.1)
    with torch.autocast("cpu", dtype=dtype):
        logits = model(x)
        assert logits.dtype == dtype
        loss = criterion(logits, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert model.weight.grad is not None and torch.isfinite(model.weight.grad).all()
    reference = criterion(logits.detach().float(), y)
    # The half logits computed in f32: the same problem up to the final rounding to the half
    # type of each per-sample loss, and the half type's default tolerance.
    half_eps = float(torch.finfo(dtype).eps)
    torch.testing.assert_close(loss.detach(), reference, atol=8 * half_eps, rtol=0)


def test_bf16_cpu_tensors_match_the_library_on_the_same_values() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    gen = torch.Generator().manual_seed(10)
    z = torch.randn(17, 8, generator=gen).to(torch.bfloat16)
    y = torch.randint(0, 8, (17,), generator=gen)
    per = sinkhorn_loss(z, y, "affectnet8", 0.05, label_smoothing=0.1, reduction="none")
    z_np = z.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    s = circot.solve("affectnet8", z_np, y.numpy(), eps=0.05, logits=True, smoothing=0.1)
    np.testing.assert_array_equal(per.numpy(), s.loss.astype(np.float32))


def test_double_backward_raises_a_clear_error() -> None:
    z = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    loss = sinkhorn_loss(z, torch.tensor([0, 1, 2, 3]), "affectnet8", 0.05, label_smoothing=0.1)
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad(loss, z, create_graph=True)


def test_cross_entropy_semantics_weight_ignore_index_reductions() -> None:
    gen = torch.Generator().manual_seed(11)
    z = torch.randn(10, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 8, (10,), generator=gen)
    y[[2, 7]] = -100
    w = torch.rand(8, generator=gen, dtype=torch.float64) + 0.5
    kw: Dict[str, Any] = dict(label_smoothing=0.1, tol=1e-12)
    per = sinkhorn_loss(z, y, "affectnet8", 0.05, reduction="none", **kw)
    assert per[2] == 0 and per[7] == 0
    kept = y != -100
    torch.testing.assert_close(sinkhorn_loss(z, y, "affectnet8", 0.05, reduction="sum", **kw),
                               per.sum())  # fmt: skip
    torch.testing.assert_close(sinkhorn_loss(z, y, "affectnet8", 0.05, **kw),
                               per.sum() / kept.sum())  # fmt: skip
    sw = w[y.clamp(min=0)] * kept
    per_w = sinkhorn_loss(z, y, "affectnet8", 0.05, weight=w, reduction="none", **kw)
    torch.testing.assert_close(per_w, per * sw)
    torch.testing.assert_close(sinkhorn_loss(z, y, "affectnet8", 0.05, weight=w, **kw),
                               (per * sw).sum() / sw.sum())  # fmt: skip
    # Probability targets: sample weight Σ_k w_k t_bk, the mean divides by B (as CE does).
    t = torch.softmax(torch.randn(10, 8, generator=gen, dtype=torch.float64), 1)
    per_t = sinkhorn_loss(z, t, "affectnet8", 0.05, reduction="none", tol=1e-12)
    torch.testing.assert_close(
        sinkhorn_loss(z, t, "affectnet8", 0.05, weight=w, tol=1e-12),
        (per_t * (t * w).sum(1)).sum() / 10)


def test_label_smoothing_of_indices_equals_smoothed_probability_targets() -> None:
    gen = torch.Generator().manual_seed(12)
    z = torch.randn(8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 8, (8,), generator=gen)
    as_labels = sinkhorn_loss(z, y, "affectnet8", 0.05, label_smoothing=0.3, tol=1e-12)
    one_hot = torch.nn.functional.one_hot(y, 8).double()
    as_probs = sinkhorn_loss(z, one_hot, "affectnet8", 0.05, label_smoothing=0.3, tol=1e-12)
    torch.testing.assert_close(as_labels, as_probs, atol=1e-10, rtol=0)


def test_all_ignored_batch_has_mean_zero_and_zero_gradient() -> None:
    z = torch.randn(3, 8, requires_grad=True)
    loss = sinkhorn_loss(z, torch.full((3,), -100), "affectnet8", 0.05)
    loss.backward()
    assert loss.item() == 0.0 and not z.grad.any()


def test_module_buffers_parameters_and_learning_the_cost() -> None:
    criterion = SinkhornLoss("affwild2-8", eps=0.05, label_smoothing=0.1)
    assert "cost" in dict(criterion.named_buffers())
    assert criterion.cost.dtype == torch.float64 and criterion.cost.shape == (8, 8)
    learned = torch.nn.Parameter(torch.tensor(circot.cost("affwild2-8").values) + 0.1)
    criterion = SinkhornLoss(learned, eps=0.05, label_smoothing=0.1)
    assert any(p is learned for p in criterion.parameters())
    loss = criterion(torch.randn(6, 8), torch.randint(0, 8, (6,)))
    loss.backward()
    assert learned.grad is not None and learned.grad.shape == (8, 8)
    # ∂OT/∂C is the plan: non-negative, and summed over the mean's weights it has mass 1.
    assert (learned.grad >= -F64_EPS).all()
    torch.testing.assert_close(learned.grad.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_custom_op_function_and_auto_give_the_same_numbers() -> None:
    gen = torch.Generator().manual_seed(13)
    c = affectnet8().requires_grad_(True)
    z = torch.randn(12, 8, generator=gen, requires_grad=True)
    y = torch.randint(0, 8, (12,), generator=gen)
    results = []
    for implementation in ("custom_op", "function", "auto"):
        loss = sinkhorn_terms(z, y, c, eps=0.05, smoothing=0.1, implementation=implementation)[0]
        gz, gc = torch.autograd.grad(loss.sum(), (z, c))
        results.append((loss.detach(), gz, gc))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize(
    "call, error, text",
    [
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0, 8])), ValueError,
         r"target\[1\] = 8 is outside 0..8"),
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0, -1])), ValueError,
         r"target\[1\] = -1"),
        (lambda: sinkhorn_loss(torch.randn(2, 7), torch.tensor([0, 1])), ValueError,
         r"cost has shape \(8, 8\), expected \(7, 7\)"),
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0, 1, 2])), ValueError,
         r"target \(class indices\) has shape"),
        (lambda: sinkhorn_loss(torch.randn(8), torch.tensor([0])), ValueError, "2-D"),
        (lambda: sinkhorn_loss(torch.randn(2, 8).int(), torch.tensor([0, 1])), TypeError,
         "input must be float"),
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0.0, 1.0])), ValueError,
         "probabilities"),
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0, 1]), reduction="avg"),
         ValueError, "reduction"),
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0, 1]), eps=0.0), ValueError,
         "eps = 0"),
        (lambda: sinkhorn_loss(torch.full((2, 8), float("nan")), torch.tensor([0, 1])),
         ValueError, "not finite"),
        (lambda: sinkhorn_loss(torch.randn(2, 8), torch.tensor([0, 1]), weight=torch.ones(7)),
         ValueError, "weight has shape"),
        (lambda: SinkhornLoss("nosuch"), ValueError, "nosuch"),
        (lambda: sinkhorn_loss(torch.randn(2, 8),
                               torch.softmax(torch.randn(2, 8), 1).requires_grad_(True)),
         ValueError, "target requires grad"),
    ],
)
def test_bad_input_names_the_problem(call: Any, error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        call()


def test_inputs_are_not_modified() -> None:
    z = torch.randn(5, 8)
    t = torch.softmax(torch.randn(5, 8), 1)
    z0, t0 = z.clone(), t.clone()
    sinkhorn_loss(z, t, "affectnet8", 0.05, label_smoothing=0.2)
    assert torch.equal(z, z0) and torch.equal(t, t0)


def test_cuda_status_says_why_not_when_no_gpu() -> None:
    from circot.torch import cuda_status

    status = cuda_status()
    assert isinstance(status, str) and status
    if not torch.cuda.is_available():
        assert status != "available" or not torch.cuda.is_available()


def test_docstring_examples() -> None:
    import doctest

    import circot._torch_cuda
    import circot.torch

    for module in (circot.torch, circot._torch_cuda):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
