"""Shared fixtures: the float64 reference vectors (tests/data/cases.json, copied from
shared/refs) and the machine epsilons tolerances are derived from."""

from __future__ import annotations

import json
import pathlib
from typing import Any, Dict, List

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

EPS_MACH = {
    np.dtype(np.float64): float(np.finfo(np.float64).eps),
    np.dtype(np.float32): float(np.finfo(np.float32).eps),
    np.dtype(np.float16): float(np.finfo(np.float16).eps),
}


@pytest.fixture(scope="session")
def cases() -> List[Dict[str, Any]]:
    """The 30 reference problems, each with inputs and converged float64 outputs."""
    data = json.loads((REPO / "tests" / "data" / "cases.json").read_text())
    return data["cases"]


def circle_cost(k: int) -> np.ndarray:
    """An asymmetric-free but non-trivial cost: chord distances of k points on a circle."""
    t = 2 * np.pi * np.arange(k) / k
    p = np.stack([np.cos(t), np.sin(t)], axis=1)
    return np.linalg.norm(p[:, None, :] - p[None, :, :], axis=2)


def asymmetric_cost(k: int, seed: int = 0) -> np.ndarray:
    """A seeded asymmetric cost with a zero diagonal (asymmetry exposes transposes)."""
    c = np.random.default_rng(seed).uniform(0.1, 1.0, size=(k, k))
    np.fill_diagonal(c, 0.0)
    return c
