"""Slide reader, tissue mask, tile grid and tile dataset, on slides the virtual cohort writes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from scipy.stats import spearmanr

from mmsurv.io import DataFormatError
from mmsurv.io.gdc import read_sample_sheet, sample_files
from mmsurv.io.slides import TissueMask, open_slide, plot_tile_grid, tile_grid, tissue_mask
from mmsurv.io.tiles import TileDataset
from mmsurv.virtual.slide_writer import write_svs
from mmsurv.virtual.tissue import render_tissue, tissue_recipe


@pytest.fixture(scope="module")
def brca_slides(virtual_files):
    cohort = virtual_files["brca"]
    sheet = read_sample_sheet(cohort.sample_sheet)
    return cohort, sample_files(sheet, cohort.gdc, "Slide Image")


@pytest.mark.parametrize("backend", ["openslide", "tiffslide"])
def test_virtual_slide_opens_like_an_aperio_file(brca_slides, backend):
    _, slides = brca_slides
    with open_slide(next(iter(slides.values())), backend=backend) as slide:
        assert slide.backend == backend
        assert slide._handle.properties[f"{backend}.vendor"] == "aperio"  # recognised as Aperio SVS, as TCGA slides are
        assert slide.mpp == pytest.approx(1.0)
        assert slide.level_count >= 2
        assert slide.level_downsamples[1] == pytest.approx(2.0, rel=0.01)
        width, height = slide.dimensions
        assert width == height == 1200
        region = slide.read_region(300, 300, 0, 64, 64)
        assert region.shape == (64, 64, 3) and region.dtype == np.uint8


def test_auto_backend_reads_jpeg_tiles_with_tiffslide(brca_slides):
    _, slides = brca_slides
    with open_slide(next(iter(slides.values()))) as slide:
        assert slide.backend == "tiffslide"
    with pytest.raises(ValueError, match="backend must be one of"):
        open_slide(next(iter(slides.values())), backend="pillow")


@pytest.fixture(scope="module")
def slides_by_compression(tmp_path_factory):
    """One 1,536 x 1,280 px tissue region written three times: JPEG, Aperio JPEG 2000 YCbCr (33003) and RGB (33005)."""
    recipe = tissue_recipe(0.5, 0.0, width_um=768, height_um=640, seed=3)
    region = lambda x, y, w, h, m: render_tissue(recipe, x, y, w, h, m)  # noqa: E731
    folder = tmp_path_factory.mktemp("compressions")
    paths = {c: write_svs(folder / f"{c}.svs", region, 1536, 1280, 0.5, compression=c) for c in ("jpeg", "jpeg2000-ycbcr", "jpeg2000-rgb")}
    return paths, region(200 * 0.5, 300 * 0.5, 512, 512, 0.5).astype(int)


@pytest.mark.parametrize(("compression", "code"), [("jpeg", 7), ("jpeg2000-ycbcr", 33003), ("jpeg2000-rgb", 33005)])
def test_auto_backend_follows_the_compression_and_every_one_gives_the_true_colours(slides_by_compression, compression, code):
    paths, truth = slides_by_compression
    with tifffile.TiffFile(paths[compression]) as tif:
        assert tif.pages[0].compression == code
    with open_slide(paths[compression]) as slide:
        assert slide.backend == ("tiffslide" if compression == "jpeg" else "openslide")
        error = np.abs(slide.read_region(200, 300, 0, 512, 512).astype(int) - truth).mean(axis=(0, 1))
        assert error.max() < 4, error  # lossy coding: a few grey levels on average, per channel
        grid = tile_grid(slide, mpp=1.0, tile_px=64, min_tissue=0.5)
    dataset = TileDataset(grid, uint8=True)
    tiles = dataset.__getitems__(list(range(min(8, len(grid)))))  # strip reads, through the same choice
    dataset.close()
    first = grid.tiles.iloc[0]
    with open_slide(paths["jpeg"]) as reference:
        expected = reference.read_region(int(first["x"]), int(first["y"]), grid.level, grid.read_px, grid.read_px)
    assert np.abs(tiles[0]["image"].numpy().transpose(1, 2, 0).astype(int) - expected.astype(int)).mean() < 4


def test_tiffslide_is_refused_on_aperio_ycbcr_jpeg2000_whose_colours_it_gets_wrong(slides_by_compression):
    paths, truth = slides_by_compression
    path = paths["jpeg2000-ycbcr"]
    with pytest.raises(DataFormatError, match=r"jpeg2000-ycbcr\.svs.*33003.*tiffslide.*colour"):
        open_slide(path, backend="tiffslide")
    import tiffslide  # what the refusal prevents: tiffslide on its own returns the YCbCr samples as RGB

    with tiffslide.TiffSlide(str(path)) as raw:
        wrong = np.asarray(raw.read_region((200, 300), 0, (512, 512)).convert("RGB")).astype(int)
    assert np.abs(wrong - truth).mean() > 20


def test_backends_return_the_same_pixels(brca_slides):
    _, slides = brca_slides
    path = next(iter(slides.values()))
    with open_slide(path, backend="openslide") as a, open_slide(path, backend="tiffslide") as b:
        for level in range(a.level_count):
            assert np.abs(a.read_region(256, 256, level, 96, 96).astype(int) - b.read_region(256, 256, level, 96, 96).astype(int)).max() <= 2


def test_pixels_match_the_recipe_at_every_level(tmp_path):
    recipe = tissue_recipe(0.5, 0.0, width_um=1024, height_um=1024, seed=5)
    path = write_svs(tmp_path / "s.svs", lambda x, y, w, h, m: render_tissue(recipe, x, y, w, h, m), 1024, 1024, 1.0)
    with open_slide(path) as slide:
        for level in range(slide.level_count):
            mpp = slide.level_mpp(level)
            read = slide.read_region(128, 128, level, 64, 64).astype(float)
            expected = render_tissue(recipe, 128.0, 128.0, 64, 64, mpp).astype(float)
            assert np.abs(read - expected).mean() < 6.0  # JPEG at quality 85


def test_tissue_mask_matches_the_rendered_tissue(brca_slides):
    _, slides = brca_slides
    with open_slide(next(iter(slides.values()))) as slide:
        mask = tissue_mask(slide, mpp=8.0)
        thumbnail = slide.thumbnail(8.0).astype(float)
        background = np.array([244.0, 243.0, 246.0])
        truth = np.abs(thumbnail - background).sum(axis=-1) > 40
        truth = truth[: mask.mask.shape[0], : mask.mask.shape[1]]
        intersection = (mask.mask & truth).sum()
        assert intersection / (mask.mask | truth).sum() > 0.85
        assert 0.2 < mask.tissue_fraction < 0.9


def test_tile_grid_keeps_tissue_tiles_inside_the_slide(brca_slides):
    _, slides = brca_slides
    with open_slide(next(iter(slides.values()))) as slide:
        grid = tile_grid(slide, mpp=2.0, tile_px=64, min_tissue=0.6)
        assert grid.level == 1 and grid.read_px == 64
        assert len(grid) > 10
        side = grid.tile_um / slide.mpp
        assert (grid.tiles["x"] + side <= slide.dimensions[0]).all() and (grid.tiles["y"] + side <= slide.dimensions[1]).all()
        assert (grid.tiles["tissue_fraction"] >= 0.6).all()
        loose = tile_grid(slide, mpp=2.0, tile_px=64, min_tissue=0.0)
        assert len(loose) > len(grid)
        with pytest.raises(ValueError, match="finer than the scan"):
            tile_grid(slide, mpp=0.25)


def test_tile_dataset_reads_lazily_and_strip_reads_equal_single_reads(brca_slides):
    _, slides = brca_slides
    paths = list(slides.values())[:2]
    grids = []
    for path in paths:
        with open_slide(path) as slide:
            grids.append(tile_grid(slide, mpp=1.5, tile_px=48, min_tissue=0.5))  # 1.5 um/px: read at level 0, resized
    dataset = TileDataset(grids, targets=np.arange(sum(len(g) for g in grids), dtype=float))
    assert dataset._open == {}  # nothing opened until a tile is asked for
    batch = list(range(12))
    strip = dataset.__getitems__(batch)
    for index in batch:
        single = dataset[index]
        assert single["image"].shape == (3, 48, 48)
        assert torch.allclose(strip[index]["image"], single["image"], atol=1 / 255)
        assert single["target"].item() == index
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=2)
    seen = torch.cat([b["index"] for b in loader])
    assert sorted(seen.tolist()) == list(range(len(dataset)))


def test_planted_proliferation_is_visible_in_the_pixels(brca_slides):
    cohort, slides = brca_slides
    truth = cohort.truth.set_index("patient_id")
    darkness, proliferation = [], []
    for sample, path in slides.items():
        with open_slide(path) as slide:
            grid = tile_grid(slide, mpp=1.0, tile_px=128, min_tissue=0.9)
            tiles = TileDataset(grid)
            pixels = torch.stack([tiles[i]["image"] for i in range(min(len(tiles), 8))])
        brightness = pixels.mean(dim=1)
        typical = brightness.flatten(1).median(dim=1).values[:, None, None]
        darkness.append(float((brightness < 0.75 * typical).float().mean()))  # share of nuclear pixels, whatever the staining
        proliferation.append(truth.loc[sample[:12], "proliferation"])
    # a crude pixel count, diluted by stroma tiles, lymphocytes and staining differences: still clearly positive
    assert spearmanr(darkness, proliferation).statistic > 0.4


def test_plot_tile_grid_outlines_and_heatmap(brca_slides):
    import matplotlib

    matplotlib.use("Agg")
    _, slides = brca_slides
    with open_slide(next(iter(slides.values()))) as slide:
        grid = tile_grid(slide, mpp=2.0, tile_px=64)
        assert plot_tile_grid(slide, grid).get_title()
        plot_tile_grid(slide, grid, values=np.linspace(0, 1, len(grid)))
        with pytest.raises(ValueError, match="one entry per tile"):
            plot_tile_grid(slide, grid, values=np.zeros(3))


# ---------------------------------------------------------------- bad input


def _small_slide(path):
    recipe = tissue_recipe(0.0, 0.0, width_um=1024, height_um=1024, seed=1)
    return write_svs(path, lambda x, y, w, h, m: render_tissue(recipe, x, y, w, h, m), 1024, 1024, 1.0)


def test_truncated_slide_is_named_and_refused(tmp_path):
    path = _small_slide(tmp_path / "whole.svs")
    cut = tmp_path / "cut.svs"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match=r"cut\.svs.*truncated"):
        open_slide(cut)


def test_corrupt_slide_is_named_and_refused(tmp_path):
    path = tmp_path / "garbage.svs"
    path.write_bytes(b"this is not a tiff" * 100)
    with pytest.raises(DataFormatError, match=r"garbage\.svs.*not a readable TIFF"):
        open_slide(path)
    with pytest.raises(DataFormatError, match="no such slide"):
        open_slide(tmp_path / "absent.svs")


def test_huge_tiff_without_pyramid_is_refused(tmp_path):
    # a 50,000 x 50,000 px single-level TIFF: blank tiles compress to almost nothing
    blank = np.full((512, 512, 3), 240, dtype=np.uint8)
    path = tmp_path / "flat.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            (blank for _ in range(98 * 98)),
            shape=(50_000, 50_000, 3),
            dtype=np.uint8,
            tile=(512, 512),
            compression="deflate",
            photometric="rgb",
            metadata=None,
        )
    with pytest.raises(DataFormatError, match=r"flat\.tif.*no pyramid.*50,000 x 50,000"):
        open_slide(path)


def test_slide_without_resolution_needs_mpp(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.full((256, 256, 3), 200, np.uint8), tile=(128, 128), photometric="rgb", metadata=None)
    with pytest.raises(DataFormatError, match="no microns-per-pixel"):
        open_slide(path)
    with open_slide(path, mpp=0.5) as slide:
        assert slide.mpp == 0.5


def test_tile_dataset_pickles_without_open_handles(brca_slides):
    import pickle

    _, slides = brca_slides
    with open_slide(next(iter(slides.values()))) as slide:
        dataset = TileDataset(tile_grid(slide, mpp=2.0, tile_px=32))
    dataset[0]  # opens a handle in this process
    clone = pickle.loads(pickle.dumps(dataset))  # what a 'spawn' DataLoader worker receives
    assert clone._open == {} and torch.equal(clone[0]["image"], dataset[0]["image"])


def _noise_tiff(path, mpp=None):
    """A two-level tiled TIFF of random pixels written by tifffile, not the kit (any shift shows)."""
    pixels = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    resolution = dict(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER") if mpp else {}
    with tifffile.TiffWriter(path) as tif:
        tif.write(pixels, tile=(256, 256), photometric="rgb", metadata=None, **resolution)
        tif.write(pixels[::4, ::4].copy(), tile=(256, 256), photometric="rgb", metadata=None, subfiletype=1)
    return path


@pytest.mark.parametrize("backend", ["tiffslide", "openslide"])
@pytest.mark.parametrize("tile_mpp", [0.5, 2.0])  # level 0, and level 1 (4x downsampled)
def test_strip_reads_equal_single_reads_when_a_tile_is_not_whole_pixels(tmp_path, backend, tile_mpp):
    # 0.499 um/px given by hand (the file has no resolution tags): a 64 px tile at 0.5 um/px is
    # 64.128 level-0 px, so tile k of a row starts 0.128 k px away from k * 64
    path = _noise_tiff(tmp_path / "noise.tif")
    with open_slide(path, mpp=0.499, backend=backend) as slide:
        everywhere = TissueMask(np.ones((100, 100), bool), mpp=0.499 * 12)
        grid = tile_grid(slide, mpp=tile_mpp, tile_px=64, mask=everywhere)
    assert grid.slide_mpp == 0.499
    dataset = TileDataset(grid, backend=backend, uint8=True)  # reopens the slide with the same mpp
    row = np.flatnonzero(grid.tiles["row"].to_numpy() == 0)
    assert len(row) >= 4 and not np.all(grid.tiles["x"].to_numpy()[row] % 64 == 0)
    batched = dataset.__getitems__(row.tolist())
    for item in batched:
        assert torch.equal(item["image"], dataset[item["index"]]["image"]), item["index"]


def test_truncated_ome_tiff_with_levels_in_subifds_is_named_and_refused(tmp_path):
    # an OME-TIFF as bfconvert / QuPath / tifffile write it: the reduced levels are SubIFDs of page 0
    pixels = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    path = tmp_path / "whole.ome.tif"
    options = dict(tile=(128, 128), photometric="rgb", compression="jpeg")
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(pixels, subifds=2, resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER", **options)
        tif.write(pixels[::4, ::4].copy(), subfiletype=1, **options)
        tif.write(pixels[::16, ::16].copy(), subfiletype=1, **options)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 1 and len(tif.pages[0].subifds) == 2
        full_resolution_end = max(o + n for o, n in zip(tif.pages[0].dataoffsets, tif.pages[0].databytecounts))
    with open_slide(path) as slide:
        assert slide.level_count == 3
        slide.read_region(0, 0, 2, 64, 64)
    data, size = path.read_bytes(), path.stat().st_size
    # cuts that keep the whole full-resolution image and lose part of the reduced levels
    for keep in (full_resolution_end + 1000, (full_resolution_end + size) // 2, size - 100):
        cut = tmp_path / f"cut{keep}.ome.tif"
        cut.write_bytes(data[:keep])
        with pytest.raises(DataFormatError, match=rf"cut{keep}\.ome\.tif.*truncated"):
            open_slide(cut)
