"""Train the MRI recurrence networks and read out their probabilities and image features.

:func:`fit_recurrence_net` trains a :class:`~mmsurv.radiology.mri_networks.RecurrenceNet` on
0 / 1 recurrence labels (patients censored before the horizon are left out by the caller) with
in-plane augmentation and early stopping on a tuning set, through the kit's shared loop
(:func:`mmsurv.training.train_model`). :func:`recurrence_outputs` gives each patient's
probability and bottleneck features in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..training import TrainingHistory, predict, train_model
from .mri_networks import RecurrenceNet
from .mri_slices import MriInputs, MriSliceDataset

__all__ = ["fit_recurrence_net", "recurrence_outputs"]


def _labels(name: str, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=float)
    if np.isnan(labels).any() or not np.isin(labels, (0, 1)).all() or len(np.unique(labels)) < 2:
        raise ValueError(f"{name} labels must be 0 / 1 without NaN and hold both classes (leave unlabelled patients out)")
    return labels


def fit_recurrence_net(
    model: RecurrenceNet,
    train: tuple[MriInputs, np.ndarray],
    tune: tuple[MriInputs, np.ndarray],
    *,
    epochs: int = 60,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.05,
    patience: int = 12,
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    description: str = "MRI network",
) -> TrainingHistory:
    """Train ``model`` on (inputs, labels) with binary cross-entropy, early-stopping on ``tune``.

    Parameters
    ----------
    model : RecurrenceNet
        Initial weights are the model's (build it under ``torch.manual_seed``).
    train, tune : (MriInputs, labels)
    epochs, learning_rate, weight_decay, patience, batch_size : training settings
    device : str
    seed : int
        Seeds batch order, augmentation and dropout.
    progress : bool
    description : str

    Returns
    -------
    TrainingHistory
        ``samples`` records the patients trained and tuned on.
    """
    (train_inputs, train_y), (tune_inputs, tune_y) = train, tune
    train_y, tune_y = _labels("train", train_y), _labels("tune", tune_y)
    generator = torch.Generator().manual_seed(seed)
    loaders = (
        DataLoader(MriSliceDataset(train_inputs, train_y, augment=True, seed=seed), batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(MriSliceDataset(tune_inputs, tune_y), batch_size=128),
    )
    return train_model(
        model,
        *loaders,
        loss_fn=nn.BCEWithLogitsLoss(),
        epochs=epochs,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        patience=patience,
        device=device,
        seed=seed,
        sample_ids={"train": train_inputs.patient_ids, "validation": tune_inputs.patient_ids},
        progress=progress,
        description=description,
    )


def recurrence_outputs(model: RecurrenceNet, inputs: MriInputs, *, device: str = "cpu", batch_size: int = 128) -> tuple[pd.Series, pd.DataFrame]:
    """Probability of recurrence and bottleneck features of every patient in ``inputs``.

    Returns
    -------
    (probability, features)
        A Series and a DataFrame (columns ``img_0``...), both indexed by patient id.
    """
    loader = DataLoader(MriSliceDataset(inputs, np.zeros(len(inputs.patient_ids))), batch_size=batch_size)
    features, order = predict(model.embed, loader, device=device, progress=False)
    with torch.no_grad():  # the head on the features already computed, where the model now is
        logits = model.head(torch.from_numpy(features).to(model.head.weight.device)).float().cpu().numpy()[:, 0]
    ids: Sequence[str] = [inputs.patient_ids[i] for i in order]
    probability = pd.Series(1 / (1 + np.exp(-logits)), index=ids, name="p_recurrence")
    return probability, pd.DataFrame(features, index=ids, columns=[f"img_{i}" for i in range(features.shape[1])])
