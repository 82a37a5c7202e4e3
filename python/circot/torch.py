"""PyTorch: :class:`SinkhornLoss`, an ``nn.Module`` shaped like ``nn.CrossEntropyLoss``, and
its functional form :func:`sinkhorn_loss`.

The Sinkhorn solve is one opaque operator, ``circot::sinkhorn_terms``, built on
``torch.library.custom_op`` with a fake (meta) kernel and a registered autograd formula, so
``torch.compile(fullgraph=True)`` sees one node. Its forward returns, per problem, the loss and
its gradients (w.r.t. the input, and w.r.t. the cost when the cost requires grad); the backward
only scales them by the upstream gradient and never solves again. Class weights,
``ignore_index``, label smoothing of probability targets and the reduction are ordinary torch
ops around it. Older torch (< 2.4) gets the same operator as a ``torch.autograd.Function``.

CPU tensors are solved by circot's CPU backend (zero-copy NumPy views of the tensors, the GIL
released); CUDA tensors go to circot's kernels by device pointer on
``torch.cuda.current_stream()`` (see :func:`circot.torch.cuda_status`).

Examples
--------
>>> import torch
>>> from circot.torch import SinkhornLoss
>>> criterion = SinkhornLoss("affectnet8", eps=0.05, label_smoothing=0.1)
>>> logits = torch.randn(32, 8, requires_grad=True)
>>> labels = torch.randint(0, 8, (32,))
>>> loss = criterion(logits, labels)
>>> loss.backward()
>>> logits.grad.shape
torch.Size([32, 8])
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from . import _native
from ._solve import as_cost_array

__all__ = ["SinkhornLoss", "sinkhorn_loss", "sinkhorn_terms", "cuda_status"]

CostArg = Union[str, Tensor, "np.typing.ArrayLike"]

_REDUCTIONS = ("none", "sum", "mean")
_CONVENTIONS = ("kl", "entropy")
_BACKENDS = ("auto", "cpu", "cuda", "reference")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_SECOND_ORDER = (
    "circot: the Sinkhorn loss is differentiable once; double backward (create_graph=True, "
    "Hessian-vector products, gradient penalties through the loss) is not supported"
)


# --------------------------------------------------------------------------------------------
# The operator: per-problem terms, unreduced.


def _to_numpy(t: Tensor) -> Tuple[np.ndarray, bool]:
    """A zero-copy NumPy view of a CPU tensor (bf16 as its int16 bits, flagged)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy(), True
    return t.numpy(), False


def _from_numpy(a: np.ndarray, bits: bool) -> Tensor:
    t = torch.from_numpy(a)
    return t.view(torch.bfloat16) if bits else t


