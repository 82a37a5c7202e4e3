"""CUDA tensors on circot's kernels: device pointers, ``torch.cuda.current_stream()``, outputs
allocated by torch, no host copies and no synchronisation.

Labels cannot be checked on the host without a copy, so they are made safe on the device
instead (:func:`kernel_labels`): the kernels only ever see labels in ``[0, K)`` or -1, and a
label outside ``[0, K)`` that is not ``ignore_index`` yields a NaN loss (and zero gradient)
for its sample, where the CPU path raises ``ValueError``.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from . import _native

_KERNEL_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}

# max C of device costs by (address, version): reading it needs a sync, so once per cost.
_MAX_COST: Dict[Tuple[int, int, str], float] = {}


def kernel_labels(target: Tensor, k: int, ignore_index: int) -> Tuple[Tensor, Tensor]:
    """Labels the kernels can read safely, and the mask of invalid ones (pure torch, any device).

    ``ignore_index`` becomes -1 (ignored); a label outside ``[0, K)`` that is not
    ``ignore_index`` becomes -1 too and is flagged in the mask, so its loss can be set to NaN.

    Examples
    --------
    >>> import torch
    >>> labels, invalid = kernel_labels(torch.tensor([0, 7, -100, 8, -1]), 8, -100)
    >>> labels.tolist(), invalid.tolist()
    ([0, 7, -1, -1, -1], [False, False, False, True, True])
    """
    target = target.to(torch.int64)
    ignored = target == ignore_index
    invalid = ~ignored & ((target < 0) | (target >= k))
    labels = torch.where(ignored | invalid, torch.full_like(target, -1), target)
    return labels.contiguous(), invalid


def _max_cost(cost: Tensor) -> float:
    key = (cost.data_ptr(), cost._version, str(cost.device))
    value = _MAX_COST.get(key)
    if value is None:
        if len(_MAX_COST) > 64:
            _MAX_COST.clear()
        value = _MAX_COST[key] = float(cost.detach().max())
    return value


def _buffer(t: Tensor) -> Tuple[int, int]:
    return (t.data_ptr(), t.numel())


def terms(
    input: Tensor, target: Tensor, cost: Tensor, *, eps: float, logits: bool, smoothing: float,
    divergence: bool, convention: str, max_iter: int, tol: Optional[float], backend: str,
    cost_grad: bool, ignore_index: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """The operator's CUDA kernel: the same outputs as the CPU path, enqueued on the current
    stream."""
    if backend not in ("auto", "cuda"):
        raise ValueError(f"backend = {backend!r} cannot run CUDA tensors; use 'auto' or 'cuda'")
    if divergence:
        raise ValueError("divergence=True is not available for CUDA tensors yet; use CPU tensors")
    if input.dtype not in _KERNEL_DTYPES:
        raise TypeError(
            f"the CUDA kernels compute in float32 and take float32, float16 or bfloat16 input, "
            f"got {input.dtype}"
        )
    status = _native.cuda_status()
    if status != "available":
        raise ValueError(f"circot cannot run CUDA tensors here: {status}")
    device = input.device
    b, k = input.shape
    x = input.detach().contiguous()
    c = cost.detach().to(device=device, dtype=torch.float32).contiguous()
    buffers: Dict[str, Tuple[int, int]] = {"source": _buffer(x), "cost": _buffer(c)}
    invalid = None
    if target.is_floating_point():
        t = target.detach().to(device=device, dtype=x.dtype).contiguous()
        buffers["target"] = _buffer(t)
    else:
        labels, invalid = kernel_labels(target.to(device), k, ignore_index)
        buffers["labels"] = _buffer(labels)
    outputs = {
        "loss": x.new_empty((b,)),
        "transport_cost": x.new_empty((b,)),
        "f": x.new_empty((b, k)),
        "g": x.new_empty((b, k)),
        "grad_source": x.new_empty((b, k)),
        "iterations": x.new_empty((b,), dtype=torch.int32),
        "marginal_error": x.new_empty((b,)),
    }
    if logits:
        outputs["grad_logits"] = x.new_empty((b, k))
    if cost_grad:
        outputs["plan"] = x.new_empty((b, k, k))
    buffers.update({name: _buffer(t) for name, t in outputs.items()})
    stream = torch.cuda.current_stream(device).cuda_stream
    _native.cuda_enqueue_unchecked(
        _KERNEL_DTYPES[input.dtype], device.index or 0, stream, b, k, buffers, logits=logits,
        smoothing=smoothing, max_cost=_max_cost(cost), eps=eps, max_iter=max_iter, tol=tol,
        convention=convention,
    )  # fmt: skip
    loss = outputs["loss"]
    if invalid is not None:
        loss = torch.where(invalid, torch.full_like(loss, float("nan")), loss)
    grad_input = outputs["grad_logits"] if logits else outputs["grad_source"]
    grad_cost = (
        outputs["plan"].to(cost.dtype) if cost_grad else cost.new_empty((0, k, k))
    )
    return loss, grad_input, grad_cost, outputs["iterations"], outputs["marginal_error"]
