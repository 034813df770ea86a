"""Check a TIFF's structure before handing it to a slide reader.

OpenSlide reports a cut-off download as a decoding error on some tile, minutes into a job,
or not at all (it can return blank regions). Reading the TIFF directory is cheap, so we check
up front that every image directory can be read, that every tile's bytes are inside the file
and that the pyramid has a level small enough for thumbnails and tissue masks.

Why the check walks the directory chain itself: real Aperio files (and most scanners' TIFFs)
write each directory *after* its image data, and each directory points to the next one. A cut
download therefore loses whole directories, not tile bytes, and tifffile only logs that the
next directory "lies past the end of the file" and stops - the file then opens with a pyramid
level (or the label, or everything) quietly missing. So we follow the chain from the header:
every directory, every tag value it points to and every next-directory pointer must lie
inside the file. This reads a few bytes per directory and no tile data.

"Every image directory" includes SubIFDs: OME-TIFF (``bfconvert``, QuPath, tifffile) stores a
pyramid's reduced levels as SubIFDs of the full-resolution page rather than as pages of their
own, so a check of the top-level pages alone passes a file cut inside its reduced levels.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import tifffile

from .errors import DataFormatError

__all__ = ["check_tiff_structure"]

#: tifffile logs these (and goes on) when a directory or a tag value lies past the end of the file
_STRUCTURE_WARNINGS = (
    "corrupted tag list",
    "corrupted IFD structure",
    "invalid value offset",
    "invalid tag value offset",
    "invalid page offset",
    "invalid offset to page",
    "invalid offset to first page",
)

_ADVICE = "an interrupted download? fetch it again"

#: name and bytes per value of each TIFF field type (TIFF 6.0 and BigTIFF); readers skip unknown types
_TYPES = {
    1: ("BYTE", 1), 2: ("ASCII", 1), 3: ("SHORT", 2), 4: ("LONG", 4), 5: ("RATIONAL", 8), 6: ("SBYTE", 1),
    7: ("UNDEFINED", 1), 8: ("SSHORT", 2), 9: ("SLONG", 4), 10: ("SRATIONAL", 8), 11: ("FLOAT", 4),
    12: ("DOUBLE", 8), 13: ("IFD", 4), 16: ("LONG8", 8), 17: ("SLONG8", 8), 18: ("IFD8", 8),
}  # fmt: skip
_OFFSET_TYPES = {4: "I", 13: "I", 16: "Q", 18: "Q"}  # types a SubIFDs tag may use, as struct codes
_SUBIFDS = 330

#: The tags a slide reader needs, with the field types the TIFF 6.0 / BigTIFF specifications allow
#: (SHORT or LONG for any size or count: both readers accept either). A tag of another type -
#: a flipped bit, a broken writer - makes tifffile hand a string or a fraction to code that expects
#: a number, which fails far from the file with a TypeError, or reads tiles from the wrong bytes.
_INTEGER = (3, 4, 16)
_REQUIRED_TYPES: dict[int, tuple[str, tuple[int, ...]]] = {
    254: ("NewSubfileType", _INTEGER),
    256: ("ImageWidth", _INTEGER),
    257: ("ImageLength", _INTEGER),
    258: ("BitsPerSample", _INTEGER),
    259: ("Compression", _INTEGER),
    262: ("PhotometricInterpretation", _INTEGER),
    270: ("ImageDescription", (2,)),
    273: ("StripOffsets", _INTEGER),
    277: ("SamplesPerPixel", _INTEGER),
    278: ("RowsPerStrip", _INTEGER),
    279: ("StripByteCounts", _INTEGER),
    284: ("PlanarConfiguration", _INTEGER),
    322: ("TileWidth", _INTEGER),
    323: ("TileLength", _INTEGER),
    324: ("TileOffsets", (4, 16)),
    325: ("TileByteCounts", _INTEGER),
    330: ("SubIFDs", (4, 13, 16, 18)),
    347: ("JPEGTables", (1, 7)),
    530: ("YCbCrSubSampling", _INTEGER),
}

#: real files have a few dozen tags; tifffile refuses more than this as corrupt
_MAX_TAGS = 4096


@dataclass(frozen=True)
class _Layout:
    """Sizes of the parts of a classic TIFF or a BigTIFF."""

    byteorder: str  # "<" or ">"
    bigtiff: bool

    @property
    def offset(self) -> str:
        return "Q" if self.bigtiff else "I"

    @property
    def offset_size(self) -> int:
        return struct.calcsize(self.offset)

    @property
    def count(self) -> str:  # the number of tags in a directory
        return "Q" if self.bigtiff else "H"

    @property
    def count_size(self) -> int:
        return struct.calcsize(self.count)

    @property
    def entry_size(self) -> int:  # code and type (2 bytes each), then count and value-or-offset (an offset's size each)
        return 4 + 2 * self.offset_size

    def unpack(self, fmt: str, data: bytes) -> tuple[int, ...]:
        return struct.unpack(self.byteorder + fmt, data)


_SIGNATURES = {
    b"II*\x00": _Layout("<", bigtiff=False),
    b"MM\x00*": _Layout(">", bigtiff=False),
    b"II+\x00": _Layout("<", bigtiff=True),
    b"MM\x00+": _Layout(">", bigtiff=True),
}


def _truncated(path: Path, what: str, size: int) -> DataFormatError:
    return DataFormatError(path, f"truncated: {what}, but the file has {size:,} bytes ({_ADVICE})")


def _read_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


def _read_header(fh: BinaryIO, path: Path, size: int) -> tuple[_Layout, int]:
    """The file's layout and the offset of its first directory, from the 8- or 16-byte header."""
    if size == 0:
        raise DataFormatError(path, f"is empty (0 bytes): not a readable TIFF ({_ADVICE})")
    head = _read_at(fh, 0, 16)
    layout = _SIGNATURES.get(head[:4])
    if layout is None:
        if any(signature.startswith(head) for signature in _SIGNATURES):  # 1 to 3 bytes of a TIFF signature
            raise _truncated(path, "only part of the TIFF header is there", size)
        raise DataFormatError(path, f"not a readable TIFF: it starts with {head[:8]!r}, a TIFF starts with b'II*\\x00' or b'MM\\x00*'")
    header_size = 16 if layout.bigtiff else 8
    if size < header_size:
        raise _truncated(path, f"the TIFF header needs {header_size} bytes", size)
    if layout.bigtiff and layout.unpack("HH", head[4:8]) != (8, 0):
        raise DataFormatError(path, f"not a readable TIFF: invalid BigTIFF header {head[:8]!r}")
    (first,) = layout.unpack(layout.offset, head[header_size - layout.offset_size : header_size])
    return layout, first