def _terms_cpu(
    input: Tensor, target: Tensor, cost: Tensor, eps: float, logits: bool, smoothing: float,
    divergence: bool, convention: str, max_iter: int, tol: Optional[float], backend: str,
    cost_grad: bool, ignore_index: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    source, bits = _to_numpy(input)
    if target.is_floating_point():
        target_np, _ = _to_numpy(target)
    else:
        target_np = target.detach().numpy()
    cost_np = cost.detach().to(torch.float64).numpy()
    out = _native.terms(
        cost_np, source, target_np, eps=eps, logits=logits, smoothing=smoothing,
        divergence=divergence, convention=convention, max_iter=max_iter, tol=tol,
        backend="cpu" if backend == "auto" else backend, cost_grad=cost_grad,
        ignore_index=ignore_index, bf16_bits=bits,
    )  # fmt: skip
    k = cost.shape[0]
    grad_cost = out["grad_cost"]
    return (
        _from_numpy(out["loss"], bits),
        _from_numpy(out["grad_input"], bits),
        torch.from_numpy(grad_cost).to(cost.dtype)
        if grad_cost is not None
        else torch.zeros((0, k, k), dtype=cost.dtype),
        torch.from_numpy(out["iterations"]),
        _from_numpy(out["marginal_error"], bits),
    )


def _terms_cuda(
    input: Tensor, target: Tensor, cost: Tensor, eps: float, logits: bool, smoothing: float,
    divergence: bool, convention: str, max_iter: int, tol: Optional[float], backend: str,
    cost_grad: bool, ignore_index: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    from . import _torch_cuda

    return _torch_cuda.terms(
        input, target, cost, eps=eps, logits=logits, smoothing=smoothing,
        divergence=divergence, convention=convention, max_iter=max_iter, tol=tol,
        backend=backend, cost_grad=cost_grad, ignore_index=ignore_index,
    )  # fmt: skip


def _terms_impl(
    input: Tensor, target: Tensor, cost: Tensor, eps: float, logits: bool, smoothing: float,
    divergence: bool, convention: str, max_iter: int, tol: Optional[float], backend: str,
    cost_grad: bool, ignore_index: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    args = (input, target, cost, eps, logits, smoothing, divergence, convention, max_iter, tol,
            backend, cost_grad, ignore_index)  # fmt: skip
    if input.device.type == "cuda":
        return _terms_cuda(*args)
    if input.device.type != "cpu":
        raise ValueError(f"input is on {input.device}; circot runs CPU and CUDA tensors")
    return _terms_cpu(*args)


def _terms_fake(
    input: Tensor, target: Tensor, cost: Tensor, eps: float, logits: bool, smoothing: float,
    divergence: bool, convention: str, max_iter: int, tol: Optional[float], backend: str,
    cost_grad: bool, ignore_index: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    b, k = input.shape
    return (
        input.new_empty((b,)),
        input.new_empty((b, k)),
        cost.new_empty((b if cost_grad else 0, k, k)),
        input.new_empty((b,), dtype=torch.int32),
        input.new_empty((b,)),
    )


def _backward_terms(
    grad_loss: Tensor, grad_input: Tensor, grad_cost: Tensor, cost_needs_grad: bool
) -> Tuple[Tensor, Optional[Tensor]]:
    """The chain rule on the saved per-problem gradients (no solve)."""
    if torch.is_grad_enabled():
        raise RuntimeError(_SECOND_ORDER)
    d_input = grad_input * grad_loss.to(grad_input.dtype).unsqueeze(1)
    d_cost = None
    if cost_needs_grad:
        d_cost = torch.einsum("b,bij->ij", grad_loss.to(grad_cost.dtype), grad_cost)
    return d_input, d_cost


_HAS_CUSTOM_OP = hasattr(torch.library, "custom_op") and hasattr(torch.library, "register_autograd")

if _HAS_CUSTOM_OP:

    @torch.library.custom_op("circot::sinkhorn_terms", mutates_args=())
    def _sinkhorn_terms_op(
        input: Tensor, target: Tensor, cost: Tensor, eps: float, logits: bool, smoothing: float,
        divergence: bool, convention: str, max_iter: int, tol: Optional[float], backend: str,
        cost_grad: bool, ignore_index: int,
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
        return _terms_impl(input, target, cost, eps, logits, smoothing, divergence, convention,
                           max_iter, tol, backend, cost_grad, ignore_index)  # fmt: skip

    _sinkhorn_terms_op.register_fake(_terms_fake)

    def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        cost_grad = inputs[11]
        _, grad_input, grad_cost, _, _ = output
        ctx.cost_grad = cost_grad
        ctx.save_for_backward(grad_input, grad_cost)

    def _backward(ctx, grad_loss, _gi, _gc, _it, _err):  # type: ignore[no-untyped-def]
        grad_input, grad_cost = ctx.saved_tensors
        d_input, d_cost = _backward_terms(grad_loss, grad_input, grad_cost, ctx.cost_grad)
        return (d_input, None, d_cost) + (None,) * 10

    _sinkhorn_terms_op.register_autograd(_backward, setup_context=_setup_context)


class _SinkhornTermsFunction(torch.autograd.Function):
    """The same operator for torch without ``torch.library.custom_op`` (< 2.4)."""

    @staticmethod
    def forward(ctx, input, target, cost, eps, logits, smoothing, divergence, convention,  # type: ignore[no-untyped-def]
                max_iter, tol, backend, cost_grad, ignore_index):  # fmt: skip
        out = _terms_impl(input, target, cost, eps, logits, smoothing, divergence, convention,
                          max_iter, tol, backend, cost_grad, ignore_index)  # fmt: skip
        ctx.cost_grad = cost_grad
        ctx.save_for_backward(out[1], out[2])
        ctx.mark_non_differentiable(*out[1:])
        return out

    @staticmethod
    def backward(ctx, grad_loss, _gi, _gc, _it, _err):  # type: ignore[no-untyped-def]
        grad_input, grad_cost = ctx.saved_tensors
        d_input, d_cost = _backward_terms(grad_loss, grad_input, grad_cost, ctx.cost_grad)
        return (d_input, None, d_cost) + (None,) * 10


def sinkhorn_terms(
    input: Tensor, target: Tensor, cost: Tensor, *, eps: float, logits: bool = True,
    smoothing: float = 0.0, divergence: bool = False, convention: str = "kl",
    max_iter: int = 1000, tol: Optional[float] = None, backend: str = "auto",
    ignore_index: int = -100, implementation: str = "auto",
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """The operator itself: per-problem ``(loss, grad_input, grad_cost, iterations,
    marginal_error)``, differentiable w.r.t. ``input`` and ``cost`` through ``loss``.

    ``grad_cost`` is (B, K, K) when ``cost.requires_grad``, else (0, K, K). Labels equal to
    ``ignore_index`` give zero loss and gradient. Most users want :func:`sinkhorn_loss`.

    ``implementation``: ``"custom_op"`` (``torch.library``, what ``torch.compile`` and
    ``torch.export`` see), ``"function"`` (a ``torch.autograd.Function``: the same numbers, about
    80 µs less dispatch per call in eager mode), or ``"auto"``: the custom op while compiling or
    tracing (or on non-plain tensors), the Function in plain eager calls, and the Function on torch
    without ``torch.library.custom_op`` (< 2.4).

    Examples
    --------
    >>> import torch, circot
    >>> from circot.torch import sinkhorn_terms
    >>> cost = torch.tensor(circot.cost("affectnet8").values)
    >>> loss, grad, _, iters, err = sinkhorn_terms(torch.zeros(2, 8), torch.tensor([0, 3]),
    ...                                            cost, eps=0.05, smoothing=0.1)
    >>> loss.shape, grad.shape, iters.dtype
    (torch.Size([2]), torch.Size([2, 8]), torch.int32)
    """
    cost_grad = bool(cost.requires_grad and torch.is_grad_enabled())
    args = (input, target, cost, float(eps), bool(logits), float(smoothing), bool(divergence),
            convention, int(max_iter), None if tol is None else float(tol), backend, cost_grad,
            int(ignore_index))  # fmt: skip
    if implementation not in ("auto", "custom_op", "function"):
        raise ValueError(
            f"implementation = {implementation!r}; expected 'auto', 'custom_op' or 'function'"
        )
    if implementation == "custom_op" and not _HAS_CUSTOM_OP:
        raise ValueError("implementation='custom_op' needs torch.library.custom_op (torch >= 2.4)")
    use_op = implementation == "custom_op" or (
        implementation == "auto" and _HAS_CUSTOM_OP and not _plain_eager(input, target, cost)
    )
    if use_op:
        return _sinkhorn_terms_op(*args)
    return _SinkhornTermsFunction.apply(*args)


def _plain_eager(*tensors: Tensor) -> bool:
    """Whether this is an ordinary eager call on ordinary tensors: not under ``torch.compile``
    or export, and no fake, functional or other tensor subclass that needs the registered op."""
    compiling = getattr(torch.compiler, "is_compiling", None)
    if compiling is not None and compiling():
        return False
    return all(type(t) is Tensor or type(t) is nn.Parameter for t in tensors)


# --------------------------------------------------------------------------------------------
# The loss: CrossEntropyLoss's conventions around the operator.


def _cost_tensor(cost: CostArg, device: torch.device) -> Tensor:
    if isinstance(cost, Tensor):
        return cost if cost.device == device else cost.to(device)
    # A copy: preset matrices are read-only NumPy arrays, which torch will not wrap.
    return torch.tensor(np.array(as_cost_array(cost), dtype=np.float64), device=device)


def _check(
    input: Tensor, target: Tensor, cost: Tensor, weight: Optional[Tensor], reduction: str,
    label_smoothing: float, convention: str, backend: str,
) -> None:  # fmt: skip
    """Checks what needs no data (shapes, dtypes, options), so it costs no device sync."""
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"input must be float16, bfloat16, float32 or float64, got {input.dtype}")
    if input.dim() != 2:
        raise ValueError(f"input must be 2-D (B, K), got shape {tuple(input.shape)}")
    b, k = input.shape
    if cost.dim() != 2 or tuple(cost.shape) != (k, k):
        raise ValueError(f"cost has shape {tuple(cost.shape)}, expected ({k}, {k}) for K = {k}")
    if not cost.is_floating_point():
        raise TypeError(f"cost must be a float tensor, got {cost.dtype}")
    if target.is_floating_point():
        if tuple(target.shape) != (b, k):
            raise ValueError(
                f"target (probabilities) has shape {tuple(target.shape)}, expected ({b}, {k})"
            )
    elif target.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        if tuple(target.shape) != (b,):
            raise ValueError(f"target (class indices) has shape {tuple(target.shape)}, expected ({b},)")
    else:
        raise TypeError(f"target must be class indices (integer) or probabilities (float), got {target.dtype}")
    if target.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            "target requires grad, but circot gives no gradient w.r.t. the target "
            "distributions; pass target.detach()"
        )
    if target.device != input.device:
        raise ValueError(f"target is on {target.device} but input is on {input.device}")
    if weight is not None:
        if not isinstance(weight, Tensor) or not weight.is_floating_point():
            raise TypeError("weight must be a float tensor of one weight per class")
        if tuple(weight.shape) != (k,):
            raise ValueError(f"weight has shape {tuple(weight.shape)}, expected ({k},)")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction = {reduction!r}; expected 'none', 'sum' or 'mean'")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing = {label_smoothing} must be in [0, 1]")
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention = {convention!r}; expected 'kl' or 'entropy'")
    if backend not in _BACKENDS:
        raise ValueError(f"backend = {backend!r}; expected 'auto', 'cpu', 'cuda' or 'reference'")


def sinkhorn_loss(
    input: Tensor,
    target: Tensor,
    cost: CostArg = "affectnet8",
    eps: float = 0.05,
    *,
    weight: Optional[Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    probabilities: bool = False,
    divergence: bool = False,
    convention: str = "kl",
    max_iter: int = 1000,
    tol: Optional[float] = None,
    backend: str = "auto",
) -> Tensor:
    """The entropic optimal-transport loss between predictions and targets, with the
    conventions of :func:`torch.nn.functional.cross_entropy`.

    Parameters
    ----------
    input
        (B, K) logits (or probabilities with ``probabilities=True``); float16, bfloat16, float32
        or float64, on the CPU or a CUDA device. Half inputs compute in float32 and the loss is
        returned in float32 (as cross-entropy under autocast).
    target
        (B,) class indices in ``[0, K)`` (integer), or (B, K) class probabilities (float).
    cost
        The ground cost: a preset name (its circumplex cost: ``"affectnet8"``,
        ``"affectnet7"``, ``"affwild2-7"``, ``"affwild2-8"``), a :class:`circot.CostMatrix`, an
        array, or a (K, K) tensor. A tensor that requires grad receives ``∂loss/∂cost``.
    eps
        Entropic regularisation ε, in units of the cost (the presets have ``max C = 1``).
    weight
        (K,) per-class weights. For class indices, sample ``b`` weighs ``weight[target_b]`` and
        the mean divides by the sum of the kept samples' weights; for probabilities it weighs
        ``Σ_k weight_k·target_bk`` and the mean divides by B, as cross-entropy does.
    ignore_index
        Class indices equal to it give zero loss and gradient and leave the mean (a batch with
        every sample ignored has mean 0). Any other index outside ``[0, K)`` is an error on the
        CPU; on a CUDA device it gives a NaN loss for that sample (see the README).
    reduction
        ``"none"`` (per sample, weighted), ``"sum"`` or ``"mean"``.
    label_smoothing
        ``s`` in ``[0, 1]``: the target becomes ``(1 − s)·target + s/K``.
    probabilities
        ``input`` holds probabilities (rows on the simplex) instead of logits.
    divergence
        The debiased Sinkhorn divergence ``OT(a,β) − ½OT(a,a) − ½OT(β,β)`` (zero at a = β;
        non-negative and minimised there only for a symmetric cost).
    convention
        ``"kl"`` (``⟨P,C⟩ + ε·KL(P‖a⊗β)``) or ``"entropy"`` (``⟨P,C⟩ − ε·H(P)``).
    max_iter, tol
        Iteration cap and L1 marginal-error tolerance per problem (``None``: the dtype's
        default).
    backend
        ``"auto"`` (CPU tensors on the CPU, CUDA tensors on the kernels), ``"cpu"``,
        ``"reference"`` (the float64 oracle, CPU tensors) or ``"cuda"``.

    Examples
    --------
    >>> import torch
    >>> from circot.torch import sinkhorn_loss
    >>> logits = torch.tensor([[2.0, 0.1, -1.0, 0.3, 0.0, -0.5, 0.2, 0.0]], requires_grad=True)
    >>> loss = sinkhorn_loss(logits, torch.tensor([1]), "affectnet8", eps=0.05)
    >>> loss.backward()
    >>> bool(loss > 0), logits.grad.shape
    (True, torch.Size([1, 8]))
    """
    cost_t = _cost_tensor(cost, input.device) if isinstance(input, Tensor) else cost
    _check(input, target, cost_t, weight, reduction, label_smoothing, convention, backend)  # type: ignore[arg-type]
    b, k = input.shape
    labels = not target.is_floating_point()
    if labels:
        target_op = target.to(torch.int64)
        smoothing = float(label_smoothing)
        kept = target_op != ignore_index
        if weight is not None:
            sample_weight = weight.to(input.device)[target_op.clamp(0, k - 1)] * kept
        else:
            sample_weight = kept
    else:
        target_op = target.to(input.dtype)
        if label_smoothing > 0.0:
            target_op = target_op * (1.0 - label_smoothing) + label_smoothing / k
        smoothing = 0.0
        sample_weight = None
        if weight is not None:
            sample_weight = (target_op.to(weight.dtype) * weight.to(input.device)).sum(dim=1)
    loss_b = sinkhorn_terms(
        input, target_op, cost_t, eps=eps, logits=not probabilities, smoothing=smoothing,
        divergence=divergence, convention=convention, max_iter=max_iter, tol=tol,
        backend=backend, ignore_index=ignore_index,
    )[0]  # fmt: skip
    if loss_b.dtype in (torch.float16, torch.bfloat16):
        loss_b = loss_b.float()
    if sample_weight is not None:
        loss_b = loss_b * sample_weight.to(loss_b.dtype)
    if reduction == "none":
        return loss_b
    total = loss_b.sum()
    if reduction == "sum":
        return total
    if labels:
        assert sample_weight is not None
        denominator = sample_weight.to(loss_b.dtype).sum()
        # All ignored: 0, not 0/0 (and a finite gradient through the division).
        return total / denominator.clamp_min(torch.finfo(loss_b.dtype).tiny)
    return total / b


class SinkhornLoss(nn.Module):
    """The entropic optimal-transport loss as a module, shaped like ``nn.CrossEntropyLoss``:
    configure once, call ``criterion(input, target)`` per batch. See :func:`sinkhorn_loss` for
    every argument.

    A preset name or array ``cost`` is kept as a float64 buffer (it follows ``.to(device)``);
    an ``nn.Parameter`` cost is registered as a parameter and learned.

    Examples
    --------
    >>> import torch
    >>> from circot.torch import SinkhornLoss
    >>> criterion = SinkhornLoss("affwild2-8", eps=0.05, ignore_index=-1)
    >>> logits = torch.randn(4, 8, requires_grad=True)
    >>> loss = criterion(logits, torch.tensor([0, 7, -1, 3]))
    >>> loss.backward()
    >>> logits.grad[2].abs().sum().item()  # the ignored frame
    0.0
    """

    cost: Tensor
    weight: Optional[Tensor]

    def __init__(
        self,
        cost: CostArg = "affectnet8",
        eps: float = 0.05,
        *,
        weight: Optional[Tensor] = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        probabilities: bool = False,
        divergence: bool = False,
        convention: str = "kl",
        max_iter: int = 1000,
        tol: Optional[float] = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if isinstance(cost, nn.Parameter):
            self.cost = cost
        elif isinstance(cost, Tensor):
            self.register_buffer("cost", cost)
        else:
            self.register_buffer("cost", _cost_tensor(cost, torch.device("cpu")))
        self.register_buffer("weight", weight)
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction = {reduction!r}; expected 'none', 'sum' or 'mean'")
        if not eps > 0.0:
            raise ValueError(f"eps = {eps} must be finite and > 0")
        self.eps = float(eps)
        self.ignore_index = int(ignore_index)
        self.reduction = reduction
        self.label_smoothing = float(label_smoothing)
        self.probabilities = bool(probabilities)
        self.divergence = bool(divergence)
        self.convention = convention
        self.max_iter = int(max_iter)
        self.tol = tol
        self.backend = backend

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of ``input`` (B, K) against ``target`` (B,) or (B, K)."""
        return sinkhorn_loss(
            input, target, self.cost, self.eps, weight=self.weight,
            ignore_index=self.ignore_index, reduction=self.reduction,
            label_smoothing=self.label_smoothing, probabilities=self.probabilities,
            divergence=self.divergence, convention=self.convention, max_iter=self.max_iter,
            tol=self.tol, backend=self.backend,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"K={self.cost.shape[0]}, eps={self.eps}, reduction={self.reduction!r}, "
            f"label_smoothing={self.label_smoothing}, divergence={self.divergence}"
        )


def cuda_status() -> str:
    """Whether CUDA tensors can run on circot's kernels here, and if not, why."""
    return _native.cuda_status()
