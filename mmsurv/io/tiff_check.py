"""Check a TIFF's structure before handing it to a slide reader.

OpenSlide reports a cut-off download as a decoding error on some tile, minutes into a job,
or not at all (it can return blank regions). Reading the TIFF directory is cheap, so we check
up front that every image directory can be read, that every tile's bytes are inside the file
and that the pyramid has a level small enough for thumbnails and tissue masks.

"Every image directory" includes SubIFDs: OME-TIFF (``bfconvert``, QuPath, tifffile) stores a
pyramid's reduced levels as SubIFDs of the full-resolution page rather than as pages of their
own, so a check of the top-level pages alone passes a file cut inside its reduced levels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import tifffile

from .errors import DataFormatError

__all__ = ["check_tiff_structure"]

#: tifffile logs these (and goes on) when a directory or a tag value lies past the end of the file
_STRUCTURE_WARNINGS = ("corrupted tag list", "corrupted IFD structure", "invalid value offset", "invalid tag value offset")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _pages_and_subifds(tif: tifffile.TiffFile, path: Path, size: int) -> Iterator[tuple[str, tifffile.TiffPage]]:
    """Every image directory of ``tif`` with a name for messages: top-level pages, then their SubIFDs (nested too)."""
    pending: list[tuple[str, tifffile.TiffPage]] = [(f"page {index}", page) for index, page in enumerate(tif.pages)]
    while pending:
        name, page = pending.pop(0)
        yield name, page
        for number, offset in enumerate(page.subifds or ()):
            where = f"SubIFD {number} of {name}"
            if not 0 < offset < size:
                raise DataFormatError(
                    path, f"truncated: {where} starts at byte {offset:,} but the file has {size:,} bytes (an interrupted download? fetch it again)"
                )
            tif.filehandle.seek(offset)
            try:
                sub = tifffile.TiffPage(tif, index=(*page.index, number) if isinstance(page.index, tuple) else (page.index, number))
            except Exception as error:
                raise DataFormatError(
                    path, f"truncated or corrupt: {where} (byte {offset:,}) cannot be read ({type(error).__name__}: {error})"
                ) from error
            pending.append((where, sub))


def check_tiff_structure(path: Path, *, max_overview_px: int) -> None:
    """Raise :class:`DataFormatError` if ``path`` is not a complete, pyramidal TIFF.

    Parameters
    ----------
    path : Path
    max_overview_px : int
        The smallest image level must have its longer side at most this many pixels.
    """
    size = path.stat().st_size
    collect = _Collect()
    logger = logging.getLogger("tifffile")
    logger.addHandler(collect)
    try:
        with tifffile.TiffFile(path) as tif:
            image_sizes = []
            for name, page in _pages_and_subifds(tif, path, size):
                ends = [offset + count for offset, count in zip(page.dataoffsets, page.databytecounts)]
                if ends and max(ends) > size:
                    raise DataFormatError(
                        path,
                        f"truncated: image data of {name} runs to byte {max(ends):,} but the file has "
                        f"{size:,} bytes (an interrupted download? fetch it again)",
                    )
                if page.is_tiled or name == "page 0":
                    image_sizes.append((page.imagewidth, page.imagelength))
    except DataFormatError:
        raise
    except Exception as error:  # tifffile raises several types for malformed files
        raise DataFormatError(path, f"not a readable TIFF ({type(error).__name__}: {error})") from error
    finally:
        logger.removeHandler(collect)
    broken = [message for message in collect.messages if any(sign in message for sign in _STRUCTURE_WARNINGS)]
    if broken:
        raise DataFormatError(path, f"truncated or corrupt: {broken[0]} (the file has {size:,} bytes; an interrupted download? fetch it again)")
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
