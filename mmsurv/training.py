"""One training loop for every notebook: device, mixed precision, early stopping, progress bars.

Batches are dicts, as :class:`mmsurv.io.tiles.TileDataset` yields them: ``image`` (the model
input), ``target`` and ``index``. A batch may carry ``inputs`` instead of ``image``: a dict of
tensors (one per modality and a modality ``mask``, as :class:`mmsurv.fusion.MultimodalDataset`
yields them), which the model receives whole. The loop

* moves batches to the device (``non_blocking`` from pinned memory on CUDA), tensors nested
  one level in a dict included,
* uses mixed precision on CUDA only (bfloat16 where the GPU supports it, else float16 with a
  gradient scaler) - never on CPU, where bfloat16 crashes oneDNN on some processors,
* uses the channels-last memory layout for image batches (faster convolutions on CPU and GPU),
* keeps the weights of the epoch with the lowest validation loss and stops after
  ``patience`` epochs without improvement (early stopping), then restores the best weights,
* with a ``seed``, draws dropout (and anything else random in the forward pass) from that seed
  alone, in a forked random state: the same arguments give the same model whatever ran before,
  and the caller's random state is left as it was.

:class:`TrainingHistory` also records which samples trained the model and which stopped it
early (``history.samples``), so a notebook can write them down and a test can check that no
held-out sample was among them.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .environment import seeded_torch

__all__ = ["TrainingHistory", "train_model", "predict", "autocast_for", "model_fingerprint"]


@dataclass
class TrainingHistory:
    """Losses per epoch, the best epoch (lowest validation loss), the time taken, and the samples used.

    ``samples`` maps a role (``"train"``, ``"validation"``) to the ids of the samples that
    played it, when the caller named them (see :func:`train_model`'s ``sample_ids``).
    """

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1  # an index into the loss lists (0-based); printed and recorded as best_epoch_number
    seconds: float = 0.0
    samples: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        """Epochs actually trained (0 means the model was never updated)."""
        return len(self.train_loss)

    @property
    def best_epoch_number(self) -> int:
        """The best epoch counted from 1, as the loss plot's axis, the printouts and ``metrics.json`` count epochs."""
        return self.best_epoch + 1

    def plot(self, ax: Any = None) -> Any:
        """Training and validation loss curves, the best epoch marked."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3))
        epochs = np.arange(1, len(self.train_loss) + 1)
        ax.plot(epochs, self.train_loss, marker="o", label="training")
        if self.validation_loss:
            ax.plot(epochs, self.validation_loss, marker="o", label="validation")
            ax.axvline(self.best_epoch_number, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(frameon=False)
        return ax


def autocast_for(device: str) -> Any:
    """Mixed-precision context for ``device``: autocast on CUDA, nothing elsewhere."""
    if str(device).startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return nullcontext()


def _to_device(batch: dict[str, Any], device: str) -> dict[str, Any]:
    moved = {}
    for key, value in batch.items():
        if isinstance(value, dict):  # e.g. a multimodal batch's "inputs": one tensor per modality
            value = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in value.items()}
        elif isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if key == "image" and value.ndim == 4:
                value = value.contiguous(memory_format=torch.channels_last)
                if value.dtype == torch.uint8:
                    value = value.float().div_(255.0)
        moved[key] = value
    return moved


def _model_input(batch: dict[str, Any]) -> Any:
    """What the model is called on: ``batch["inputs"]`` (a dict of tensors) when present, else ``batch["image"]``."""
    return batch["inputs"] if "inputs" in batch else batch["image"]


def _target(batch: dict[str, Any], prediction: torch.Tensor) -> torch.Tensor:
    target = batch["target"]
    if prediction.ndim == 2 and prediction.shape[1] > 1 and target.numel() == len(prediction):
        return target.long().reshape(-1)  # class indices for a classifier's logits (cross-entropy)
    if target.numel() != prediction.numel():
        return target.to(prediction.dtype)  # e.g. Cox targets (n, 2) = [time, event] for log-hazards (n, 1)
    return target.to(prediction.dtype).reshape(prediction.shape)


def _epoch_loss(model: nn.Module, loader: DataLoader, loss_fn: Callable, device: str) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast_for(device):
        for batch in loader:
            batch = _to_device(batch, device)
            prediction = model(_model_input(batch)).float()
            total += float(loss_fn(prediction, _target(batch, prediction))) * len(prediction)
            count += len(prediction)
    return total / max(count, 1)


def train_model(
    model: nn.Module,
    train_loader: DataLoader,
    validation_loader: DataLoader | None = None,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    epochs: int = 10,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    patience: int = 3,
    device: str = "cpu",
    seed: int | None = None,
    sample_ids: dict[str, Sequence[Any]] | None = None,
    progress: bool = True,
    description: str = "training",
) -> TrainingHistory:
    """Train ``model`` with AdamW, early stopping on the validation loss.

    Parameters
    ----------
    model : nn.Module
        ``model(batch["image"])`` (or ``model(batch["inputs"])`` when the batch has ``inputs``)
        returns predictions shaped like ``batch["target"]``, or class logits (batch, n_classes)
        when the targets are class indices. A target with another number of elements than the
        prediction (Cox targets (batch, 2) for log-hazards (batch, 1)) reaches ``loss_fn`` as it is.
    train_loader, validation_loader : DataLoader
        Yield dict batches. Without a validation loader every epoch runs and the last is kept.
    loss_fn : callable, default mean squared error
    epochs, learning_rate, weight_decay : training settings
    patience : int, default 3
        Epochs without a lower validation loss before stopping.
    device : str, default "cpu"
        From :func:`mmsurv.environment.select_device`.
    seed : int, optional
        Seeds PyTorch's random draws during training (dropout) in a forked random state, so the
        result depends on the arguments only. The batch order and augmentation are the loaders'
        (give them seeded generators). Without a seed, the global random state is used.
    sample_ids : dict, optional
        ``{"train": ids, "validation": ids}``: what the loaders hold, recorded in
        ``history.samples`` (lengths are checked against the loaders' datasets).
    progress : bool, default True
    description : str
        Label of the progress bar.

    Returns
    -------
    TrainingHistory
        The model itself is left on ``device`` with the best weights loaded.
    """
    samples = _checked_sample_ids(sample_ids or {}, {"train": train_loader, "validation": validation_loader})
    with seeded_torch(seed, device):
        history = _train(
            model, train_loader, validation_loader, loss_fn, epochs, learning_rate, weight_decay, patience, device, progress, description
        )
    history.samples = samples
    return history


def _checked_sample_ids(sample_ids: dict[str, Sequence[Any]], loaders: dict[str, DataLoader | None]) -> dict[str, list[Any]]:
    recorded = {}
    for role, ids in sample_ids.items():
        if role not in loaders:
            raise ValueError(f"sample_ids roles must be among {sorted(loaders)}, got {role!r}")
        ids = list(ids)
        size = len(loaders[role].dataset) if loaders[role] is not None else 0
        if len(ids) != size:
            raise ValueError(f"{len(ids)} {role} sample ids for a {role} loader of {size} samples")
        recorded[role] = [i.item() if isinstance(i, np.generic) else i for i in ids]
    return recorded


def _train(
    model: nn.Module,
    train_loader: DataLoader,
    validation_loader: DataLoader | None,
    loss_fn: Callable | None,
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    device: str,
    progress: bool,
    description: str,
) -> TrainingHistory:
    loss_fn = loss_fn or nn.MSELoss()
    model.to(device)
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=str(device).startswith("cuda") and not torch.cuda.is_bf16_supported())
    history = TrainingHistory()
    best_state, best_loss, stale = None, float("inf"), 0
    started = time.perf_counter()
    bar = tqdm(range(epochs), desc=description, leave=False, disable=not progress)
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for batch in train_loader:
            batch = _to_device(batch, device)
            optimiser.zero_grad(set_to_none=True)
            with autocast_for(device):
                prediction = model(_model_input(batch)).float()
                loss = loss_fn(prediction, _target(batch, prediction))
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            total += float(loss.detach()) * len(prediction)
            count += len(prediction)
        history.train_loss.append(total / max(count, 1))
        if validation_loader is None:
            history.best_epoch = epoch
            continue
        validation = _epoch_loss(model, validation_loader, loss_fn, device)
        history.validation_loss.append(validation)
        bar.set_postfix(train=f"{history.train_loss[-1]:.3f}", validation=f"{validation:.3f}")
        if validation < best_loss:
            best_loss, stale, history.best_epoch = validation, 0, epoch
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - started
    return history


def predict(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    loader: DataLoader,
    *,
    device: str = "cpu",
    progress: bool = True,
    description: str = "predicting",
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over a loader; returns (outputs as float32 array, dataset indices).

    ``model`` may be any callable on image batches (or on ``batch["inputs"]`` where batches carry
    it), e.g. ``regressor.embed`` for embeddings.
    """
    if isinstance(model, nn.Module):
        model.to(device).eval()
    elif hasattr(model, "__self__") and isinstance(model.__self__, nn.Module):
        model.__self__.to(device).eval()
    outputs, indices = [], []
    with torch.no_grad(), autocast_for(device):
        for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
            moved = _to_device(batch, device)
            outputs.append(model(_model_input(moved)).float().cpu().numpy())
            indices.append(np.asarray(batch["index"]))
    if not outputs:
        return np.empty((0,)), np.empty((0,), dtype=int)
    return np.concatenate(outputs), np.concatenate(indices)


def model_fingerprint(model: nn.Module, length: int = 12) -> str:
    """A short hash of a model's weights: name caches of its outputs with it, so retraining invalidates them."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:length]