def _tag_name(code: int) -> str:
    return f"tag {code} ({_REQUIRED_TYPES[code][0]})" if code in _REQUIRED_TYPES else f"tag {code}"


def _check_entry(fh: BinaryIO, path: Path, size: int, layout: _Layout, entry: bytes, name: str) -> list[int]:
    """Check one tag of a directory: its field type, and that its values lie inside the file.

    Returns the SubIFD offsets when the tag is SubIFDs, else an empty list.
    """
    code, kind, count = layout.unpack("HH" + layout.offset, entry[: 4 + layout.offset_size])
    if code in _REQUIRED_TYPES and kind not in _REQUIRED_TYPES[code][1]:
        *others, last = (_TYPES[k][0] for k in _REQUIRED_TYPES[code][1])
        allowed = f"{', '.join(others)} or {last}" if others else last
        found = _TYPES[kind][0] if kind in _TYPES else f"code {kind}, which is no TIFF type"
        raise DataFormatError(path, f"corrupt: {_tag_name(code)} of {name} has field type {found}; a TIFF reader needs {allowed}")
    if kind not in _TYPES:
        return []  # the TIFF specification tells readers to skip tags of unknown types
    length = count * _TYPES[kind][1]
    value = entry[4 + layout.offset_size :]
    if length > layout.offset_size:  # too long to fit in the entry: the entry holds their offset
        (where,) = layout.unpack(layout.offset, value)
        if where + length > size:
            raise _truncated(path, f"the values of {_tag_name(code)} of {name} run from byte {where:,} to {where + length:,}", size)
        value = _read_at(fh, where, length) if code == _SUBIFDS else b""
    if code != _SUBIFDS:
        return []
    return list(layout.unpack(f"{count}{_OFFSET_TYPES[kind]}", value[:length]))


def _check_directory(fh: BinaryIO, path: Path, size: int, layout: _Layout, offset: int, name: str) -> tuple[int, list[int]]:
    """Check that one directory and all the tag values it points to lie inside the file.

    Returns the offset of the next directory in its chain (0 at the end) and its SubIFD offsets.
    """
    if offset + layout.count_size > size:
        raise _truncated(path, f"the directory of {name} starts at byte {offset:,}", size)
    (n_tags,) = layout.unpack(layout.count, _read_at(fh, offset, layout.count_size))
    if n_tags > _MAX_TAGS:
        raise DataFormatError(path, f"corrupt: the directory of {name} (byte {offset:,}) claims {n_tags:,} tags")
    end = offset + layout.count_size + n_tags * layout.entry_size + layout.offset_size
    if end > size:
        raise _truncated(path, f"the directory of {name} runs from byte {offset:,} to {end:,}", size)
    entries = _read_at(fh, offset + layout.count_size, n_tags * layout.entry_size + layout.offset_size)
    subifds: list[int] = []
    for start in range(0, n_tags * layout.entry_size, layout.entry_size):
        subifds += _check_entry(fh, path, size, layout, entries[start : start + layout.entry_size], name)
    (next_offset,) = layout.unpack(layout.offset, entries[-layout.offset_size :])
    return next_offset, subifds


