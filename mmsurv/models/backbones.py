"""Image backbones for tiles: torchvision's ResNets (18 to 152), or a small CNN for CPU smoke runs.

Pretrained ImageNet weights come through torchvision's ``weights=`` argument, exactly as with
internet access - but the kit never downloads at run time. If the weights file is already in
torch's hub cache (``~/.cache/torch/hub/checkpoints``), it is used; otherwise the network
starts from random initialisation and a warning says so.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["SmallCNN", "tile_backbone", "BACKBONES"]

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "small")


class SmallCNN(nn.Module):
    """Four convolution blocks (conv 3x3, batch norm, ReLU, max-pool) and global average pooling.

    About 0.1 M parameters: fast enough to train on a CPU in the notebooks' smoke mode.

    Parameters
    ----------
    width : int, default 32
        Channels of the first block (doubled in the third).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        channels = [3, width // 2, width, width * 2, width * 2]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = channels[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def _cached_weights_available(weights: object) -> bool:
    """Whether torchvision's weights file is already in the hub cache (no download needed)."""
    url = getattr(weights, "url", "")
    return bool(url) and (Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]).is_file()


def tile_backbone(name: str = "resnet18", *, pretrained: bool = True) -> tuple[nn.Module, int]:
    """A feature extractor for tiles and the size of the feature vector it returns.

    Parameters
    ----------
    name : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "small"}, default "resnet18"
        Any ResNet accepts any tile size (its global average pooling makes the input size free):
        the paper's "RNet" is a ResNet-152 on its own tile size.
    pretrained : bool, default True
        Use ImageNet weights when they are available offline (ResNets only).

    Returns
    -------
    (module, n_features)
        ``module(images)`` maps (batch, 3, H, W) images in [0, 1] to (batch, n_features).
    """
    if name == "small":
        model = SmallCNN()
        return model, model.out_features
    if name in BACKBONES:
        from torchvision.models import get_model, get_model_weights

        weights = get_model_weights(name).IMAGENET1K_V1 if pretrained else None
        if weights is not None and not _cached_weights_available(weights):
            warnings.warn(
                f"ImageNet weights for {name} are not in torch's hub cache and nothing is downloaded at run time: starting from random initialisation",
                stacklevel=2,
            )
            weights = None
        model = get_model(name, weights=weights)
        n_features = model.fc.in_features
        model.fc = nn.Identity()
        return _Normalised(model, imagenet=weights is not None), n_features
    raise ValueError(f"unknown backbone {name!r}; choose from {BACKBONES}")


class _Normalised(nn.Module):
    """Apply ImageNet channel normalisation (for pretrained weights) before the network."""

    def __init__(self, network: nn.Module, imagenet: bool) -> None:
        super().__init__()
        self.network = network
        mean, std = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if imagenet else ([0.5] * 3, [0.25] * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images - self.mean) / self.std)
