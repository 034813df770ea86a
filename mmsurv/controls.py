"""The permuted-label control: what the same pipeline scores when there is nothing to learn.

Shuffle the outcomes among the *training* patients, train exactly as before, and score on the
untouched test set. Any single shuffle can land well away from chance by luck (a model with
a few covariates has a random direction that may happen to align with the truth), so we
repeat it and report the mean and the spread of the null distribution. If the mean is far
from chance, information leaks between training and test.

Give each retraining its own initial weights (the notebooks draw a new seed per call). A network
that has barely trained still scores by what its initial weights pick up in the input (nuclear
density in a tile, tumour size), so retrainings from one shared initialisation land on the same side
of chance and their mean does not average out: measured in notebook 01's smoke run at seed 1,
three such retrainings gave -0.28 to -0.21.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

__all__ = ["PermutationResult", "permuted_label_control", "reorder_by_id"]


@dataclass(frozen=True)
class PermutationResult:
    """Scores of the pipeline trained on permuted labels.

    Attributes
    ----------
    estimate : float
        Mean score over the permutations (compare with chance).
    ci_low, ci_high : float
        2.5th and 97.5th percentiles of the permutation scores (the null spread).
    values : ndarray
        Score of each permutation.
    """

    estimate: float
    ci_low: float
    ci_high: float
    values: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        """Mean and null interval as plain floats, e.g. for ``metrics.json``."""
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high, "n_permutations": len(self.values)}


def permuted_label_control(
    train_and_score: Callable[[np.ndarray], float],
    n_train: int,
    *,
    n_permutations: int = 20,
    seed: int = 0,
    progress: bool = False,
) -> PermutationResult:
    """Train and score a pipeline on ``n_permutations`` shuffles of the training labels.

    Parameters
    ----------
    train_and_score : callable
        ``train_and_score(order) -> float``: train with the training labels reordered by
        the integer array ``order`` (i.e. ``labels[order]``), and return the held-out score.
    n_train : int
        Number of training patients.
    n_permutations : int, default 20
    seed : int, default 0
    progress : bool, default False
        Show a progress bar (for slow pipelines).

    Returns
    -------
    PermutationResult
    """
    if n_permutations < 1:
        raise ValueError("n_permutations must be at least 1")
    rng = np.random.default_rng(seed)
    values = np.array(
        [train_and_score(rng.permutation(n_train)) for _ in tqdm(range(n_permutations), desc="permutations", leave=False, disable=not progress)]
    )
    low, high = np.quantile(values, [0.025, 0.975])
    return PermutationResult(float(values.mean()), float(low), float(high), values)


def reorder_by_id(outcomes: pd.Series | pd.DataFrame, order: np.ndarray) -> pd.Series | pd.DataFrame:
    """Deal the outcomes of ``outcomes`` out again in ``order``, keeping the patient index.

    Patient ``outcomes.index[i]`` receives the outcome of ``outcomes.index[order[i]]``; a
    DataFrame's rows move whole, so a survival outcome stays a (time, event) pair. The result
    is keyed by patient id: code that looks labels up by id cannot misplace them, as code that
    slices a shuffled array by position (``labels[: len(train)]``) silently can.

    Parameters
    ----------
    outcomes : Series or DataFrame
        One row per training patient, indexed by patient id.
    order : array of int
        A permutation of ``range(len(outcomes))`` (what :func:`permuted_label_control` passes).

    Returns
    -------
    Series or DataFrame
        Same index and columns, values reordered.
    """
    order = np.asarray(order)
    if sorted(order.tolist()) != list(range(len(outcomes))):
        raise ValueError(f"order must be a permutation of range({len(outcomes)})")
    shuffled = outcomes.iloc[order].copy()
    shuffled.index = outcomes.index
    return shuffled
