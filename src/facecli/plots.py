"""Figures, written atomically: ROC and score histograms (eval), rates per threshold (sweep), CMC (eval-identify)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facecli.fileio import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)


def roc_and_histograms(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    metric: str,
    path: str | os.PathLike[str],
    reject: tuple[list[float], list[float], list[float]] | None = None,
) -> None:
    """ROC with log-scale FAR, and genuine/impostor histograms (distances for euclidean) with the threshold; with
    `reject` (shares rejected, error, false non-match rate), a third panel: error against the share of
    lowest-quality pairs set aside."""
    from sklearn.metrics import roc_curve  # only here: training's curves need none of scikit-learn

    fpr, tpr, _ = roc_curve(labels, scores)
    fig, axes = plt.subplots(1, 2 if reject is None else 3, figsize=(11 if reject is None else 16, 4.2))
    roc, hist = axes[0], axes[1]
    positive = fpr > 0
    roc.plot(fpr[positive], tpr[positive])
    roc.set_xscale("log")
    roc.set(xlabel="FAR (false accept rate)", ylabel="TAR (true accept rate)", title="ROC", ylim=(0, 1.01))
    roc.grid(True, which="both", alpha=0.3)
    score_name = "distance" if metric == "euclidean" else "similarity"
    shown = -scores if metric == "euclidean" else scores
    bins = np.linspace(shown.min(), shown.max(), 50)
    hist.hist(shown[labels == 1], bins=bins, alpha=0.6, label="genuine")
    hist.hist(shown[labels == 0], bins=bins, alpha=0.6, label="impostor")
    hist.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    hist.set(xlabel=score_name, ylabel="pairs", title="score distributions")
    hist.legend()
    if reject is not None:
        rejected, error, fnmr = reject
        axes[2].plot(rejected, error, marker="o", label="error")
        axes[2].plot(rejected, fnmr, marker="s", label="false non-match rate")
        axes[2].set(xlabel="share of pairs rejected (lowest quality first)", ylabel="rate", title="error vs reject")
        axes[2].grid(True, alpha=0.3)
        axes[2].legend()
    _save(fig, path)


def sweep_plot(table: pd.DataFrame, chosen: float, path: str | os.PathLike[str]) -> None:
    """Accuracy, FAR and FRR against threshold, with the chosen threshold marked."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for column in ("accuracy", "far", "frr"):
        ax.plot(table["threshold"], table[column], label=column.upper() if column != "accuracy" else column)
    ax.axvline(chosen, color="k", linestyle="--", label=f"chosen {chosen:.3f}")
    ax.set(xlabel="threshold", ylabel="rate", ylim=(0, 1.01), title="threshold sweep")
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, path)


def cmc_plot(cmc: list[float], path: str | os.PathLike[str]) -> None:
    """Cumulative match characteristic: identification rate against rank."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(range(1, len(cmc) + 1), cmc, marker="o")
    ax.set(xlabel="rank", ylabel="identification rate", ylim=(0, 1.01), title="CMC")
    ax.grid(True, alpha=0.3)
    _save(fig, path)


def training_curves(history: list[dict], path: str | os.PathLike[str]) -> None:
    """Loss and lr per epoch, and validation accuracy and AUC when the run has validation pairs."""
    table = pd.DataFrame(history)
    validated = "val_accuracy" in table and table["val_accuracy"].notna().any()
    fig, axes = plt.subplots(1, 3 if validated else 2, figsize=(14 if validated else 9.5, 3.8))
    axes[0].plot(table["epoch"], table["loss"], marker="o")
    axes[0].set(xlabel="epoch", ylabel="loss", title="training loss")
    axes[1].plot(table["epoch"], table["lr"], marker="o")
    axes[1].set(xlabel="epoch", ylabel="lr", title="learning rate (end of epoch)")
    if validated:
        done = table.dropna(subset=["val_accuracy"])  # epochs without a validation have none
        axes[2].plot(done["epoch"], done["val_accuracy"], marker="o", label="10-fold accuracy")
        axes[2].plot(done["epoch"], done["val_auc"], marker="o", label="AUC")
        axes[2].set(xlabel="epoch", ylim=(0.4, 1.01), title="validation")
        axes[2].legend()
    for ax in axes:
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def comparison_figure(
    a: np.ndarray, b: np.ndarray, score: float, same: bool | None, path: str | os.PathLike[str]
) -> None:
    """Two faces as the model saw them, side by side, with the score and the decision."""
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.4))
    for ax, image in zip(axes, (a, b), strict=True):
        ax.imshow(image)
        ax.axis("off")
    decision = "no threshold" if same is None else ("same person" if same else "different people")
    fig.suptitle(f"cosine {score:.3f}: {decision}")
    _save(fig, path)


def embedding_map(points: np.ndarray, labels: list[str], title: str, path: str | os.PathLike[str]) -> None:
    """2-D points coloured by identity (at most 20 identities get their own colour and a legend entry)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    names = list(dict.fromkeys(labels))
    colours = plt.get_cmap("tab20")
    for n, name in enumerate(names):
        rows = [i for i, label in enumerate(labels) if label == name]
        shown = name if len(names) <= 20 else None
        ax.scatter(points[rows, 0], points[rows, 1], s=12, color=colours(n % 20), label=shown)
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set_title(title)
    ax.set_aspect("equal", "datalim")
    _save(fig, path)


def suspects_grid(images: list[np.ndarray], captions: list[str], path: str | os.PathLike[str]) -> None:
    """The worst suspects of `facecli clean`, a few per row, each captioned with its label and its nearest."""
    columns = min(6, max(1, len(images)))
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption in zip(axes.ravel(), images, captions, strict=False):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
    _save(fig, path)
