"""Neural networks: tile backbones and heads, attention-based multiple-instance learning."""

from .backbones import SmallCNN, tile_backbone
from .mil import AttentionMIL
from .tile_regressor import TileRegressor

__all__ = ["SmallCNN", "tile_backbone", "TileRegressor", "AttentionMIL"]
