"""Where in the cube does the CNN look? 3D Grad-CAM and gradient saliency.

* **Grad-CAM** (Selvaraju et al. 2017): weight the feature maps of a conv block by the mean
  gradient of the class score with respect to each map, sum, keep the positive part and
  upsample to the cube. Coarse (the block's resolution) but class-specific.
* **Gradient saliency** (Simonyan et al. 2014), averaged over a few noisy copies of the input
  (SmoothGrad, Smilkov et al. 2017): how much each voxel's intensity moves the score.

Both explain the score ``logit(target) - logit(other class)`` of one cube - by default the
evidence for "dead within 2 years"; use ``target=0`` to explain a confident "alive" - and
return a map the size of the model's input, scaled to [0, 1], to overlay with
:mod:`mmsurv.radiology.volume_views`.

:func:`saliency_sanity_check` runs the model-randomisation test of Adebayo et al. (2018,
"Sanity checks for saliency maps"): a map that an untrained copy of the network draws just as
well says little about what training taught it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.nn import functional as F

__all__ = ["grad_cam_3d", "gradient_saliency", "saliency_in_mask", "saliency_sanity_check"]


def _score(logits: torch.Tensor, target: int = 1) -> torch.Tensor:
    """The evidence for class ``target`` over the other class (a 2-class model's logit difference)."""
    if logits.shape[1] == 1:
        return logits[:, 0] if target == 1 else -logits[:, 0]
    return logits[:, target] - logits[:, 1 - target]


def _as_input(cube: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(cube), dtype=torch.float32, device=device)[None, None]


def _unit(values: np.ndarray) -> np.ndarray:
    values = np.maximum(values, 0.0)
    top = values.max()
    return values / top if top > 0 else values


def grad_cam_3d(model: nn.Module, cube: np.ndarray, layer: nn.Module, *, target: int = 1, device: str = "cpu") -> np.ndarray:
    """3D Grad-CAM of one class's score for one cube.

    Parameters
    ----------
    model : nn.Module
        Returns class logits (batch, 2).
    cube : array, shape (s, s, s)
        The model's input (central crop).
    layer : nn.Module
        The block whose output is explained, e.g. ``model.convolutions[2]`` (conv 3 of :class:`mmsurv.models.CT3DCNN`).
    target : int, default 1
        The class explained (1: dead within the horizon).
    device : str

    Returns
    -------
    array, shape (s, s, s), in [0, 1]
        All zeros when nothing in the cube speaks for ``target``.
    """
    stored: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        stored["maps"] = output

    handle = layer.register_forward_hook(keep)
    model.to(device).eval()
    try:
        score = _score(model(_as_input(cube, device)), target)
        model.zero_grad(set_to_none=True)
        score.sum().backward()
    finally:
        handle.remove()
    maps, gradients = stored["maps"], stored["maps"].grad
    weights = gradients.mean(dim=(2, 3, 4), keepdim=True)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=cube.shape, mode="trilinear", align_corners=False)
    return _unit(cam[0, 0].detach().cpu().numpy())


def gradient_saliency(
    model: nn.Module, cube: np.ndarray, *, target: int = 1, n_samples: int = 8, noise: float = 0.01, seed: int = 0, device: str = "cpu"
) -> np.ndarray:
    """SmoothGrad saliency of one class's score: mean absolute input gradient over noisy copies.

    Parameters
    ----------
    model : nn.Module
    cube : array, shape (s, s, s)
    target : int, default 1
    n_samples : int, default 8
        Noisy copies averaged (1 gives the plain gradient).
    noise : float, default 0.01
        Standard deviation of the added noise, in the input's units ((HU + 1024) / 4095: 0.01 is about 40 HU).
    seed : int
    device : str

    Returns
    -------
    array, shape (s, s, s), in [0, 1]
    """
    model.to(device).eval()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    base = _as_input(cube, device)
    # the noisy copies go through the network as one batch: in eval mode each copy's gradient is
    # its own, and one pass over n copies is several times faster than n passes over one
    jitter = torch.cat([torch.randn(base.shape, generator=generator) for _ in range(n_samples)]).to(device)
    noisy = (base + jitter * (noise if n_samples > 1 else 0.0)).requires_grad_(True)
    _score(model(noisy), target).sum().backward()
    return _unit(noisy.grad.abs().mean(dim=0)[0].detach().cpu().numpy())


def saliency_in_mask(saliency: np.ndarray, mask: np.ndarray) -> float:
    """The share of a map's mass inside ``mask``, over the share of the cube ``mask`` fills.

    1 means the map falls on the mask no more than on any other region of that size; above 1, it
    concentrates there. NaN when the mask is empty or fills the cube, or the map is all zeros.
    """
    mask = np.asarray(mask, dtype=bool)
    if saliency.shape != mask.shape:
        raise ValueError(f"saliency {saliency.shape} and mask {mask.shape} differ in shape")
    total, fill = float(saliency.sum()), float(mask.mean())
    if total == 0 or not 0 < fill < 1:
        return float("nan")
    return float(saliency[mask].sum()) / total / fill


def saliency_sanity_check(
    model: nn.Module, untrained: nn.Module, cubes: np.ndarray, masks: np.ndarray, *, seed: int = 0, device: str = "cpu"
) -> pd.DataFrame:
    """Gradient saliency of a trained network beside the same network before training.

    Parameters
    ----------
    model : nn.Module
        The trained network.
    untrained : nn.Module
        The same architecture at its initial weights (for a fair test, the very initialisation
        ``model`` was trained from).
    cubes, masks : arrays, shape (n, s, s, s)
        The model's inputs and their tumour contours (central crops).
    seed : int
        SmoothGrad's noise seed, the same for both networks.
    device : str

    Returns
    -------
    DataFrame, one row per cube
        ``enrichment_trained`` and ``enrichment_untrained`` (:func:`saliency_in_mask` of each
        map in the contour) and ``rank_correlation`` (Spearman, voxel by voxel, between the two
        maps: near 1, training changed little of what the map shows).
    """
    if len(cubes) != len(masks):
        raise ValueError(f"{len(cubes)} cubes but {len(masks)} masks")
    rows = []
    for cube, mask in zip(cubes, masks):
        trained_map, untrained_map = (gradient_saliency(net, cube, seed=seed, device=device) for net in (model, untrained))
        rows.append(
            {
                "enrichment_trained": saliency_in_mask(trained_map, mask),
                "enrichment_untrained": saliency_in_mask(untrained_map, mask),
                "rank_correlation": float(spearmanr(trained_map.ravel(), untrained_map.ravel()).statistic),
            }
        )
    return pd.DataFrame(rows, columns=["enrichment_trained", "enrichment_untrained", "rank_correlation"])
