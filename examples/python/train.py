"""Cross-entropy + λ·OT on a toy facial-expression-recognition task, against cross-entropy alone.

    python examples/python/train.py                     # 12 epochs, λ = 2, seed 0
    python examples/python/train.py --epochs 30 --lam 4 --seed 3

What it does
------------
1. Makes a synthetic AffectNet-8 data set: each "face" is a 32-dimensional feature vector
   generated from a point on Russell's valence-arousal (VA) circumplex. The class means sit at
   the AffectNet per-class VA means, so circumplex neighbours are confusable, above all
   Anger–Contempt (0.087 apart in VA) and Surprise–Fear. The training classes are imbalanced
   like AffectNet's (Happy and Neutral common, Contempt and Disgust rare); the held-out set is
   balanced, like AffectNet's validation set.
2. Trains the same small MLP twice from the same initialisation and batch order:
   * baseline: ``CrossEntropyLoss(label_smoothing=0.1)``;
   * OT arm: the same cross-entropy + ``λ · SinkhornLoss("affectnet8", eps=0.05,
     label_smoothing=0.1)``, the circumplex optimal-transport term, which prices a confusion by
     the VA distance between the classes (confusing Anger with Contempt is cheap, with Happy
     dear).
   Both loss terms are printed per epoch for both arms (the baseline only monitors its OT term).
3. Evaluates both on the held-out set with ``circot.metrics``: macro-F1, accuracy, mean
   (balanced) accuracy and the affective error distance (the mean circumplex cost ``C[y, ŷ]``
   over the misclassified samples: lower means the errors fall nearer the truth in VA).

Runs on the CPU in a few seconds. One seed is an anecdote: a claim about the OT term needs
paired seeds (see ``circot.stats``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

import circot
from circot.torch import SinkhornLoss

PRESET = "affectnet8"
CLASSES: Tuple[str, ...] = (
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
)  # fmt: skip

# AffectNet per-class (valence, arousal) means, from the official validation annotations: the
# positions behind circot's "affectnet8" circumplex cost (see ../shared/domain/affect.md).
VA_MEANS = np.array(
    [
        [-0.0247, -0.0185],  # Neutral
        [0.6720, 0.0808],  # Happy
        [-0.6281, -0.2670],  # Sad
        [0.1831, 0.7005],  # Surprise
        [-0.1174, 0.7600],  # Fear
        [-0.6843, 0.4460],  # Disgust
        [-0.4259, 0.5537],  # Anger
        [-0.5103, 0.5761],  # Contempt
    ]
)

# AffectNet's training-set class counts (thousands), tempered by a square root so that the rare
# classes still have a few hundred samples here.
AFFECTNET_TRAIN_COUNTS = np.array([74.9, 134.4, 25.5, 14.1, 6.4, 3.8, 24.9, 3.8])

FEATURES = 32
VA_SPREAD = 0.15  # per-sample VA jitter around the class mean (the expression's intensity, etc.)
NOISE = 1.0  # isotropic feature noise (identity, pose, lighting ...)


# ---------------------------------------------------------------------------------------------
# Data.


def make_data(
    rng: np.random.Generator, n_train: int, n_test_per_class: int
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Synthetic (features, labels) for training (imbalanced) and testing (balanced).

    A sample of class ``c`` is a VA point ``va ~ N(VA_MEANS[c], VA_SPREAD²)`` pushed through a
    fixed random 2 → 32 embedding with a tanh (so the classes are not linearly separable in the
    raw features), plus a class-specific offset in a few extra directions that the nearest
    circumplex neighbours barely differ in, plus isotropic noise.
    """
    embed = rng.normal(size=(2, FEATURES)) * 2.0
    bias = rng.normal(size=FEATURES) * 0.5
    # A weak non-VA signature per class (think action units): it lets a model separate the
    # degenerate pairs a little, without making the task easy.
    signature = rng.normal(size=(len(CLASSES), FEATURES)) * 0.25

    def sample(labels: np.ndarray) -> np.ndarray:
        va = VA_MEANS[labels] + rng.normal(scale=VA_SPREAD, size=(labels.size, 2))
        x = np.tanh(va @ embed + bias) + signature[labels]
        return x + rng.normal(scale=NOISE, size=x.shape)

    prior = np.sqrt(AFFECTNET_TRAIN_COUNTS)
    prior = prior / prior.sum()
    y_train = rng.choice(len(CLASSES), size=n_train, p=prior)
    y_test = np.repeat(np.arange(len(CLASSES)), n_test_per_class)
    x_train, x_test = sample(y_train), sample(y_test)
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test)


# ---------------------------------------------------------------------------------------------
# Model and training.


def make_model() -> nn.Module:
    """A small MLP head, as would sit on top of a frozen face backbone."""
    return nn.Sequential(
        nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, len(CLASSES)),
    )  # fmt: skip


