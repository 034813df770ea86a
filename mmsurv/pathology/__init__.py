"""Pathology wing: whole-slide images to tiles, tile models, slide embeddings and slide views.

Used by notebook 01 (and the slide branches of 03 and 04). Reads slides through
:mod:`mmsurv.io.slides` / :mod:`mmsurv.io.tiles`; never imports the virtual cohort.
"""

from .embeddings import SlideBags, embed_slides
from .slide_views import plot_tile_gallery, slide_browser, tile_values_by_slide
from .tile_models import fit_tile_classifier, fit_tile_regressor, predict_tiles, tile_targets
from .tiling import aggregate_tiles, tile_cohort

__all__ = [
    "tile_cohort",
    "aggregate_tiles",
    "embed_slides",
    "SlideBags",
    "tile_targets",
    "fit_tile_regressor",
    "fit_tile_classifier",
    "predict_tiles",
    "plot_tile_gallery",
    "slide_browser",
    "tile_values_by_slide",
]
