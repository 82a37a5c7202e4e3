"""CUDA tensors. Here (no GPU) only what runs up to the launch is tested: the device-side label
mapping and the clear error without a usable GPU. On a machine with a GPU and built kernels,
the kernels' results are compared with the CPU path (skipped otherwise, with the reason)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import circot  # noqa: E402
from circot import _native  # noqa: E402
from circot._torch_cuda import kernel_labels  # noqa: E402
from circot.torch import cuda_status, sinkhorn_loss  # noqa: E402

GPU = torch.cuda.is_available() and cuda_status() == "available"
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no usable GPU: {cuda_status()}")


def test_kernel_labels_map_ignored_and_invalid_labels_to_minus_one() -> None:
    labels, invalid = kernel_labels(torch.tensor([0, 7, -100, 8, -1, 2**40]), 8, -100)
    assert labels.tolist() == [0, 7, -1, -1, -1, -1]
    assert invalid.tolist() == [False, False, False, True, True, True]
    assert labels.dtype == torch.int64 and labels.is_contiguous()


def test_enqueue_without_a_usable_gpu_is_a_clear_error() -> None:
    if GPU:
        pytest.skip("a GPU is present")
    # Address 0 everywhere: the call must stop at the probe, before any address is used.
    names = ["source", "labels", "cost", "loss", "transport_cost", "f", "g", "grad_source",
             "grad_logits", "iterations", "marginal_error"]  # fmt: skip
    with pytest.raises(ValueError, match="cuda backend unavailable"):
        _native.cuda_enqueue_unchecked(
            "float32", 0, 0, 1, 8, {n: (0, 8) for n in names}, logits=True, smoothing=0.0,
            max_cost=1.0, eps=0.05, max_iter=10, tol=None, convention="kl",
        )  # fmt: skip


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_tensors_agree_with_the_cpu(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(1025, 8, generator=gen).to(dtype)
    y = torch.randint(0, 8, (1025,), generator=gen)
    y[5] = -100
    cpu = sinkhorn_loss(z, y, "affectnet8", 0.05, label_smoothing=0.1, reduction="none")
    zc = z.cuda().requires_grad_(True)
    gpu = sinkhorn_loss(zc, y.cuda(), "affectnet8", 0.05, label_smoothing=0.1, reduction="none")
    gpu.sum().backward()
    eps = float(torch.finfo(dtype).eps)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=64 * eps, rtol=0)
    assert zc.grad is not None and torch.isfinite(zc.grad).all()


@needs_gpu
def test_an_invalid_label_on_the_device_gives_nan_for_its_sample_only() -> None:
    z = torch.randn(4, 8, device="cuda", requires_grad=True)
    loss = sinkhorn_loss(z, torch.tensor([0, 9, -100, 3], device="cuda"), "affectnet8", 0.05,
                         reduction="none")  # fmt: skip
    assert torch.isnan(loss[1]) and torch.isfinite(loss[[0, 3]]).all() and loss[2] == 0


@needs_gpu
def test_probability_targets_and_cost_gradient_on_the_device() -> None:
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(97, 8, generator=gen)
    t = torch.softmax(torch.randn(97, 8, generator=gen), 1)
    c = torch.tensor(circot.cost("affectnet8").values, dtype=torch.float32)
    cc = c.cuda().requires_grad_(True)
    loss = sinkhorn_loss(z.cuda(), t.cuda(), cc, 0.05)
    loss.backward()
    c_cpu = c.clone().requires_grad_(True)
    sinkhorn_loss(z, t, c_cpu, 0.05).backward()
    torch.testing.assert_close(cc.grad.cpu(), c_cpu.grad, atol=1e-4, rtol=0)
