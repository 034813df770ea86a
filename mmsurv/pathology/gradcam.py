"""Where in a tile does a classifier look? Grad-CAM maps on tiles (per-tile class maps over a slide: :func:`mmsurv.io.slides.plot_tile_grid`).

Grad-CAM (Selvaraju et al. 2017) weighs each channel of a convolutional layer by the mean
gradient of the class score with respect to it, sums the channels and keeps the positive
part: a coarse map (the layer's resolution, e.g. 7 x 7 for a 224-px tile through ResNet-18)
of the regions that *raise* the score of the chosen class. It is computed here with captum's
``LayerGradCam`` and upsampled bilinearly to the tile.

Read the maps with care: they show what the network used, not what the pathologist would use,
and a map of a class the network did not predict is still defined (it highlights whatever
raised that class's score a little).

References
----------
Selvaraju R.R. et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
localization", ICCV 2017.
Coudray N. et al., "Classification and mutation prediction from non-small cell lung cancer
histopathology images using deep learning", Nat Med 24:1559-1567 (2018) - LUAD / LUSC /
normal tile classifier and its per-tile slide heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["default_cam_layer", "grad_cam", "plot_grad_cam"]


def default_cam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM uses when none is given: the last residual stage, else the last ``Conv2d``.

    For a torchvision ResNet (wrapped or not, e.g. ``TileRegressor("resnet18")``) this is
    ``layer4``, the output of the last residual block (1/32 of the tile's side). For
    :class:`~mmsurv.models.SmallCNN` it is the last ``Conv2d`` (1/8 of the tile's side, before
    the last pooling). Both are the deepest feature maps that still have a spatial layout.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    nn.Module
    """
    stages = [m for m in model.modules() if isinstance(getattr(m, "layer4", None), nn.Module)]
    if stages:
        return stages[-1].layer4
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convolutions:
        raise ValueError("the model has no Conv2d layer: pass layer= explicitly")
    return convolutions[-1]


def _as_image_batch(images: Any) -> torch.Tensor:
    """(n, 3, H, W) float in [0, 1] from a tensor or array, (n, 3, H, W) or (n, H, W, 3), float or uint8."""
    batch = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4:
        raise ValueError(f"images must have shape (n, 3, H, W) or (n, H, W, 3), got {tuple(batch.shape)}")
    if batch.shape[1] != 3 and batch.shape[-1] == 3:
        batch = batch.permute(0, 3, 1, 2)
    if batch.dtype == torch.uint8:
        batch = batch.float() / 255.0
    return batch.float()


def grad_cam(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target_class: int | Sequence[int],
    *,
    layer: nn.Module | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Grad-CAM maps of tiles for one class, upsampled to the tile and scaled to [0, 1].

    Parameters
    ----------
    model : nn.Module
        A tile classifier mapping (n, 3, H, W) images to (n, n_classes) scores, e.g.
        :class:`~mmsurv.models.TileRegressor` with a ``"small"`` or ``"resnet18"`` backbone.
    images : tensor or array
        Tiles as (n, 3, H, W) or (n, H, W, 3), float in [0, 1] or uint8 (as
        :class:`~mmsurv.io.tiles.TileDataset` returns them); a single tile is allowed.
    target_class : int or sequence of int
        The class whose score is explained: one for all tiles, or one per tile (e.g. each
        tile's predicted class).
    layer : nn.Module, optional
        The convolutional layer to explain. Default: :func:`default_cam_layer` (``layer4`` of a
        ResNet, the last ``Conv2d`` of anything else).
    batch_size : int, default 64
        Tiles per forward / backward pass.

    Returns
    -------
    ndarray, shape (n, H, W), float32
        Each map divided by its own maximum, so 1 is the most important region of that tile
        and 0 means no positive evidence for the class (an all-zero map when there is none
        anywhere). Maps are not comparable in absolute size between tiles.

    Notes
    -----
    The model is run in eval mode (batch norm uses its running statistics, dropout is off)
    with gradients enabled even inside ``torch.no_grad()``; each submodule's training flag is
    restored afterwards, and the parameters' ``.grad`` are left untouched. Images are moved
    to the model's device and memory format (channels-last when the model was trained that
    way, as :func:`mmsurv.training.train_model` does); the maps come back as plain C-ordered arrays.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    batch = _as_image_batch(images)
    n, height, width = batch.shape[0], batch.shape[2], batch.shape[3]
    targets = np.asarray(target_class, dtype=np.int64)
    if targets.ndim > 1 or (targets.ndim == 1 and len(targets) != n):
        raise ValueError(f"target_class must be one class index or one per image ({n}), got shape {targets.shape}")
    targets = np.broadcast_to(targets, (n,))
    layer = default_cam_layer(model) if layer is None else layer
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    channels_last = any(
        m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    modes = {module: module.training for module in model.modules()}
    model.eval()
    explainer = LayerGradCam(model, layer)
    maps = []
    try:
        with torch.inference_mode(False), torch.enable_grad():
            for start in range(0, n, batch_size):
                chunk = batch[start : start + batch_size].clone().to(device).contiguous(memory_format=memory_format)
                target = torch.as_tensor(targets[start : start + batch_size].copy(), device=device)
                attribution = explainer.attribute(chunk, target=target, relu_attributions=True)
                upsampled = LayerAttribution.interpolate(attribution.detach().float(), (height, width), interpolate_mode="bilinear")
                maps.append(upsampled[:, 0].contiguous().cpu().numpy())
    finally:
        for module, training in modes.items():
            module.train(training)
    cams = np.concatenate(maps).astype(np.float32)
    peak = cams.reshape(n, -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0)[:, None, None]
    return np.ascontiguousarray(np.clip(cams / scale, 0.0, 1.0))


def _display_images(images: Any) -> np.ndarray:
    """(n, H, W, 3) floats in [0, 1] for imshow."""
    return _as_image_batch(images).permute(0, 2, 3, 1).detach().cpu().numpy().clip(0, 1)


def plot_grad_cam(
    images: torch.Tensor | np.ndarray,
    cams: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    axes: Sequence[Any] | np.ndarray | None = None,
    cmap: str = "jet",
    alpha: float = 0.45,
) -> np.ndarray:
    """Tiles with their Grad-CAM maps laid over them as semi-transparent heat maps.

    Parameters
    ----------
    images : tensor or array
        The tiles given to :func:`grad_cam` (same shapes accepted).
    cams : ndarray, shape (n, H, W)
        Maps from :func:`grad_cam`, in [0, 1].
    titles : sequence of str, optional
        One per tile (e.g. ``"LUSC p=0.91"``).
    axes : sequence of n matplotlib Axes, optional
        Default: a new figure with one row of n panels.
    cmap : str, default "jet"
    alpha : float, default 0.45
        Opacity of the heat map.

    Returns
    -------
    ndarray of matplotlib Axes, shape (n,)
    """
    import matplotlib.pyplot as plt

    pictures = _display_images(images)
    cams = np.asarray(cams, dtype=float)
    if cams.shape != pictures.shape[:3]:
        raise ValueError(f"cams must have shape {pictures.shape[:3]} (one map per image), got {cams.shape}")
    n = len(pictures)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} images")
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(1.8 * n, 2.0), squeeze=False)
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < n:
        raise ValueError(f"need one axes per image ({n}), got {len(axes)}")
    for i, ax in enumerate(axes[:n]):
        ax.imshow(pictures[i])
        ax.imshow(cams[i], cmap=cmap, alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes[:n]