def train(
    name: str,
    x: Tensor,
    y: Tensor,
    *,
    lam: float,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> Tuple[nn.Module, List[Tuple[float, float]]]:
    """Trains one arm; ``lam = 0`` is the cross-entropy baseline. Returns the model and the
    per-epoch mean (cross-entropy, OT) terms."""
    torch.manual_seed(seed)  # same initialisation and batch order in both arms
    model = make_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    cross_entropy = nn.CrossEntropyLoss(label_smoothing=0.1)
    # The circumplex OT term: ε in units of the cost (the preset's max cost is 1), the same label
    # smoothing as the cross-entropy (a one-hot target would make the OT term a plain expected
    # cost; smoothing makes it a genuine transport problem).
    ot = SinkhornLoss(PRESET, eps=0.05, label_smoothing=0.1)

    history: List[Tuple[float, float]] = []
    print(f"\n[{name}] loss = CE + {lam:g}·OT")
    print(f"{'epoch':>5}  {'CE':>8}  {'OT':>8}  {'total':>8}")
    for epoch in range(1, epochs + 1):
        order = torch.randperm(x.shape[0])
        ce_sum = ot_sum = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start : start + batch_size]
            logits = model(x[idx])
            ce_term = cross_entropy(logits, y[idx])
            ot_term = ot(logits, y[idx])
            # The baseline still computes the OT term, to print it, but does not train on it.
            loss = ce_term + lam * ot_term if lam > 0.0 else ce_term
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            n = idx.numel()
            ce_sum += ce_term.item() * n
            ot_sum += ot_term.item() * n
        ce_mean, ot_mean = ce_sum / x.shape[0], ot_sum / x.shape[0]
        history.append((ce_mean, ot_mean))
        print(f"{epoch:>5}  {ce_mean:>8.4f}  {ot_mean:>8.4f}  {ce_mean + lam * ot_mean:>8.4f}")
    return model, history


# ---------------------------------------------------------------------------------------------
# Evaluation.


def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> Dict[str, float]:
    """macro-F1, accuracy, mean accuracy and affective error distance on the held-out set."""
    with torch.no_grad():
        predicted = model(x).argmax(dim=1).numpy().astype(np.int64)
    truth = y.numpy().astype(np.int64)
    # Every metric of `circot eval`, in one dict; the preset supplies the circumplex cost behind
    # the affective error distance.
    report = circot.metrics.evaluate(truth, predicted, preset=PRESET)
    keys = ("macro_f1", "accuracy", "mean_accuracy", "affective_error_distance")
    return {k: float(report[k]) for k in keys}


def confused_pair(model: nn.Module, x: Tensor, y: Tensor, a: int, b: int) -> float:
    """Fraction of the test samples of classes ``a`` and ``b`` predicted as the other one."""
    with torch.no_grad():
        p = model(x).argmax(dim=1)
    mask_a, mask_b = y == a, y == b
    swaps = (p[mask_a] == b).sum() + (p[mask_b] == a).sum()
    return float(swaps) / float(mask_a.sum() + mask_b.sum())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12, help="training epochs per arm")
    parser.add_argument("--lam", type=float, default=2.0, help="λ, the OT term's weight")
    parser.add_argument("--seed", type=int, default=0, help="data, initialisation and batches")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--train-samples", type=int, default=8000)
    parser.add_argument("--test-per-class", type=int, default=500)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.lam <= 0.0:
        parser.error("--epochs must be >= 1 and --lam > 0")

    # One thread: this model is too small to gain from more, and a single thread does not slow
    # to a crawl when the machine is busy with other work (OpenMP oversubscription).
    torch.set_num_threads(1)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    x_train, y_train, x_test, y_test = make_data(rng, args.train_samples, args.test_per_class)
    counts = np.bincount(y_train.numpy(), minlength=len(CLASSES))
    print(f"circot {circot.__version__}, torch {torch.__version__}, seed {args.seed}")
    print("train per class: " + ", ".join(f"{c} {n}" for c, n in zip(CLASSES, counts)))
    print(f"test: {args.test_per_class} per class (balanced)")

    common = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    baseline, _ = train("baseline", x_train, y_train, lam=0.0, **common)
    with_ot, _ = train("CE+OT", x_train, y_train, lam=args.lam, **common)

    arms = {"CE": evaluate(baseline, x_test, y_test), f"CE+{args.lam:g}·OT": evaluate(with_ot, x_test, y_test)}
    anger, contempt = CLASSES.index("Anger"), CLASSES.index("Contempt")
    swaps = {
        "CE": confused_pair(baseline, x_test, y_test, anger, contempt),
        f"CE+{args.lam:g}·OT": confused_pair(with_ot, x_test, y_test, anger, contempt),
    }
    print("\nheld-out (balanced) set:")
    print("| arm | macro-F1 | accuracy | mean accuracy | affective error distance | Anger<->Contempt swaps |")
    print("|---|---|---|---|---|---|")
    for arm, m in arms.items():
        print(
            f"| {arm} | {m['macro_f1']:.4f} | {m['accuracy']:.4f} | {m['mean_accuracy']:.4f} "
            f"| {m['affective_error_distance']:.4f} | {swaps[arm]:.3f} |"
        )
    print("(affective error distance: mean C[y, ŷ] over the errors, C = the circumplex cost, max 1)")
    if not all(math.isfinite(v) for m in arms.values() for v in m.values()):
        print("error: a metric is not finite", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
