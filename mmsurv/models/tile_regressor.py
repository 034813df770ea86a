"""A tile-level regressor: backbone features -> a linear layer with one output per target."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import tile_backbone

__all__ = ["TileRegressor"]


class TileRegressor(nn.Module):
    """Predict continuous slide-level targets (e.g. a proliferation score) from each tile.

    Every tile of a slide is trained with the slide's label (weak supervision); slide
    predictions are aggregated afterwards.

    Parameters
    ----------
    backbone : str, default "resnet18"
        One of :data:`~mmsurv.models.backbones.BACKBONES` (ResNet-18 to -152, or "small").
    n_outputs : int, default 1
    pretrained : bool, default True
        ImageNet weights when available offline (see :func:`tile_backbone`).
    dropout : float, default 0.2
    """

    def __init__(self, backbone: str = "resnet18", n_outputs: int = 1, *, pretrained: bool = True, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone, n_features = tile_backbone(backbone, pretrained=pretrained)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, n_outputs))
        self.n_features = n_features

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's feature vector of each tile, shape (batch, n_features)."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))
