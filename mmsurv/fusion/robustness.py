"""Scoring a trained fusion model when modalities go missing at test time, and the figure of it.

In practice a patient arrives without a methylation array, or with a slide that failed
quality control. :func:`missing_modality_table` removes one modality (or several together)
from a growing share of the test samples (0, 25, 50, 100%) and scores each model on what is
left - typically a model trained with modality dropout against one trained without.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .data import MultimodalDataset
from .model import MultimodalModel
from .train import predict_fusion

__all__ = ["missing_modality_table", "plot_missing_modality"]


def missing_modality_table(
    models: Mapping[str, MultimodalModel | Sequence[MultimodalModel]],
    dataset: MultimodalDataset,
    scores: Mapping[str, Callable[[np.ndarray, np.ndarray], float]],
    *,
    blocks: Sequence[str | Sequence[str]],
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 1.0),
    n_repeats: int = 3,
    probabilities: bool = True,
    device: str = "cpu",
    seed: int = 0,
) -> pd.DataFrame:
    """Score every model with each block removed from a share of the samples.

    Parameters
    ----------
    models : mapping name -> MultimodalModel, or a sequence of them
        E.g. ``{"without modality dropout": a, "with modality dropout": b}``. A sequence holds
        replicates (the same setting trained from different seeds): their scores are averaged,
        so that one lucky or unlucky training does not decide the comparison.
    dataset : MultimodalDataset
        The test samples.
    scores : mapping name -> callable
        ``score(targets, outputs) -> float``, higher is better: e.g. ``{"macro_auc": ...,
        "neg_log_loss": ...}``. A ranking score (AUC) can stay put while the predictions lose
        their calibration; the log-loss sees that.
    blocks : sequence of str or of tuples of str
        The blocks to remove, one entry at a time; a tuple removes its blocks together from the
        same samples (``("rna", "methylation")``: a patient with no molecular data at all), and
        is labelled ``"rna+methylation"`` in the table.
    fractions : sequence of float, default (0, 0.25, 0.5, 1)
        Share of the samples that have the block to remove it from (see
        :meth:`MultimodalDataset.with_missing`; a sample is never left with no block).
    n_repeats : int, default 3
        Random draws of the samples to remove, averaged (fractions 0 and 1 need one).
    probabilities : bool, default True
        Score softmax probabilities (multiclass) rather than raw outputs.
    device : str, default "cpu"
    seed : int, default 0

    Returns
    -------
    DataFrame
        One row per (model, block, fraction): for each score its mean over repeats and replicates (``<name>``)
        and ``<name>_loss`` (the score with nothing removed minus this one); ``n_removed``
        (samples that lost the block, mean over repeats).
    """
    rows = []
    for block in blocks:
        label = block if isinstance(block, str) else "+".join(block)
        for fraction in fractions:
            repeats = 1 if fraction in (0.0, 1.0) else n_repeats
            for repeat in range(repeats):
                scored = dataset.with_missing(block, fraction, seed=seed + repeat) if fraction > 0 else dataset
                for name, replicates in models.items():
                    for model in [replicates] if isinstance(replicates, MultimodalModel) else replicates:
                        outputs = predict_fusion(model, scored, device=device, probabilities=probabilities)
                        values = {metric: function(scored.targets, outputs) for metric, function in scores.items()}
                        rows.append({"model": name, "missing": label, "fraction": fraction, "n_removed": scored.n_removed, **values})
    summary = pd.DataFrame(rows).groupby(["model", "missing", "fraction"], sort=False).mean().reset_index()
    keys = pd.MultiIndex.from_frame(summary[["model", "missing"]])
    for metric in scores:
        complete = summary[summary["fraction"] == 0].set_index(["model", "missing"])[metric]
        summary[f"{metric}_loss"] = complete.reindex(keys).to_numpy() - summary[metric].to_numpy()
    return summary


def plot_missing_modality(table: pd.DataFrame, score: str, *, axes: Sequence | None = None, ylabel: str | None = None) -> np.ndarray:
    """One panel per removed block: score against the share of samples missing it, a line per model."""
    import matplotlib.pyplot as plt

    blocks = list(dict.fromkeys(table["missing"]))
    if axes is None:
        _, axes = plt.subplots(1, len(blocks), figsize=(3.6 * len(blocks), 3.2), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, block in zip(axes, blocks):
        for name, part in table[table["missing"] == block].groupby("model", sort=False):
            ax.plot(100 * part["fraction"], part[score], marker="o", label=name)
        ax.set_title(f"{block} missing", fontsize=10)
        ax.set_xlabel("% of test samples without it")
    axes[0].set_ylabel(ylabel or score)
    axes[0].legend(frameon=False, fontsize=8)
    return np.asarray(axes)
