"""Figures for a multiclass classifier: one-vs-rest ROC and precision-recall curves, a confusion matrix.

Each curve panel answers "how well is this class told apart from all the others?" for several
models at once (e.g. slide-only, omics-only and fused). The numbers in the legends are
:func:`mmsurv.metrics.roc_auc` and :func:`mmsurv.metrics.average_precision`, so they match
:func:`mmsurv.metrics.multiclass_report`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from .metrics import average_precision, confusion_counts, roc_auc

__all__ = ["plot_roc_curves", "plot_pr_curves", "plot_confusion_matrix"]


def _check_curves_input(y_true, probas: Mapping[str, np.ndarray], class_names: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    y_true = np.asarray(y_true)
    if not probas:
        raise ValueError("probas is empty: pass {model name: (n, K) probabilities}")
    checked = {}
    for name, proba in probas.items():
        proba = np.asarray(proba, dtype=float)
        if proba.shape != (len(y_true), len(class_names)):
            raise ValueError(f"probas[{name!r}] has shape {proba.shape}, expected ({len(y_true)}, {len(class_names)}) (samples, classes)")
        checked[name] = proba
    if not np.isin(y_true, np.arange(len(class_names))).all():
        raise ValueError(f"y_true must hold class indices 0..{len(class_names) - 1}")
    return y_true, checked


def _panels(axes, n_classes: int) -> np.ndarray:
    if axes is None:
        _, axes = plt.subplots(1, n_classes, figsize=(3.4 * n_classes, 3.4), squeeze=False)
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < n_classes:
        raise ValueError(f"need one axes per class ({n_classes}), got {len(axes)}")
    return axes[:n_classes]


def plot_roc_curves(
    y_true: np.ndarray,
    probas: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    axes: Sequence[plt.Axes] | np.ndarray | None = None,
) -> np.ndarray:
    """One-vs-rest ROC curves: one panel per class, one line per model, AUC in the legend.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        Class index 0..K-1 of each sample.
    probas : mapping of model name -> array, shape (n, K)
        Predicted class probabilities of each model on the same samples.
    class_names : sequence of str, length K
    axes : sequence of K matplotlib Axes, optional
        Default: a new figure with one row of K panels.

    Returns
    -------
    ndarray of matplotlib Axes, shape (K,)
    """
    y_true, probas = _check_curves_input(y_true, probas, class_names)
    axes = _panels(axes, len(class_names))
    for k, (ax, class_name) in enumerate(zip(axes, class_names)):
        positive = (y_true == k).astype(int)
        for name, proba in probas.items():
            false_pos, true_pos, _ = roc_curve(positive, proba[:, k])
            ax.plot(false_pos, true_pos, lw=1.5, label=f"{name} (AUC {roc_auc(positive, proba[:, k]):.3f})")
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", xlabel="false positive rate (1 - specificity)")
        ax.set_ylabel("true positive rate (sensitivity)")
        ax.set_title(f"{class_name} vs rest (n = {positive.sum()})", fontsize=10)
        ax.legend(loc="lower right", fontsize=7)
    return axes


def plot_pr_curves(
    y_true: np.ndarray,
    probas: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    axes: Sequence[plt.Axes] | np.ndarray | None = None,
) -> np.ndarray:
    """One-vs-rest precision-recall curves: one panel per class, one line per model, AP in the legend.

    The dotted line is the chance level, the prevalence of the class: unlike the ROC
    diagonal it moves with class balance, which is why rare classes look worse here.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
    probas : mapping of model name -> array, shape (n, K)
    class_names : sequence of str, length K
    axes : sequence of K matplotlib Axes, optional

    Returns
    -------
    ndarray of matplotlib Axes, shape (K,)
    """
    y_true, probas = _check_curves_input(y_true, probas, class_names)
    axes = _panels(axes, len(class_names))
    for k, (ax, class_name) in enumerate(zip(axes, class_names)):
        positive = (y_true == k).astype(int)
        for name, proba in probas.items():
            precision, recall, _ = precision_recall_curve(positive, proba[:, k])
            # average precision is the step-wise area: draw the same steps
            ax.step(recall, precision, where="post", lw=1.5, label=f"{name} (AP {average_precision(positive, proba[:, k]):.3f})")
        ax.axhline(positive.mean(), ls=":", color="grey", lw=1, label=f"chance ({positive.mean():.2f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", xlabel="recall (sensitivity)", ylabel="precision (PPV)")
        ax.set_title(f"{class_name} vs rest (n = {positive.sum()})", fontsize=10)
        ax.legend(loc="lower left", fontsize=7)
    return axes


def plot_confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Axes:
    """A confusion matrix: counts written in each cell, colour = fraction of the true class (row).

    Colouring by row makes the diagonal read as each class's sensitivity (recall), so a
    small class is not washed out by a large one.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
        True and predicted class indices (e.g. ``proba.argmax(axis=1)``).
    class_names : sequence of str, length K
    ax : matplotlib Axes, optional
    title : str, optional
        Default: the overall accuracy.

    Returns
    -------
    matplotlib Axes
    """
    n_classes = len(class_names)
    counts = confusion_counts(y_true, y_pred, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = counts / counts.sum(axis=1, keepdims=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * n_classes + 1.8, 1.1 * n_classes + 1.2))
    image = ax.imshow(np.nan_to_num(fractions), cmap="Blues", vmin=0, vmax=1)
    for i in range(n_classes):
        for j in range(n_classes):
            dark = np.nan_to_num(fractions[i, j]) > 0.5
            ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(n_classes), labels=list(class_names))
    ax.set_yticks(range(n_classes), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(title or f"accuracy {accuracy:.3f} (n = {counts.sum()})", fontsize=10)
    return ax