def _check_directory_chain(path: Path, size: int) -> int:
    """Follow the chain of pages from the header, and the SubIFDs of each; return the number of pages.

    Raises :class:`DataFormatError` naming the first directory, tag value or next-directory
    pointer that lies past the end of the file, or a tag a reader needs that has the wrong type.
    """
    with path.open("rb") as fh:
        layout, first = _read_header(fh, path, size)
        if first == 0:
            raise DataFormatError(path, "contains no image (the header points to no directory)")
        chains: list[tuple[int, str]] = [(first, "page")]  # (first directory, how to name its members)
        seen: set[int] = set()
        n_pages = 0
        while chains:
            offset, kind = chains.pop(0)
            index = 0
            while offset:
                name = f"page {n_pages}" if kind == "page" else kind if index == 0 else f"{kind} (directory {index} of its chain)"
                if offset >= size:
                    raise _truncated(path, f"the directory of {name} starts at byte {offset:,}", size)
                if offset in seen and kind == "page":
                    raise DataFormatError(path, f"corrupt: the chain of pages loops back to byte {offset:,} at {name}")
                if offset in seen:  # SubIFDs may be both listed in the tag and chained (tifffile writes them so)
                    break
                seen.add(offset)
                offset, subifds = _check_directory(fh, path, size, layout, offset, name)
                chains += [(sub, f"SubIFD {number} of {name}") for number, sub in enumerate(subifds) if sub]
                n_pages += kind == "page"
                index += 1
        return n_pages


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
                raise _truncated(path, f"{where} starts at byte {offset:,}", size)
            tif.filehandle.seek(offset)
            try:
                sub = tifffile.TiffPage(tif, index=(*page.index, number) if isinstance(page.index, tuple) else (page.index, number))
            except Exception as error:
                raise DataFormatError(
                    path, f"truncated or corrupt: {where} (byte {offset:,}) cannot be read ({type(error).__name__}: {error})"
                ) from error
            pending.append((where, sub))


def _image_sizes(path: Path, size: int, n_pages: int) -> tuple[list[tuple[int, int]], int]:
    """(width, height) of page 0 and of every tiled level, and page 0's compression code, after checking that all image data is in the file."""
    collect = _Collect()
    logger = logging.getLogger("tifffile")
    logger.addHandler(collect)
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) != n_pages:  # the chain walk found more directories than tifffile reads
                raise DataFormatError(path, f"truncated or corrupt: tifffile reads {len(tif.pages)} of its {n_pages} pages")
            image_sizes = []
            compression = int(tif.pages[0].compression) if len(tif.pages) else 1
            for name, page in _pages_and_subifds(tif, path, size):
                ends = [offset + count for offset, count in zip(page.dataoffsets, page.databytecounts)]
                if ends and max(ends) > size:
                    raise _truncated(path, f"image data of {name} runs to byte {max(ends):,}", size)
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
        raise DataFormatError(path, f"truncated or corrupt: {broken[0]} (the file has {size:,} bytes; {_ADVICE})")
    return image_sizes, compression


def check_tiff_structure(path: Path, *, max_overview_px: int) -> int:
    """Raise :class:`DataFormatError` if ``path`` is not a complete, pyramidal TIFF; else return page 0's compression.

    Two passes, neither of which decodes a tile: the directory chain walked from the header
    (every directory and tag value inside the file), then tifffile's view of the pages (every
    tile's or strip's bytes inside the file, and the pyramid's levels).

    Parameters
    ----------
    path : Path
    max_overview_px : int
        The smallest image level must have its longer side at most this many pixels.

    Returns
    -------
    int
        The TIFF compression code of page 0 (the full-resolution level): 7 JPEG, 33003 / 33005
        Aperio JPEG 2000 (YCbCr / RGB samples), 34712 JPEG 2000, ...
    """
    size = path.stat().st_size
    n_pages = _check_directory_chain(path, size)
    image_sizes, compression = _image_sizes(path, size, n_pages)
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
    return compression
