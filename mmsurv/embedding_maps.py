"""Two-dimensional maps of learned features (UMAP), coloured by class, cohort or batch.

A UMAP map is a picture for looking, not a measurement: distances between clusters and
cluster sizes are not meaningful, and a different ``seed`` or ``n_neighbors`` redraws it. Use
it to ask "do tiles of one class sit together?" or "do samples group by hospital rather than
by tumour type?" (a batch effect), and answer with a metric.

umap-learn is imported only when :func:`umap_coordinates` is called: importing it is slow, and
the first fit of a session spends most of its time in numba's just-in-time compilation.
Measured on two shared CPU cores for 200 points x 32 features: import 13-20 s, first fit
about 20 s, the next fit 0.4-0.5 s.

References
----------
McInnes L., Healy J. & Melville J., "UMAP: Uniform Manifold Approximation and Projection for
Dimension Reduction", arXiv:1802.03426 (2018).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["umap_coordinates", "plot_embedding_map"]


def umap_coordinates(features: np.ndarray, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """Embed feature vectors in two dimensions with UMAP, after standardising each feature.

    Parameters
    ----------
    features : array-like, shape (n, d)
        One row per sample (e.g. slide embeddings, tile features, omics factors); n >= 4.
    seed : int, default 0
        UMAP's ``random_state``: the same seed and data give the same map. Fixing it also
        makes UMAP run single-threaded (its "n_jobs overridden" warning is silenced here).
    n_neighbors : int, default 15
        Size of the neighbourhood that defines local structure (larger: more global
        picture). Clipped to n - 1 for small data sets.
    min_dist : float, default 0.1
        How tightly points may pack in the map.

    Returns
    -------
    ndarray, shape (n, 2), float

    Notes
    -----
    Each feature is centred and divided by its standard deviation (constant features are
    only centred), so features on large scales do not dominate the Euclidean neighbourhoods.
    """
    features = np.asarray(features, dtype=float)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (n_samples, n_features), got shape {features.shape}")
    n = features.shape[0]
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 samples, got {n}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be at least 2, got {n_neighbors}")
    spread = features.std(axis=0)
    standardised = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Tensorflow not installed.*", category=ImportWarning)
        import umap  # slow: compiles numba functions on first import

    reducer = umap.UMAP(n_components=2, n_neighbors=min(int(n_neighbors), n - 1), min_dist=min_dist, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value .* overridden.*", category=UserWarning)
        coordinates = reducer.fit_transform(standardised)
    return np.asarray(coordinates, dtype=float)


def _colours(categories: Sequence[Any], palette: Mapping[Any, Any] | Sequence[Any] | None) -> dict[Any, Any]:
    if isinstance(palette, Mapping):
        missing = [c for c in categories if c not in palette]
        if missing:
            raise ValueError(f"palette has no colour for {missing}")
        return {c: palette[c] for c in categories}
    if palette is None:
        cmap = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")
        palette = [cmap(i % cmap.N) for i in range(len(categories))]
    if len(palette) < len(categories):
        raise ValueError(f"palette has {len(palette)} colours for {len(categories)} categories")
    return dict(zip(categories, palette))


def plot_embedding_map(
    coordinates: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    palette: Mapping[Any, Any] | Sequence[Any] | None = None,
) -> plt.Axes:
    """Scatter a 2-D map with one colour per category and a legend.

    Parameters
    ----------
    coordinates : array-like, shape (n, 2)
        E.g. from :func:`umap_coordinates`.
    labels : array-like, shape (n,)
        A category per point (class name, cohort, batch); categories appear in sorted order.
    ax : matplotlib Axes, optional
    title : str, optional
    palette : mapping of category -> colour, or sequence of colours, optional
        Default: matplotlib's ``tab10`` (``tab20`` beyond ten categories).

    Returns
    -------
    matplotlib Axes
    """
    coordinates = np.asarray(coordinates, dtype=float)
    labels = np.asarray(labels)
    if coordinates.ndim != 2 or coordinates.shape[1] != 2:
        raise ValueError(f"coordinates must have shape (n, 2), got {coordinates.shape}")
    if labels.shape != (len(coordinates),):
        raise ValueError(f"labels must have one entry per point ({len(coordinates)}), got shape {labels.shape}")
    categories = list(np.unique(labels))
    colours = _colours(categories, palette)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    size = max(4.0, min(30.0, 3000.0 / max(len(coordinates), 1)))
    for category in categories:
        chosen = labels == category
        ax.scatter(*coordinates[chosen].T, s=size, color=colours[category], alpha=0.8, linewidths=0, label=f"{category} (n = {chosen.sum()})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.legend(fontsize=8, markerscale=1.5, frameon=False, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    return ax
