"""Tile CNNs trained with slide-level labels: per-tile targets, a regressor, a classifier, prediction.

Each tile inherits its slide's label - a continuous target such as an RNA proliferation score
(notebook 01) or a class such as LUAD / LUSC / normal lung (notebook 03); the network learns
it from pixels, and its tile predictions are summarised per slide
(:func:`mmsurv.pathology.tiling.aggregate_tiles`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from ..io.tiles import TileDataset
from ..training import TrainingHistory, predict

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["tile_targets", "fit_tile_regressor", "fit_tile_classifier", "predict_tiles"]


def tile_targets(
    tiles: pd.DataFrame,
    patient_targets: pd.DataFrame,
    *,
    reference: pd.Index,
    ledger: FitLedger | None = None,
    step: str = "target standardisation",
) -> np.ndarray:
    """Each tile gets its patient's targets, standardised with the mean and SD of ``reference`` patients.

    Parameters
    ----------
    tiles : DataFrame
        Needs a ``patient_id`` column.
    patient_targets : DataFrame
        Indexed by patient id, one column per target.
    reference : Index
        The training patients: standardising with their statistics only keeps the test
        patients' labels out of training.
    ledger : FitLedger, optional
        Records the ``reference`` patients (whose mean and SD standardise) under ``step``.
    step : str, default "target standardisation"

    Returns
    -------
    ndarray, shape (n_tiles, n_targets), float32
    """
    if ledger is not None:
        ledger.record(step, reference)
    reference_values = patient_targets.loc[reference]
    standardised = (patient_targets - reference_values.mean()) / reference_values.std()
    values = standardised.reindex(tiles["patient_id"]).to_numpy(dtype=np.float32)
    if np.isnan(values).any():
        missing = tiles.loc[np.isnan(values).any(axis=1), "patient_id"].unique()[:5]
        raise ValueError(f"tiles of patients without targets: {list(missing)}")
    return values


def fit_tile_regressor(
    dataset: TileDataset,
    tiles: pd.DataFrame,
    targets: np.ndarray,
    *,
    backbone: str = "resnet18",
    pretrained: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 3,
    num_workers: int = 0,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    ledger: FitLedger | None = None,
    step: str = "tile CNN",
) -> tuple[torch.nn.Module, TrainingHistory]:
    """Train a :class:`~mmsurv.models.TileRegressor` on the ``train`` tiles, early-stopped on ``validation``.

    Parameters
    ----------
    dataset : TileDataset
        All tiles (``tiles`` describes them row by row); its images may be preloaded.
    tiles : DataFrame
        Needs a ``split`` column (``train``, ``validation``, ...).
    targets : ndarray, shape (n_tiles, n_targets)
        E.g. from :func:`tile_targets`.
    augment : callable, optional
        Applied to training tiles only.
    seed : int
        Seeds the weights, the order of batches and dropout: the same arguments train the same model.
    ledger : FitLedger, optional
        Records the patients (``tiles["patient_id"]``) of the training tiles as ``"<step>: fit"``
        and of the early-stopping tiles as ``"<step>: early stopping"`` (see :mod:`mmsurv.ledger`).
    step : str, default "tile CNN"

    Returns
    -------
    (model, history)
        ``history.samples`` holds the row positions (in ``tiles``) of the tiles that trained the
        model (``"train"``) and of those that stopped it early (``"validation"``).
    """
    return _fit_tile_model(
        dataset,
        tiles,
        targets,
        targets.shape[1],
        None,
        backbone,
        pretrained,
        augment,
        epochs,
        batch_size,
        learning_rate,
        patience,
        num_workers,
        device,
        seed,
        progress,
        ledger,
        step,
    )


def fit_tile_classifier(
    dataset: TileDataset,
    tiles: pd.DataFrame,
    labels: np.ndarray,
    *,
    n_classes: int,
    class_weights: np.ndarray | None = None,
    backbone: str = "resnet18",
    pretrained: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 3,
    num_workers: int = 0,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    ledger: FitLedger | None = None,
    step: str = "tile CNN",
) -> tuple[torch.nn.Module, TrainingHistory]:
    """Train a tile classifier (a :class:`~mmsurv.models.TileRegressor` with one logit per class) with cross-entropy.

    Every tile carries its slide's class index (``labels``, shape (n_tiles,)); ``class_weights``
    (e.g. inverse class frequencies of the training slides) reweight the loss when classes are
    unbalanced. Otherwise as :func:`fit_tile_regressor`: trained on the ``train`` tiles and
    early-stopped on the ``validation`` tiles, any ResNet of :func:`~mmsurv.models.tile_backbone`
    at any tile size (global average pooling makes the input size free).

    ``ledger`` and ``step`` record the patients whose tiles trained and early-stopped it, as
    :func:`fit_tile_regressor` does.

    Returns
    -------
    (model, history)
        ``model(images)`` gives class logits (batch, n_classes).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.isin(labels, np.arange(n_classes)).all():
        raise ValueError(f"labels must be class indices 0..{n_classes - 1}, one per tile")
    weight = None if class_weights is None else torch.as_tensor(np.asarray(class_weights, dtype=np.float32), device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    return _fit_tile_model(
        dataset,
        tiles,
        labels.astype(np.float32)[:, None],
        n_classes,
        loss_fn,
        backbone,
        pretrained,
        augment,
        epochs,
        batch_size,
        learning_rate,
        patience,
        num_workers,
        device,
        seed,
        progress,
        ledger,
        step,
    )


def _fit_tile_model(
    dataset: TileDataset,
    tiles: pd.DataFrame,
    targets: np.ndarray,
    n_outputs: int,
    loss_fn: Callable | None,
    backbone: str,
    pretrained: bool,
    augment: Callable | None,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    num_workers: int,
    device: str,
    seed: int,
    progress: bool,
    ledger: FitLedger | None,
    step: str,
) -> tuple[torch.nn.Module, TrainingHistory]:
    from ..environment import seeded_torch
    from ..models import TileRegressor
    from ..training import train_model
    from .recipes import RECIPES

    if backbone in RECIPES:
        raise ValueError(
            f"backbone {backbone!r} is a foundation model: a frozen tile encoder run with weights you downloaded, not a "
            f"network trained here. Embed the slides with `mmsurv embed COHORT --out FEATURES --backbone {backbone} --weights FILE` "
            f"and read the features (notebook 01: features_dir), or use it frozen in notebook 04 (backbone={backbone!r}, backbone_weights=FILE)"
        )
    labelled = dataset.relabelled(targets, uint8=True)
    augmented = dataset.relabelled(targets, transform=augment, uint8=True)
    if ledger is not None and "patient_id" not in tiles:
        raise ValueError("fit ledger: tiles need a patient_id column to record whose tiles trained the model")
    train_rows = np.flatnonzero(tiles["split"].to_numpy() == "train")
    validation_rows = np.flatnonzero(tiles["split"].to_numpy() == "validation")
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        Subset(augmented, train_rows),
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        num_workers=num_workers,
        pin_memory=str(device).startswith("cuda"),
    )
    validation_loader = DataLoader(Subset(labelled, validation_rows), batch_size=2 * batch_size, num_workers=num_workers)
    with seeded_torch(seed):
        model = TileRegressor(backbone, n_outputs=n_outputs, pretrained=pretrained)
    validating = len(validation_rows) > 0
    history = train_model(
        model,
        train_loader,
        validation_loader if validating else None,
        loss_fn=loss_fn,
        epochs=epochs,
        learning_rate=learning_rate,
        patience=patience,
        device=device,
        seed=seed,
        progress=progress,
        sample_ids={"train": train_rows, **({"validation": validation_rows} if validating else {})},
    )
    if ledger is not None:
        patient = tiles["patient_id"].to_numpy()
        ledger.record_history(step, {role: patient[rows] for role, rows in history.samples.items()})
    return model, history


def predict_tiles(
    model: torch.nn.Module,
    dataset: TileDataset,
    *,
    rows: np.ndarray | None = None,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """The model's output for every tile of ``dataset`` (or for the tiles ``rows``), in that order.

    Parameters
    ----------
    model : torch.nn.Module
    dataset : TileDataset
    rows : array of int, optional
        Positions of the tiles to score, e.g. only the held-out slides' tiles when nothing else
        is looked at (notebook 01's permuted-label control); default every tile.
    batch_size, num_workers, device, progress
        As for :func:`mmsurv.training.predict`.

    Returns
    -------
    ndarray
        One row per tile scored, in dataset order (or in the order of ``rows``).
    """
    plain = dataset.relabelled(uint8=True)
    source = plain if rows is None else Subset(plain, np.asarray(rows, dtype=int).tolist())
    values, order = predict(model, DataLoader(source, batch_size=batch_size, num_workers=num_workers), device=device, progress=progress)
    if rows is None:
        return values[np.argsort(order)]
    return values  # an unshuffled loader over the subset visits ``rows`` in order
