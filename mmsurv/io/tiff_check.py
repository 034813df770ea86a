"""Check a TIFF's structure before handing it to a slide reader.

OpenSlide reports a cut-off download as a decoding error on some tile, minutes into a job,
or not at all (it can return blank regions). Reading the TIFF directory is cheap, so we check
up front that every tile's bytes are inside the file and that the pyramid has a level small
enough for thumbnails and tissue masks.
"""

from __future__ import annotations

from pathlib import Path

import tifffile

from .errors import DataFormatError

__all__ = ["check_tiff_structure"]


def check_tiff_structure(path: Path, *, max_overview_px: int) -> None:
    """Raise :class:`DataFormatError` if ``path`` is not a complete, pyramidal TIFF.

    Parameters
    ----------
    path : Path
    max_overview_px : int
        The smallest image level must have its longer side at most this many pixels.
    """
    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            image_sizes = []
            for index, page in enumerate(pages):
                ends = [offset + count for offset, count in zip(page.dataoffsets, page.databytecounts)]
                if ends and max(ends) > size:
                    raise DataFormatError(
                        path,
                        f"truncated: image data of page {index} runs to byte {max(ends):,} but the file has "
                        f"{size:,} bytes (an interrupted download? fetch it again)",
                    )
                if page.is_tiled or index == 0:
                    image_sizes.append((page.imagewidth, page.imagelength))
    except DataFormatError:
        raise
    except Exception as error:  # tifffile raises several types for malformed files
        raise DataFormatError(path, f"not a readable TIFF ({type(error).__name__}: {error})") from error
    if not image_sizes:
        raise DataFormatError(path, "contains no image")
    smallest = min(image_sizes, key=lambda wh: wh[0] * wh[1])
    if max(smallest) > max_overview_px:
        raise DataFormatError(
            path,
            f"has no pyramid: its smallest level is {smallest[0]:,} x {smallest[1]:,} px, larger than "
            f"{max_overview_px:,} px, so a thumbnail would mean decoding the full image. Re-save it as a "
            "tiled pyramid, e.g. `vips tiffsave in.tif out.tif --tile --pyramid --compression jpeg`",
        )
