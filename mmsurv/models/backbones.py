"""Image backbones for tiles: torchvision's ResNets (18 to 152), timm's models, or a small CNN for CPU smoke runs.

Pretrained ImageNet weights come through torchvision's ``weights=`` argument, exactly as with
internet access - but the kit never downloads at run time. If the weights file is already in
torch's hub cache (``~/.cache/torch/hub/checkpoints``), it is used; otherwise the network
starts from random initialisation and a warning says so.

Any backbone also takes a ``state_dict`` the caller loaded (a foundation model's checkpoint a
user downloaded): it must fit the network exactly, apart from a classification head, which is
dropped. Published pathology foundation models (UNI, Virchow2, ...) need architecture arguments
and a pooling that ``timm:<name>`` does not give: build them through their recipes,
:mod:`mmsurv.pathology.recipes`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

__all__ = ["SmallCNN", "tile_backbone", "load_matching_weights", "BACKBONES"]

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "small")

#: Parameter names of classification heads, which a checkpoint may carry and a feature extractor drops.
_HEAD_PREFIXES = ("fc.", "head.", "heads.", "classifier.", "head_dist.")


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


def tile_backbone(name: str = "resnet18", *, pretrained: bool = True, state_dict: Mapping[str, torch.Tensor] | None = None) -> tuple[nn.Module, int]:
    """A feature extractor for tiles and the size of the feature vector it returns.

    Parameters
    ----------
    name : str, default "resnet18"
        ``"resnet18"`` ... ``"resnet152"``, ``"small"``, or ``"timm:<model name>"`` (any model of
        the timm library, e.g. ``"timm:vit_small_patch16_224"``). Any ResNet accepts any tile
        size (its global average pooling makes the input size free): the paper's "RNet" is a
        ResNet-152 on its own tile size.
    pretrained : bool, default True
        Use torchvision's ImageNet weights when they are available offline (ResNets only).
    state_dict : mapping, optional
        Weights to load instead (see the module notes); the network then normalises its input
        with ImageNet's channel statistics (timm: the model's own).

    Returns
    -------
    (module, n_features)
        ``module(images)`` maps (batch, 3, H, W) images in [0, 1] to (batch, n_features).

    Raises
    ------
    ValueError
        Unknown name, or ``state_dict`` does not fit the network (the message lists the
        missing, unexpected and misshapen parameters).
    """
    if name == "small":
        model = SmallCNN()
        if state_dict is not None:
            load_matching_weights(model, state_dict, name)
        return model, model.out_features
    if name.startswith("timm:"):
        return _timm_backbone(name, state_dict)
    if name in BACKBONES:
        from torchvision.models import get_model, get_model_weights

        weights = get_model_weights(name).IMAGENET1K_V1 if pretrained and state_dict is None else None
        if weights is not None and not _cached_weights_available(weights):
            warnings.warn(
                f"ImageNet weights for {name} are not in torch's hub cache and nothing is downloaded at run time: starting from random initialisation",
                stacklevel=2,
            )
            weights = None
        model = get_model(name, weights=weights)
        n_features = model.fc.in_features
        model.fc = nn.Identity()
        if state_dict is not None:
            load_matching_weights(model, state_dict, name)
        return _Normalised(model, imagenet=weights is not None or state_dict is not None), n_features
    raise ValueError(f"unknown backbone {name!r}; choose from {BACKBONES} or 'timm:<model name>'")


def _timm_backbone(name: str, state_dict: Mapping[str, torch.Tensor] | None) -> tuple[nn.Module, int]:
    import timm
    from timm.data import resolve_model_data_config

    model_name = name.removeprefix("timm:")
    try:
        model = timm.create_model(model_name, pretrained=False, num_classes=0)
    except RuntimeError as error:  # timm's "Unknown model"
        raise ValueError(f"backbone {name!r}: {error}") from error
    if state_dict is not None:
        load_matching_weights(model, state_dict, name)
    config = resolve_model_data_config(model)
    return _Normalised(model, mean=config["mean"], std=config["std"]), model.num_features


def load_matching_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], name: str, *, assign: bool = False) -> None:
    """Load ``state_dict`` into ``model`` only if it fits exactly (a classification head aside).

    A ``module.`` prefix (saved from ``DataParallel``) is removed first. With ``assign=True`` the
    checkpoint's tensors replace the model's (for a model built on the meta device: no memory or
    time spent on weights that are overwritten anyway).

    Raises
    ------
    ValueError
        Naming up to three missing, unexpected and misshapen parameters each.
    """
    state = {key.removeprefix("module."): value for key, value in state_dict.items()}
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own and not key.startswith(_HEAD_PREFIXES)]
    misshapen = [
        f"{key} {tuple(state[key].shape)} (the network has {tuple(own[key].shape)})"
        for key in own
        if key in state and state[key].shape != own[key].shape
    ]
    if missing or unexpected or misshapen:
        kinds = (("missing", missing), ("unexpected", unexpected), ("of another shape", misshapen))
        problems = [f"{len(found)} {what} ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''})" for what, found in kinds if found]
        raise ValueError(f"these weights do not fit backbone {name!r}: parameters {'; '.join(problems)}")
    model.load_state_dict({key: state[key] for key in own}, assign=assign)


class _Normalised(nn.Module):
    """Apply ImageNet channel normalisation (for pretrained weights) before the network."""

    def __init__(
        self, network: nn.Module, imagenet: bool = True, mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None
    ) -> None:
        super().__init__()
        self.network = network
        if mean is None or std is None:
            mean, std = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if imagenet else ([0.5] * 3, [0.25] * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images - self.mean) / self.std)
