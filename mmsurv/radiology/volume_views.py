"""Looking at tumour cubes: three orthogonal slices with the contour and an overlay, and a slice viewer.

The cube's axes are (slice, row, column) = (feet-head, front-back, right-left), so an
*axial* view fixes the slice, a *coronal* view the row and a *sagittal* view the column.
ipywidgets is imported only when the viewer is built; headless runs use the static plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["VIEWS", "orthogonal_slice", "plot_orthogonal_slices", "volume_viewer"]

#: View name -> the cube axis it fixes.
VIEWS = {"axial": 0, "coronal": 1, "sagittal": 2}


def orthogonal_slice(volume: np.ndarray, view: str, index: int) -> np.ndarray:
    """One 2D slice of a (slice, row, column) cube, oriented head-up for coronal and sagittal views."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
    plane = np.take(volume, index, axis=VIEWS[view])
    return plane if view == "axial" else plane[::-1]


def _centre(mask: np.ndarray | None, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if mask is not None and np.any(mask):
        return tuple(int(round(c)) for c in np.argwhere(mask).mean(axis=0))  # type: ignore[return-value]
    return tuple(s // 2 for s in shape)  # type: ignore[return-value]


def _draw(ax: Any, volume: np.ndarray, view: str, index: int, mask: np.ndarray | None, overlay: np.ndarray | None, alpha: float) -> None:
    ax.imshow(orthogonal_slice(volume, view, index), cmap="gray", interpolation="nearest")
    if overlay is not None:
        ax.imshow(orthogonal_slice(overlay, view, index), cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
    if mask is not None and np.any(orthogonal_slice(mask, view, index)):
        ax.contour(orthogonal_slice(mask, view, index).astype(float), levels=[0.5], colors="lime", linewidths=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_orthogonal_slices(
    volume: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
    alpha: float = 0.35,
    title: str = "",
    axes: Any = None,
) -> Any:
    """Axial, coronal and sagittal slices through the tumour's centre.

    Parameters
    ----------
    volume : array, shape (s, s, s)
    mask : array, optional
        The contour (drawn as an outline); its centre picks the slices.
    overlay : array in [0, 1], optional
        E.g. a saliency or Grad-CAM map.
    alpha : float, default 0.35
    title : str
    axes : three matplotlib Axes, optional

    Returns
    -------
    array of three Axes
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
    centre = _centre(mask, volume.shape)
    for ax, (view, axis) in zip(axes, VIEWS.items()):
        _draw(ax, volume, view, centre[axis], mask, overlay, alpha)
        ax.set_title(f"{view}", fontsize=9)
    if title:
        axes[0].set_ylabel(title, fontsize=9)
    return axes


def volume_viewer(volume: np.ndarray, *, mask: np.ndarray | None = None, overlay: np.ndarray | None = None) -> Any:
    """An ipywidgets viewer: choose the view and the slice, show or hide the overlay.

    Returns the widget (display it as a cell's last expression).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    centre = _centre(mask, volume.shape)
    view = widgets.ToggleButtons(options=list(VIEWS), value="axial", description="view")
    index = widgets.IntSlider(value=centre[0], min=0, max=volume.shape[0] - 1, description="slice", continuous_update=False)
    opacity = widgets.FloatSlider(
        value=0.35 if overlay is not None else 0.0, min=0, max=1, step=0.05, description="overlay", disabled=overlay is None, continuous_update=False
    )
    output = widgets.Output()

    def redraw(*_):
        with output:
            output.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(4, 4))
            _draw(ax, volume, view.value, index.value, mask, overlay if opacity.value > 0 else None, opacity.value)
            ax.set_title(f"{view.value} slice {index.value}", fontsize=9)
            plt.show(fig)

    def new_view(change):
        axis = VIEWS[change["new"]]
        index.max = volume.shape[axis] - 1
        index.value = centre[axis]
        redraw()

    view.observe(new_view, names="value")
    index.observe(redraw, names="value")
    opacity.observe(redraw, names="value")
    redraw()
    return widgets.VBox([view, index, opacity, output])
