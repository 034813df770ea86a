"""Train a :class:`MultimodalModel` and read out its predictions and embeddings.

:func:`fit_fusion` chooses the loss from the task and hands everything else - device, mixed
precision on CUDA, early stopping, the progress bar, seeding - to the kit's shared loop,
:func:`mmsurv.training.train_model`. The initial weights (:meth:`MultimodalModel.reinitialise`),
the batch order and dropout all come from ``seed`` alone, so the same call gives the same model
whatever ran before it, and seeds ``seed``, ``seed + 1``, ... give an ensemble of different ones.

=====================  ======================  =============================================================
task                   model output            loss
=====================  ======================  =============================================================
``multiclass``         K class logits          cross-entropy on class indices
``binary``             1 logit                 binary cross-entropy with logits (0 / 1)
``cox``                1 log-hazard            :func:`mmsurv.fusion.cox_loss` on [time, event]
``discrete_survival``  K hazard logits         :func:`~mmsurv.fusion.discrete_time.discrete_time_nll` on [position, event]
=====================  ======================  =============================================================

Which to use: ``binary`` for a landmark label (event within a horizon) - but it drops every
patient censored before the horizon; ``cox`` for a risk ranking from everybody's follow-up,
with batches large enough to hold risk sets; ``discrete_survival`` for whole survival curves
from everybody's follow-up, at any batch size (one slide bag per batch included): the curves
can be checked for calibration (:mod:`mmsurv.metrics.survival_calibration`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..environment import cpu_threads
from ..training import TrainingHistory, predict, train_model
from .data import MultimodalDataset
from .discrete_time import discrete_time_nll
from .losses import cox_loss
from .model import MultimodalModel

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["TASKS", "fit_fusion", "predict_fusion", "embed_fusion"]

#: The tasks :func:`fit_fusion` trains for.
TASKS = ("multiclass", "binary", "cox", "discrete_survival")


def _loss_for(task: str, model: MultimodalModel, dataset: MultimodalDataset) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of ``task``, after checking the model's outputs and the dataset's targets fit it."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {TASKS}")
    targets, n_outputs = dataset.targets, model.n_outputs
    if task == "multiclass":
        if n_outputs < 2 or targets.ndim != 1 or targets.min() < 0 or targets.max() >= n_outputs:
            raise ValueError(f"task 'multiclass' needs n_outputs = K >= 2 and class indices in 0..K-1; got n_outputs={n_outputs}")
        return nn.CrossEntropyLoss()
    if task == "discrete_survival":
        if (
            n_outputs < 2
            or targets.ndim != 2
            or targets[:, 0].min() < 0
            or targets[:, 0].max() > n_outputs
            or not np.isin(targets[:, 1], (0, 1)).all()
        ):
            raise ValueError(
                f"task 'discrete_survival' needs n_outputs = K bins >= 2 and (n, 2) [position in bins, 0..K; event 0/1] targets "
                f"(TimeBins.targets); got n_outputs={n_outputs}"
            )
        return discrete_time_nll
    if n_outputs != 1:
        raise ValueError(f"task {task!r} needs a model with n_outputs=1, got {n_outputs}")
    if task == "binary":
        if targets.ndim != 1 or not np.isin(targets, (0, 1)).all():
            raise ValueError("task 'binary' needs targets 0 or 1")
        return nn.BCEWithLogitsLoss()
    if targets.ndim != 2:
        raise ValueError("task 'cox' needs (n, 2) [time, event] targets")
    return cox_loss


def fit_fusion(
    model: MultimodalModel,
    train: MultimodalDataset,
    validation: MultimodalDataset | None = None,
    *,
    task: str = "multiclass",
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    patience: int = 10,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    sample_ids: dict[str, Sequence[Any]] | None = None,
    reinitialise: bool = True,
    ledger: FitLedger | None = None,
    step: str = "fusion model",
) -> TrainingHistory:
    """Train ``model`` on ``train``, early-stopping on ``validation``.

    Parameters
    ----------
    model : MultimodalModel
        Its ``n_outputs`` must fit the task (K for multiclass, 1 otherwise).
    train, validation : MultimodalDataset
        Without ``validation``, all ``epochs`` run and the last weights are kept.
    task : {"multiclass", "binary", "cox", "discrete_survival"}, default "multiclass"
        See the module notes for which to use.
    epochs, batch_size, learning_rate, weight_decay, patience : training settings
        ``patience``: epochs without a lower validation loss before stopping.
    device : str, default "cpu"
    seed : int, default 0
        Seeds the initial weights (with ``reinitialise``), the batch order, dropout and
        modality dropout: one seed reproduces the whole fit.
    progress : bool, default True
    sample_ids : dict, optional
        ``{"train": ids, "validation": ids}`` recorded in ``history.samples``; by default the
        datasets' own ``sample_ids``.
    reinitialise : bool, default True
        Draw the model's initial weights from ``seed`` before training
        (:meth:`MultimodalModel.reinitialise`: the weights of a model built right after
        ``torch.manual_seed(seed)``). False: train from the weights the model has, to go on
        training a fitted model or start from weights set by hand.
    ledger : FitLedger, optional
        Records ``sample_ids`` as ``"<step>: fit"`` and ``"<step>: early stopping"`` (the
        validation set chooses the weights, so it is a fitting step too; see :mod:`mmsurv.ledger`).
    step : str, default "fusion model"

    Returns
    -------
    TrainingHistory
        The model is left on ``device`` with the weights of the best epoch.

    Notes
    -----
    For ``cox``, the validation loss is computed on the whole validation set at once: the
    partial likelihood compares each event with everyone still at risk, so splitting the set
    into batches would change the loss. Training batches are risk sets of ``batch_size``.
    """
    loss_fn = _loss_for(task, model, train)
    if validation is not None:
        _loss_for(task, model, validation)
    if sample_ids is None:
        sample_ids = {"train": train.sample_ids} | ({"validation": validation.sample_ids} if validation is not None else {})
    if ledger is not None:
        ledger.record_history(step, sample_ids)
    if reinitialise:  # the initial weights from the seed, not from whatever drew on torch's global state before
        model.reinitialise(seed)
    pin = str(device).startswith("cuda")
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed), pin_memory=pin)
    validation_loader = None
    if validation is not None:
        validation_batch = max(len(validation), 1) if task == "cox" else batch_size
        validation_loader = DataLoader(validation, batch_size=validation_batch, pin_memory=pin)
    with cpu_threads(1, device):  # tabular encoders: one thread is faster (see mmsurv.environment.cpu_threads)
        return train_model(
            model,
            train_loader,
            validation_loader,
            loss_fn=loss_fn,
            epochs=epochs,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            patience=patience,
            device=device,
            seed=seed,
            sample_ids=sample_ids,
            progress=progress,
            description=f"{model.fusion_name} fusion ({task})",
        )


def _run(function: Callable, dataset: MultimodalDataset, device: str, batch_size: int, progress: bool) -> np.ndarray:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with cpu_threads(1, device):
        outputs, index = predict(function, loader, device=device, progress=progress)
    ordered = np.empty_like(outputs)
    ordered[index] = outputs
    return ordered


def predict_fusion(
    model: MultimodalModel,
    dataset: MultimodalDataset,
    *,
    device: str = "cpu",
    batch_size: int = 256,
    probabilities: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """The model's outputs for every sample of ``dataset``, in the dataset's order.

    Parameters
    ----------
    model : MultimodalModel
    dataset : MultimodalDataset
    device : str, default "cpu"
    batch_size : int, default 256
    probabilities : bool, default False
        False: raw outputs (class logits, a logit, or a Cox log-hazard). True: softmax
        probabilities over the classes when ``n_outputs > 1``, the sigmoid of the logit when
        ``n_outputs == 1`` (for a binary model; meaningless for a Cox one).
    progress : bool, default False

    Returns
    -------
    ndarray of float32, shape (n, n_outputs)
        Evaluation mode: no dropout, no modality dropout. Column 0 is the binary logit or the
        Cox risk score (higher = earlier event, as :func:`mmsurv.metrics.concordance_index` expects).
    """
    outputs = _run(model, dataset, device, batch_size, progress)
    if not probabilities:
        return outputs
    scores = torch.from_numpy(outputs)
    return (torch.softmax(scores, dim=1) if outputs.shape[1] > 1 else torch.sigmoid(scores)).numpy()


def embed_fusion(
    model: MultimodalModel, dataset: MultimodalDataset, *, device: str = "cpu", batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """The fused embedding of every sample (:meth:`MultimodalModel.embed`), (n, model.embedding_features), in dataset order."""
    return _run(model.embed, dataset, device, batch_size, progress)
