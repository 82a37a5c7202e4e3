"""Benchmark (not a test): one training step of ``circot.torch.SinkhornLoss`` on CPU tensors
against what a user writes today.

    python python/benchmarks/bench_torch.py                 # B = 32, 256, 4096
    python python/benchmarks/bench_torch.py --quick         # B = 32, 256, fewer calls (smoke)
    python python/benchmarks/bench_torch.py --json out.json

A step is forward + backward of the mean loss of (B, K = 8) float32 logits against class labels
(label smoothing 0.1), AffectNet-8 circumplex cost, ε = 0.05, circot's default tolerance for
float32. Measured, in one process, per batch size B:

* ``cross_entropy``: ``F.cross_entropy(..., label_smoothing=0.1)``, the floor;
* ``circot SinkhornLoss``: ``criterion(logits, labels).backward()``;
* ``circot SinkhornLoss (forward only)``;
* ``circot sinkhorn_terms``, ``autograd.Function`` and ``torch.library`` custom-op paths
  (``implementation="function"`` / ``"custom_op"``): eager calls use the first, torch.compile
  the second; the difference is the custom op's dispatch cost;
* ``circot _native.terms``: the extension called directly on NumPy arrays (solve + gradients,
  no tensors): the difference to the full step is the binding's per-call cost (tensor checks,
  NumPy views, output tensors, the custom op's dispatch and autograd, the reduction);
* ``plain-torch Sinkhorn``: a batched log-domain Sinkhorn written with ``torch.logsumexp``, the
  same ε and iteration (f-update then g-update from g = 0), run until every problem's L1
  row-marginal error ``Σ_i |Σ_j P_ij − a_i|`` is within the same tolerance (checked every
  ``--check-every`` iterations), differentiated by autograd through the iterations;
* POT (``ot``) and ``geomloss`` when importable (otherwise a note says they were skipped).

Before timing, circot and the plain-torch Sinkhorn must agree on the per-problem losses within
a bound derived from the stopping tolerance (the script exits non-zero otherwise), so the
comparison is like for like. Reports median and p90 µs per step over many calls after a
warm-up, as a Markdown table, with each method's ratio to the plain-torch Sinkhorn.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import circot
from circot import _native
from circot.torch import SinkhornLoss, sinkhorn_terms

PRESET = "affectnet8"
K = 8
EPS = 0.05
SMOOTHING = 0.1
MAX_ITER = 1000


# ---------------------------------------------------------------------------------------------
# What a user writes today: batched log-domain Sinkhorn in plain PyTorch.


def torch_sinkhorn(
    logits: Tensor,
    labels: Tensor,
    cost: Tensor,
    *,
    eps: float,
    smoothing: float,
    tol: float,
    max_iter: int = MAX_ITER,
    check_every: int = 1,
) -> Tuple[Tensor, int]:
    """Per-problem ``OT_ε(softmax(logits), β)`` in the KL convention, ``β = (1 − s)·e_y + s/K``.

    The same iteration as circot: ``f_i ← −ε·LSE_j(log β_j + (g_j − C_ij)/ε)``, then
    ``g_j ← −ε·LSE_i(log a_i + (f_i − C_ij)/ε)``, from ``g = 0``; stop when every problem's L1
    row-marginal error after the g-update is ``<= tol``; the loss is ``⟨f,a⟩ + ⟨g,β⟩``. The row
    sums after a g-update are ``a_i·exp((f_i − f'_i)/ε)`` with ``f'`` the next f-update, so the
    check costs no extra log-sum-exp. Autograd differentiates through every iteration.

    Returns the (B,) losses and the number of iterations run (the slowest problem's).
    """
    b, k = logits.shape
    log_a = F.log_softmax(logits, dim=1)
    a = log_a.exp()
    beta = F.one_hot(labels, k).to(logits.dtype) * (1.0 - smoothing) + smoothing / k
    log_b = beta.log()
    c_eps = (cost / eps).to(logits.dtype)  # (K, K)

    def f_update(g: Tensor) -> Tensor:  # (B, K_i): LSE over j
        return -eps * torch.logsumexp(log_b.unsqueeze(1) + g.unsqueeze(1) / eps - c_eps, dim=2)

    def g_update(f: Tensor) -> Tensor:  # (B, K_j): LSE over i
        return -eps * torch.logsumexp(log_a.unsqueeze(2) + f.unsqueeze(2) / eps - c_eps, dim=1)

    f = f_update(torch.zeros_like(logits))
    iterations = 0
    for iterations in range(1, max_iter + 1):
        g = g_update(f)
        f_next = f_update(g)
        if iterations % check_every == 0 or iterations == max_iter:
            with torch.no_grad():
                err = (a * torch.expm1((f - f_next) / eps)).abs().sum(dim=1).max()
            if err.item() <= tol:
                break
        f = f_next
    return (a * f).sum(dim=1) + (beta * g).sum(dim=1), iterations


# ---------------------------------------------------------------------------------------------
# Timing.


def _summary(samples: List[float]) -> Dict[str, float]:
    s = np.asarray(samples)
    return {
        "median_us": float(np.median(s)),
        "p90_us": float(np.percentile(s, 90)),
        "min_us": float(s.min()),
        "calls": int(s.size),
    }


def time_interleaved(
    steps: Sequence[Tuple[str, Callable[[], Any]]],
    *,
    warmup: int,
    min_calls: int,
    max_calls: int,
    budget_s: float,
) -> Dict[str, Dict[str, float]]:
    """Median and p90 µs per call of each step, after ``warmup`` calls of each, calling them in
    rounds (one call of each per round, so that a change in the machine's load hits every method
    alike) until ``budget_s`` has passed (at least ``min_calls``, at most ``max_calls`` rounds)."""
    for _ in range(warmup):
        for _, step in steps:
            step()
    samples: Dict[str, List[float]] = {name: [] for name, _ in steps}
    deadline = time.perf_counter() + budget_s
    rounds = 0
    while rounds < max_calls and (rounds < min_calls or time.perf_counter() < deadline):
        for name, step in steps:
            t0 = time.perf_counter_ns()
            step()
            samples[name].append((time.perf_counter_ns() - t0) / 1e3)
        rounds += 1
    return {name: _summary(v) for name, v in samples.items()}


# ---------------------------------------------------------------------------------------------
# The benchmark.


def cost_matrix() -> np.ndarray:
    """The AffectNet-8 circumplex cost (K × K float64, max 1)."""
    return np.array(circot.cost(PRESET).values, dtype=np.float64)


def agreement(
    logits: Tensor, labels: Tensor, cost_np: np.ndarray, tol: float, check_every: int
) -> Dict[str, float]:
    """Per-problem losses and gradients of circot vs the plain-torch Sinkhorn; raises
    ``AssertionError`` when the losses differ by more than the tolerance allows.

    Bound: both stop with L1 row-marginal error ``<= tol`` after an exact g-update, and such a
    dual point is within ``tol·max C`` of the optimum from below (a marginal error of ``e``
    moves at most ``e`` of mass, each unit at a cost difference of at most ``max C``), so two
    such points differ by at most ``2·tol·max C``; plus float32 rounding of the sums.
    """
    criterion = SinkhornLoss(torch.as_tensor(cost_np), eps=EPS, label_smoothing=SMOOTHING,
                             reduction="none")  # fmt: skip
    z1 = logits.detach().clone().requires_grad_(True)
    ours = criterion(z1, labels)
    ours.mean().backward()
    z2 = logits.detach().clone().requires_grad_(True)
    theirs, iters = torch_sinkhorn(z2, labels, torch.as_tensor(cost_np), eps=EPS,
                                   smoothing=SMOOTHING, tol=tol, check_every=check_every)  # fmt: skip
    theirs.mean().backward()
    loss_diff = (ours.detach().double() - theirs.detach().double()).abs()
    scale = torch.maximum(ours.detach().double().abs(), torch.ones(()))
    bound = 2.0 * tol * float(cost_np.max()) + 64.0 * float(np.finfo(np.float32).eps) * scale
    worst = float((loss_diff - bound).max())
    assert worst <= 0.0, (
        f"circot and the plain-torch Sinkhorn disagree: max |Δloss| = {float(loss_diff.max()):.3g}"
        f" exceeds the tolerance-derived bound {float(bound.max()):.3g}"
    )
    assert z1.grad is not None and z2.grad is not None
    return {
        "max_abs_loss_diff": float(loss_diff.max()),
        "loss_bound": float(bound.max()),
        "mean_loss": float(ours.detach().mean()),
        "max_abs_grad_diff": float((z1.grad - z2.grad).abs().max()),
        "max_abs_grad": float(z1.grad.abs().max()),
        "torch_iterations": float(iters),
    }


def bench_batch(
    b: int, cost_np: np.ndarray, *, quick: bool, check_every: int, seed: int
) -> Tuple[Dict[str, Dict[str, float]], Dict[str, Any]]:
    """Times every method at batch size ``b``; returns per-method timings and extra facts."""
    gen = torch.Generator().manual_seed(seed + b)
    # Logits of a partly trained classifier: spread ~2, mostly but not always right.
    labels = torch.randint(0, K, (b,), generator=gen)
    logits0 = 2.0 * torch.randn(b, K, generator=gen) + 2.0 * F.one_hot(labels, K)
    cost_t = torch.as_tensor(cost_np)
    criterion = SinkhornLoss(cost_t, eps=EPS, label_smoothing=SMOOTHING)

    # The tolerance circot uses for float32 (its default), shared with the plain-torch loop.
    z_np = logits0.numpy().astype(np.float32)
    y_np = labels.numpy()
    native_kwargs: Dict[str, Any] = dict(
        eps=EPS, logits=True, smoothing=SMOOTHING, divergence=False, convention="kl",
        max_iter=MAX_ITER, tol=None, backend="cpu", cost_grad=False, ignore_index=-100,
        bf16_bits=False,
    )  # fmt: skip
    probe = _native.terms(cost_np, z_np, y_np, **native_kwargs)
    tol = float(probe["tol"])
    facts: Dict[str, Any] = {
        "tol": tol,
        "circot_iterations_mean": float(probe["iterations"].astype(np.float64).mean()),
        "circot_iterations_max": int(probe["iterations"].max()),
    }
    facts.update(agreement(logits0, labels, cost_np, tol, check_every))

    z = logits0.clone().requires_grad_(True)

    def ce_step() -> None:
        z.grad = None
        F.cross_entropy(z, labels, label_smoothing=SMOOTHING).backward()

    def circot_step() -> None:
        z.grad = None
        criterion(z, labels).backward()

    def circot_forward() -> None:
        criterion(z, labels)

    def native_step() -> None:
        _native.terms(cost_np, z_np, y_np, **native_kwargs)

    def torch_step() -> None:
        z.grad = None
        loss, _ = torch_sinkhorn(z, labels, cost_t, eps=EPS, smoothing=SMOOTHING, tol=tol,
                                 check_every=check_every)  # fmt: skip
        loss.mean().backward()

    def function_step() -> None:
        # The same operator as a torch.autograd.Function instead of torch.library.custom_op
        # (what torch < 2.4 gets): isolates the custom op's dispatch cost.
        z.grad = None
        loss_b = sinkhorn_terms(z, labels, cost_t, eps=EPS, smoothing=SMOOTHING,
                                implementation="function")[0]  # fmt: skip
        loss_b.mean().backward()

    def custom_op_step() -> None:
        # The registered torch.library op, what torch.compile sees (eager calls use the Function).
        z.grad = None
        loss_b = sinkhorn_terms(z, labels, cost_t, eps=EPS, smoothing=SMOOTHING,
                                implementation="custom_op")[0]  # fmt: skip
        loss_b.mean().backward()

    fast: List[Tuple[str, Callable[[], None]]] = [
        ("cross_entropy (floor)", ce_step),
        ("circot SinkhornLoss", circot_step),
        ("circot SinkhornLoss (forward only)", circot_forward),
        ("circot sinkhorn_terms, autograd.Function path", function_step),
        ("circot sinkhorn_terms, torch.library custom-op path", custom_op_step),
        ("circot _native.terms (NumPy, no tensors)", native_step),
    ]
    slow: List[Tuple[str, Callable[[], None]]] = [("plain-torch Sinkhorn (autograd)", torch_step)]
    pot = pot_step(z, labels, cost_t, tol)
    if pot is not None:
        slow.append(("POT ot.sinkhorn2 (per problem, log)", pot))

    timings = time_interleaved(
        fast, warmup=3 if quick else 50, min_calls=10 if quick else 200,
        max_calls=20000, budget_s=0.3 if quick else 3.0,
    )  # fmt: skip
    # The plain-torch loop runs until its slowest problem converges (up to 1000 iterations, tens
    # of seconds at B = 4096): fewer calls; the agreement check above was its warm-up.
    timings.update(
        time_interleaved(
            slow, warmup=0, min_calls=2 if quick else 5, max_calls=200,
            budget_s=0.5 if quick else 10.0,
        )  # fmt: skip
    )
    return timings, facts


def pot_step(z: Tensor, labels: Tensor, cost: Tensor, tol: float) -> Optional[Callable[[], None]]:
    """A step with POT when it is importable: ``ot.sinkhorn2`` (log domain) per problem, the loop
    a POT user writes (POT has no batch of different source marginals with one cost). Its loss
    is ``⟨P, C⟩`` and its stopping rule POT's own, so it is timed but not checked for agreement."""
    try:
        import ot  # type: ignore[import-not-found]
    except ImportError:
        return None
    beta_all = F.one_hot(labels, K).to(torch.float64) * (1.0 - SMOOTHING) + SMOOTHING / K
    c = cost.to(torch.float64)

    def step() -> None:
        z.grad = None
        a_all = torch.softmax(z.double(), dim=1)
        losses = [
            ot.sinkhorn2(a_all[i], beta_all[i], c, EPS, method="sinkhorn_log", stopThr=tol,
                         numItermax=MAX_ITER)  # fmt: skip
            for i in range(a_all.shape[0])
        ]
        torch.stack(losses).mean().backward()

    return step


def skipped_notes() -> List[str]:
    """Optional comparisons that could not run, and why."""
    notes = []
    try:
        import ot  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        notes.append("POT (`ot`) is not importable: skipped (not installed by this script)")
    try:
        import geomloss  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        notes.append("geomloss is not importable: skipped (not installed by this script)")
    else:
        notes.append(
            "geomloss is importable but not timed: its Sinkhorn is a point-cloud solver with a "
            "fixed ε-scaling schedule, not a tolerance-matched solve on a given (K, K) cost"
        )
    return notes


def markdown(
    results: Dict[int, Dict[str, Dict[str, float]]], reference: str
) -> str:
    """The table: µs per step (median, p90) and time ÷ the plain-torch Sinkhorn's, per B."""
    batches = sorted(results)
    head = "| method | " + " | ".join(f"B={b} median µs | p90 µs | ÷ torch" for b in batches) + " |"
    rule = "|---|" + "---|---|---|" * len(batches)
    lines = [head, rule]
    for name in results[batches[0]]:
        cells = []
        for b in batches:
            t = results[b][name]
            ratio = t["median_us"] / results[b][reference]["median_us"]
            cells.append(f"{t['median_us']:.1f} | {t['p90_us']:.1f} | {ratio:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    calls = ", ".join(
        f"B={b}: {min(t['calls'] for t in results[b].values())}-"
        f"{max(t['calls'] for t in results[b].values())}" for b in batches
    )
    lines.append(f"\n(calls per method after warm-up: {calls}; the fewest are the plain-torch loop's)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few calls per method (smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--batches", default=None,
                        help="comma-separated batch sizes (default 32,256,4096; --quick: 32,256)")
    parser.add_argument("--check-every", type=int, default=1,
                        help="plain-torch Sinkhorn: check the marginal error every N iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    spec = args.batches or ("32,256" if args.quick else "32,256,4096")
    batches = [int(b) for b in spec.split(",") if b.strip()]
    if not batches or min(batches) < 1 or args.check_every < 1:
        parser.error("--batches must list positive sizes and --check-every must be >= 1")

    cost_np = cost_matrix()
    print(
        f"circot {circot.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"python {platform.python_version()}; {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"K = {K} ({PRESET} circumplex cost), ε = {EPS}, label smoothing {SMOOTHING}, float32 "
        f"logits, mean reduction; plain-torch checks every {args.check_every} iteration(s)"
        + ("; --quick" if args.quick else "")
    )
    notes = skipped_notes()
    for note in notes:
        print(f"note: {note}")

    reference = "plain-torch Sinkhorn (autograd)"
    results: Dict[int, Dict[str, Dict[str, float]]] = {}
    facts: Dict[int, Dict[str, Any]] = {}
    for b in batches:
        results[b], facts[b] = bench_batch(b, cost_np, quick=args.quick,
                                           check_every=args.check_every, seed=args.seed)  # fmt: skip
        f = facts[b]
        print(
            f"B={b}: agree (max |Δloss| {f['max_abs_loss_diff']:.2e} <= bound "
            f"{f['loss_bound']:.2e}; max |Δgrad| {f['max_abs_grad_diff']:.2e} of max |grad| "
            f"{f['max_abs_grad']:.2e}); tol {f['tol']:.3g}; iterations circot mean "
            f"{f['circot_iterations_mean']:.1f} max {f['circot_iterations_max']}, plain-torch "
            f"{int(f['torch_iterations'])}"
        )

    print()
    print(markdown(results, reference))
    print()
    print("Binding overhead (full SinkhornLoss forward+backward − _native.terms on NumPy), median:")
    overhead: Dict[int, Dict[str, float]] = {}
    for b in batches:
        full = results[b]["circot SinkhornLoss"]["median_us"]
        native = results[b]["circot _native.terms (NumPy, no tensors)"]["median_us"]
        floor = results[b]["cross_entropy (floor)"]["median_us"]
        overhead[b] = {"full_us": full, "native_us": native, "overhead_us": full - native,
                       "overhead_fraction": (full - native) / full}  # fmt: skip
        print(
            f"- B={b}: {full:.1f} µs − {native:.1f} µs = {full - native:.1f} µs "
            f"({100.0 * (full - native) / full:.0f}% of the step); cross-entropy {floor:.1f} µs"
        )

    if args.json:
        payload = {
            "config": {
                "k": K, "preset": PRESET, "eps": EPS, "label_smoothing": SMOOTHING,
                "max_iter": MAX_ITER, "check_every": args.check_every, "quick": args.quick,
                "seed": args.seed, "dtype": "float32", "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "circot": circot.__version__,
                "torch": torch.__version__, "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "reference": reference,
            "results": [
                {"batch": b, "method": name, **t,
                 "ratio_to_reference": t["median_us"] / results[b][reference]["median_us"]}
                for b in batches for name, t in results[b].items()
            ],
            "agreement": {str(b): facts[b] for b in batches},
            "binding_overhead": {str(b): overhead[b] for b in batches},
            "notes": notes,
        }  # fmt: skip
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0 if all(math.isfinite(t["median_us"]) for r in results.values() for t in r.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
