"""Neural networks: tile backbones and heads, attention-based multiple-instance learning, a 3D CT CNN."""

from .backbones import SmallCNN, tile_backbone
from .cnn3d import CT3DCNN, ct_cnn
from .mil import AttentionMIL
from .tile_regressor import TileRegressor

__all__ = ["CT3DCNN", "ct_cnn", "SmallCNN", "tile_backbone", "TileRegressor", "AttentionMIL"]
