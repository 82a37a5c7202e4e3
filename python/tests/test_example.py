"""The Python example (examples/python/train.py) and the benchmark script
(python/benchmarks/bench_torch.py) run and print what they should; no timing assertions."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python" / "train.py"
BENCH = ROOT / "python" / "benchmarks" / "bench_torch.py"


def run(script: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Runs ``script`` with this interpreter from a neutral folder (so ``import circot`` is the
    installed package), failing with its output when it exits non-zero."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(script), *args], cwd=str(Path(__file__).parent), env=env,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"{script.name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def epoch_rows(out: str, arm: str) -> List[List[float]]:
    """The (epoch, CE, OT, total) rows printed under ``[arm]``."""
    section = out.split(f"[{arm}]", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in section.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0].isdigit():
            rows.append([float(f) for f in fields])
    return rows


def test_train_example_prints_both_terms_falling_and_metrics() -> None:
    proc = run(EXAMPLE, "--epochs", "4", "--lam", "2", "--seed", "1", timeout=300)
    out = proc.stdout
    for arm in ("baseline", "CE+OT"):
        rows = epoch_rows(out, arm)
        assert [int(r[0]) for r in rows] == [1, 2, 3, 4], out
        assert all(math.isfinite(v) for r in rows for v in r[1:]), out
        ce = [r[1] for r in rows]
        ot = [r[2] for r in rows]
        assert ce[-1] < ce[0] and ot[-1] < ot[0], f"{arm}: terms did not fall:\n{out}"
        assert all(v > 0.0 for v in ot), out
    # The held-out table: one row per arm, four finite metrics in range.
    table = [line for line in out.splitlines() if line.startswith("| CE")]
    assert len(table) == 2, out
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        macro_f1, accuracy, mean_accuracy, distance, swaps = (float(c) for c in cells[1:])
        assert 0.0 < macro_f1 <= 1.0 and 0.0 < accuracy <= 1.0 and 0.0 < mean_accuracy <= 1.0
        assert 0.0 <= distance <= 1.0 and 0.0 <= swaps <= 1.0
        assert accuracy > 1.0 / 8, "no better than chance"
    assert "macro-F1" in out and "affective error distance" in out


def test_train_example_rejects_bad_flags() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--epochs", "0"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "--epochs" in proc.stderr


def test_bench_quick_prints_the_table(tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    proc = run(BENCH, "--quick", "--json", str(json_path), timeout=600)
    out = proc.stdout
    assert "POT (`ot`) is not importable" in out or "POT" in out
    header = next(line for line in out.splitlines() if line.startswith("| method |"))
    assert "B=32 median µs" in header and "B=256 median µs" in header
    for name in ("cross_entropy (floor)", "circot SinkhornLoss", "circot _native.terms",
                 "plain-torch Sinkhorn (autograd)"):  # fmt: skip
        row = next(line for line in out.splitlines() if line.startswith(f"| {name}"))
        numbers = re.findall(r"[-+]?\d+\.\d+", row)
        assert len(numbers) == 6 and all(math.isfinite(float(n)) for n in numbers), row
    assert re.search(r"B=32: agree \(max \|Δloss\|", out), out
    assert "Binding overhead" in out
    import json

    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert {r["batch"] for r in payload["results"]} == {32, 256}
    assert payload["config"]["quick"] is True
