"""The 3D CNN of Hosny et al. (2018) for CT tumour cubes, and a narrower variant for CPUs.

Architecture (the paper's "paper" variant, on a 50^3 cube at 1 mm):

=========  ==========================================================================
block      layers
=========  ==========================================================================
conv 1     Conv3D 64 filters 5^3, batch norm, LeakyReLU(0.1), dropout 0.25
conv 2     Conv3D 128 filters 3^3, batch norm, LeakyReLU(0.1), max-pool 3^3, dropout 0.25
conv 3     Conv3D 256 filters 3^3, batch norm, LeakyReLU(0.1), dropout 0.25
conv 4     Conv3D 512 filters 3^3, batch norm, LeakyReLU(0.1), max-pool 3^3, dropout 0.25
dense 1    512 units, batch norm, LeakyReLU(0.1), dropout 0.5
dense 2    256 units, batch norm, LeakyReLU(0.1), dropout 0.5  -> the "deep feature"
output     2 classes (alive / dead at 2 years), softmax in the loss
=========  ==========================================================================

With unpadded ("valid") convolutions a 50^3 cube leaves a 3^3 x 512 map after conv 4, which
is flattened. To accept other cube sizes the map passes an adaptive max-pool to that fixed
size, which does nothing at the paper's 50^3. The "narrow" variant has a quarter of the
filters and padded convolutions (it runs on 20-25^3 cubes on a CPU).

Dropout after the conv blocks is element-wise (``nn.Dropout``, like a Keras ``Dropout`` layer
on a conv output), not channel-wise (``nn.Dropout3d``): dropping a quarter of whole feature
maps after every block left the narrow variant unable to learn a tumour's texture within tens
of epochs (test AUC 0.66 against 1.00 element-wise, on the synthetic cubes of
tests/test_ct_pipeline.py, whose label is texture only).
"""

from __future__ import annotations

import torch
from torch import nn

from ..environment import seeded_torch

__all__ = ["CT3DCNN", "ARCHITECTURES", "ct_cnn"]

#: Filters per conv block, dense widths, padding and pooled map size of each variant.
ARCHITECTURES: dict[str, dict[str, object]] = {
    "paper": {"filters": (64, 128, 256, 512), "dense": (512, 256), "padded": False, "pooled": 3},
    "narrow": {"filters": (16, 32, 64, 128), "dense": (128, 64), "padded": True, "pooled": 2},
}


def _conv_block(inputs: int, filters: int, kernel: int, *, padded: bool, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv3d(inputs, filters, kernel, padding=kernel // 2 if padded else 0, bias=False),
        nn.BatchNorm3d(filters),
        nn.LeakyReLU(0.1),
    ]
    if pool:
        layers.append(nn.MaxPool3d(3))
    layers.append(nn.Dropout(0.25))  # element-wise (see the module notes)
    return nn.Sequential(*layers)


def _dense_block(inputs: int, units: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, units, bias=False), nn.BatchNorm1d(units), nn.LeakyReLU(0.1), nn.Dropout(0.5))


class CT3DCNN(nn.Module):
    """Four 3D conv blocks, two dense blocks, a 2-class output.

    Parameters
    ----------
    filters : 4 ints
        Filters of the conv blocks (the first has 5^3 kernels, the others 3^3).
    dense : 2 ints
        Units of the dense blocks; the second is the deep feature.
    padded : bool
        Padded ("same") convolutions instead of the paper's unpadded ones.
    pooled : int
        Side of the feature map after conv 4 (adaptive max-pool), flattened into dense 1.
    n_classes : int, default 2
    """

    def __init__(
        self,
        filters: tuple[int, ...] = (64, 128, 256, 512),
        dense: tuple[int, int] = (512, 256),
        *,
        padded: bool = False,
        pooled: int = 3,
        n_classes: int = 2,
    ) -> None:
        super().__init__()
        f1, f2, f3, f4 = filters
        self.convolutions = nn.Sequential(
            _conv_block(1, f1, 5, padded=padded, pool=False),
            _conv_block(f1, f2, 3, padded=padded, pool=True),
            _conv_block(f2, f3, 3, padded=padded, pool=False),
            _conv_block(f3, f4, 3, padded=padded, pool=True),
            nn.AdaptiveMaxPool3d(pooled),
        )
        self.dense = nn.Sequential(nn.Flatten(), _dense_block(f4 * pooled**3, dense[0]), _dense_block(dense[0], dense[1]))
        self.output = nn.Linear(dense[1], n_classes)

    @property
    def n_features(self) -> int:
        """Length of the deep feature."""
        return self.output.in_features

    def features(self, cubes: torch.Tensor) -> torch.Tensor:
        """The deep feature (the last dense layer) of each cube, shape (batch, n_features)."""
        return self.dense(self.convolutions(cubes))

    def forward(self, cubes: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (batch, n_classes), from cubes shaped (batch, 1, s, s, s)."""
        return self.output(self.features(cubes))

    def freeze_convolutions(self) -> None:
        """Fix the conv blocks (weights and batch-norm statistics) for transfer learning; the dense layers stay trainable."""
        for parameter in self.convolutions.parameters():
            parameter.requires_grad_(False)
        self.convolutions.eval()

    def train(self, mode: bool = True) -> CT3DCNN:
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.convolutions.parameters()):
            self.convolutions.eval()  # frozen blocks keep their batch-norm statistics and no dropout
        return self


def ct_cnn(architecture: str = "paper", *, n_classes: int = 2, seed: int | None = None) -> CT3DCNN:
    """Build a :class:`CT3DCNN` variant by name: ``"paper"`` or ``"narrow"``.

    With a ``seed``, the initial weights are drawn from that seed alone (in a forked random
    state, leaving the caller's untouched); without one, from PyTorch's global random state.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    with seeded_torch(seed):
        return CT3DCNN(**ARCHITECTURES[architecture], n_classes=n_classes)  # type: ignore[arg-type]
