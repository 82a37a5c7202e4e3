"""The PyTorch loss on CUDA tensors against its CPU result, under torch.compile and inside a
captured CUDA graph. Part of the one-shot hardware check (tools/gpu-check/run.sh); prints one
line per check and a `summary:` line. Exit 0: all passed; 1: a check failed; 77: no usable GPU."""

from __future__ import annotations

import sys
import time
import traceback

import torch

import circot
from circot.torch import SinkhornLoss, cuda_status, sinkhorn_loss

RESULTS: list = []


def check(name):
    def wrap(fn):
        started = time.perf_counter()
        try:
            note = fn() or ""
            RESULTS.append((name, True))
            print(f"ok   {name} ({time.perf_counter() - started:.1f} s) {note}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is a row
            RESULTS.append((name, False))
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=3)
        return fn

    return wrap


def batch(b, k, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = (2.0 * torch.randn(b, k, generator=gen)).to(dtype)
    y = torch.randint(0, k, (b,), generator=gen)
    y[3::17] = -100
    p = torch.softmax(1.5 * torch.randn(b, k, generator=gen), dim=1).to(dtype)
    return z, y, p


def tol_of(dtype):
    return 64 * float(torch.finfo(dtype).eps)


def compare(dtype, b, k, target_kind, smoothing):
    z, y, p = batch(b, k, dtype)
    cost = "affectnet8" if k == 8 else "affectnet7"
    target = y if target_kind == "labels" else p
    zc = z.clone().requires_grad_(True)
    cpu = sinkhorn_loss(zc, target, cost, 0.05, label_smoothing=smoothing, reduction="none")
    cpu.sum().backward()
    zg = z.cuda().requires_grad_(True)
    gpu = sinkhorn_loss(zg, target.cuda(), cost, 0.05, label_smoothing=smoothing, reduction="none")
    gpu.sum().backward()
    torch.cuda.synchronize()
    atol = tol_of(dtype)
    torch.testing.assert_close(gpu.detach().cpu(), cpu.detach(), atol=atol, rtol=0)
    torch.testing.assert_close(zg.grad.cpu().float(), zc.grad.float(), atol=4 * atol, rtol=0)
    return f"max|Δloss| {float((gpu.detach().cpu() - cpu.detach()).abs().max()):.2e}"


def main() -> int:
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), circot {getattr(circot, '__version__', '?')}, "
          f"cuda_status: {cuda_status()}")  # fmt: skip
    if not torch.cuda.is_available() or cuda_status() != "available":
        print(f"summary: SKIPPED: no usable GPU ({cuda_status()})")
        return 77
    print(f"device: {torch.cuda.get_device_name(0)}")

    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for k in (7, 8):
            for kind, s in (("labels", 0.0), ("labels", 0.1), ("distributions", 0.0)):
                name = f"CUDA = CPU: {str(dtype)[6:]} K={k} B=1025 {kind} smoothing={s}"
                check(name)(lambda dtype=dtype, k=k, kind=kind, s=s: compare(dtype, 1025, k, kind, s))

    @check("torch.compile(SinkhornLoss) on CUDA = eager (value and gradient)")
    def _compile():
        crit = SinkhornLoss("affectnet8", eps=0.05, label_smoothing=0.1).cuda()
        z, y, _ = batch(4096, 8, torch.float32, seed=1)
        z, y = z.cuda(), y.cuda()
        z1 = z.clone().requires_grad_(True)
        eager = crit(z1, y)
        eager.backward()
        compiled = torch.compile(crit, fullgraph=True)
        z2 = z.clone().requires_grad_(True)
        out = compiled(z2, y)
        out.backward()
        torch.testing.assert_close(out, eager, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(z2.grad, z1.grad, atol=1e-6, rtol=1e-6)

    @check("captured CUDA graph (forward and backward) replays = eager")
    def _graph():
        crit = SinkhornLoss("affectnet8", eps=0.05, label_smoothing=0.1).cuda()
        z0, y0, _ = batch(4096, 8, torch.float32, seed=2)
        z1, y1, _ = batch(4096, 8, torch.float32, seed=3)
        static_z = z0.cuda().requires_grad_(True)
        static_y = y0.cuda()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                static_z.grad = None
                crit(static_z, static_y).backward()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        static_z.grad = None
        with torch.cuda.graph(graph):
            static_loss = crit(static_z, static_y)
            static_loss.backward()
        with torch.no_grad():
            static_z.copy_(z1.cuda())
        static_y.copy_(y1.cuda())
        graph.replay()
        torch.cuda.synchronize()
        ze = z1.cuda().requires_grad_(True)
        eager = crit(ze, y1.cuda())
        eager.backward()
        torch.testing.assert_close(static_loss.detach(), eager.detach(), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(static_z.grad, ze.grad, atol=1e-6, rtol=1e-6)

    @check("invalid label on the device: NaN for its sample only")
    def _invalid():
        z = torch.randn(4, 8, device="cuda")
        loss = sinkhorn_loss(z, torch.tensor([0, 9, -100, 3], device="cuda"), "affectnet8", 0.05,
                             reduction="none")  # fmt: skip
        torch.cuda.synchronize()
        nan = torch.isnan(loss).cpu().tolist()
        assert nan == [False, True, False, False], nan

    @check("forward+backward time, B=65536 K=8 f32 (CUDA events, median of 20)")
    def _time():
        crit = SinkhornLoss("affectnet8", eps=0.05, label_smoothing=0.1).cuda()
        z, y, _ = batch(65536, 8, torch.float32, seed=4)
        z, y = z.cuda().requires_grad_(True), y.cuda()
        for _ in range(3):
            crit(z, y).backward()
        times = []
        for _ in range(20):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            crit(z, y).backward()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        times.sort()
        return f"median {times[10] * 1e3:.0f} µs"

    passed = sum(ok for _, ok in RESULTS)
    print(f"summary: {passed} of {len(RESULTS)} torch checks passed")
    return 0 if passed == len(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
