"""Pathology wing: whole-slide images to tiles, tile models, slide embeddings (a whole cohort's: ``mmsurv embed``, with
foundation models by name: :mod:`~mmsurv.pathology.recipes`) and slide views.

Used by notebook 01 (and the slide branches of 03 and 04). Reads slides through
:mod:`mmsurv.io.slides` / :mod:`mmsurv.io.tiles`; never imports the virtual cohort.
"""

from .cohort_embedding import embed_cohort, find_slides
from .embeddings import SlideBags, embed_slides
from .extractors import ExtractorSpec
from .feature_files import load_feature_folder, read_slide_features
from .recipes import RECIPES
from .slide_views import plot_tile_gallery, slide_browser, tile_values_by_slide
from .tile_models import fit_tile_classifier, fit_tile_regressor, predict_tiles, tile_targets
from .tiling import aggregate_tiles, tile_cohort

__all__ = [
    "tile_cohort",
    "aggregate_tiles",
    "embed_slides",
    "embed_cohort",
    "find_slides",
    "ExtractorSpec",
    "RECIPES",
    "load_feature_folder",
    "read_slide_features",
    "SlideBags",
    "tile_targets",
    "fit_tile_regressor",
    "fit_tile_classifier",
    "predict_tiles",
    "plot_tile_gallery",
    "slide_browser",
    "tile_values_by_slide",
]
