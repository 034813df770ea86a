"""Frozen tile encoders for ``mmsurv embed``: a backbone, its weights, and a fingerprint of both.

An :class:`Extractor` is built from an :class:`ExtractorSpec` - the backbone's name, an optional
weights file and the seed of any random initialisation - so that a Ray actor on another machine
builds the very same network from the same few fields. Its fingerprint (a hash of the weights)
names the output folder and is stored in every feature file: features of different weights
never mix.

Weights files are read here, not in :mod:`mmsurv.models` (models never read files): PyTorch
checkpoints (``.pt``, ``.pth``, ``.bin``; a ``state_dict`` or ``model`` entry is unwrapped) and
``.safetensors``. They are checked against the network before any slide is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..environment import seeded_torch
from ..models.backbones import tile_backbone
from ..training import model_fingerprint
from .recipes import RECIPES, load_transformers_folder, recipe_encoder

__all__ = ["ExtractorSpec", "Extractor", "read_weights"]


@dataclass(frozen=True)
class ExtractorSpec:
    """What makes a frozen tile encoder: enough to rebuild it identically anywhere.

    Parameters
    ----------
    backbone : str, default "resnet50"
        A foundation-model recipe (``"uni"``, ``"uni2-h"``, ``"virchow2"``, ``"h-optimus-0"``,
        ``"prov-gigapath"``, ``"phikon-v2"``, ``"resnet50-trunc"``: see
        :mod:`mmsurv.pathology.recipes`), ``"resnet18"``, ``"resnet50"`` (or another torchvision
        ResNet), ``"small"``, or ``"timm:<model name>"``; see :func:`mmsurv.models.tile_backbone`.
    weights : str, optional
        A weights file the user downloaded (a folder for ``phikon-v2``). Required for a recipe.
        Without it, ResNets use torchvision's ImageNet weights when cached offline, and any
        other network starts from a random initialisation drawn with ``seed``.
    seed : int, default 0
    """

    backbone: str = "resnet50"
    weights: str | None = None
    seed: int = 0

    def build(self) -> Extractor:
        """The network, in evaluation mode on the CPU, with its fingerprint.

        Raises
        ------
        ValueError
            A recipe without weights (naming the file its model card offers), or weights that
            do not fit the network (naming the parameters).
        """
        if self.backbone in RECIPES:
            module, n_features = _recipe_module(self.backbone, self.weights)
        else:
            state = read_weights(self.weights) if self.weights else None
            with seeded_torch(self.seed):
                module, n_features = tile_backbone(self.backbone, pretrained=True, state_dict=state)
        module.eval()
        return Extractor(spec=self, module=module, n_features=n_features, fingerprint=model_fingerprint(module, length=16))


@dataclass
class Extractor:
    """A frozen tile encoder: ``extractor(images)`` maps uint8 or [0, 1] image batches to features."""

    spec: ExtractorSpec
    module: nn.Module
    n_features: int
    fingerprint: str

    @property
    def name(self) -> str:
        """The output folder's name: the backbone and the first 8 characters of the fingerprint."""
        return f"{self.spec.backbone.replace(':', '-').replace('/', '-')}-{self.fingerprint[:8]}"

    def to(self, device: str) -> Extractor:
        self.module.to(device)
        return self

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        return self.module(images)

    def check_tile_size(self, tile_px: int) -> None:
        """Run one blank tile through the network, so that a size it refuses fails before any slide is read.

        Raises
        ------
        ValueError
            The network does not accept ``tile_px``-pixel tiles (e.g. a ViT made for 224).
        """
        try:
            out = self(torch.zeros(1, 3, tile_px, tile_px, dtype=torch.uint8, device=next(self.module.parameters()).device))
        except (RuntimeError, AssertionError, ValueError) as error:
            raise ValueError(f"backbone {self.spec.backbone!r} does not take {tile_px}-px tiles: {error}") from error
        if out.shape != (1, self.n_features):
            raise ValueError(f"backbone {self.spec.backbone!r} gave features of shape {tuple(out.shape)}, expected (1, {self.n_features})")

    def settings(self) -> dict[str, object]:
        """The attributes every feature file of this extractor carries."""
        return {"extractor": self.name, "backbone": self.spec.backbone, "weights_fingerprint": self.fingerprint}


def _recipe_module(name: str, weights: str | None) -> tuple[nn.Module, int]:
    """A recipe's encoder with the user's weights (a recipe never runs on random weights here)."""
    recipe = RECIPES[name]
    if not weights:
        raise ValueError(
            f"backbone {name!r} ({recipe.model}) needs --weights: the file its model card offers ({recipe.weights_file}; "
            f"hub id {recipe.hub_id}, licence {recipe.licence}), downloaded by you - nothing is downloaded at run time"
        )
    if recipe.library == "transformers":
        return load_transformers_folder(name, weights), recipe.n_features
    return recipe_encoder(name, read_weights(weights)), recipe.n_features


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file (``.safetensors``, or PyTorch's pickle loaded with ``weights_only``).

    Raises
    ------
    ValueError
        The file is missing, cannot be read as weights, or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and safetensors each raise their own types
        raise ValueError(f"{path}: cannot be read as a weights file ({type(error).__name__}: {error})") from error
    for key in ("state_dict", "model", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: holds no tensors by name (expected a state dict)")
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
