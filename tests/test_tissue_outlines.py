"""Tissue outlines: mask -> level-0 polygons -> GeoJSON for QuPath.

The exact-area check rests on how marching squares cuts a pixel staircase at level 0.5: a 2x2
cell with one tissue pixel keeps 1/8 pixel of it (its quarter-pixel share is 1/4), a cell with
three keeps 7/8 (share 3/4), a cell with two edge-neighbours keeps 1/2 (share 1/2). So a piece
of tissue loses 1/8 pixel per convex corner and gains 1/8 per concave one; a closed ring turns
four more times one way than the other, so the outer ring encloses ``n_pixels - 1/2`` and each
hole's ring ``n_hole_pixels - 1/2`` (Lorensen & Cline 1987, the 2-D case).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.path import Path as MplPath
from scipy import ndimage

from mmsurv.io.slides import TissueMask, open_slide, tile_grid, tissue_mask
from mmsurv.io.tissue_outlines import TISSUE_COLOR, outlines_geojson, polygon_area, tissue_polygons, write_tissue_outlines
from mmsurv.pathology.cohort_embedding import find_slides

# mask 60 x 90 px on a 2,880 x 1,200 px slide: 32 level-0 px per mask px in x, 20 in y
SHAPE = (60, 90)
SX, SY = 32, 20
LEVEL0 = (SHAPE[1] * SX, SHAPE[0] * SY)


def _shapes() -> dict[str, np.ndarray]:
    """A rectangle with a hole (and an island in the hole), and a disc, as separate masks."""
    rectangle = np.zeros(SHAPE, bool)
    rectangle[5:40, 10:50] = True
    hole = np.zeros(SHAPE, bool)
    hole[15:28, 20:34] = True
    island = np.zeros(SHAPE, bool)
    island[19:24, 24:30] = True
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    disc = (rows - 38.3) ** 2 + (cols - 70.6) ** 2 < 14.2**2
    return {"rectangle": rectangle & ~hole, "hole": hole & ~island, "island": island, "disc": disc}


def _mask() -> TissueMask:
    shapes = _shapes()
    return TissueMask(mask=shapes["rectangle"] | shapes["island"] | shapes["disc"], mpp=16.0)


def _inside(polygons: list[list[np.ndarray]], points: np.ndarray) -> np.ndarray:
    """Whether each point is inside an outer ring and outside that polygon's holes."""
    inside = np.zeros(len(points), bool)
    for outer, *holes in polygons:
        here = MplPath(outer).contains_points(points)
        for hole in holes:
            here &= ~MplPath(hole).contains_points(points)
        inside |= here
    return inside


def _by_size(polygons: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    return sorted(polygons, key=lambda polygon: -polygon_area(polygon[0]))


def test_areas_are_the_masks_less_half_a_pixel_per_ring_before_simplifying():
    shapes = _shapes()
    rectangle, disc, island = _by_size(tissue_polygons(_mask(), LEVEL0, tolerance=0))
    px = SX * SY  # level-0 px^2 per mask pixel
    assert [len(p) for p in (rectangle, disc, island)] == [2, 1, 1]  # the rectangle's hole is its interior ring
    assert polygon_area(rectangle[0]) == pytest.approx((shapes["rectangle"].sum() + shapes["hole"].sum() + shapes["island"].sum() - 0.5) * px)
    assert polygon_area(rectangle[1]) == pytest.approx(-(shapes["hole"].sum() + shapes["island"].sum() - 0.5) * px)
    assert polygon_area(disc[0]) == pytest.approx((shapes["disc"].sum() - 0.5) * px)
    assert polygon_area(island[0]) == pytest.approx((shapes["island"].sum() - 0.5) * px)
    # the rectangle's straight sides lie on its pixels' outer edges, scaled per axis (SX != SY)
    x, y = rectangle[0].T
    assert (x.min(), x.max(), y.min(), y.max()) == (10 * SX, 50 * SX, 5 * SY, 40 * SY)


def test_simplified_polygons_keep_the_area_closed_rings_and_level0_coordinates():
    shapes = _shapes()
    mask = _mask()
    polygons = tissue_polygons(mask, LEVEL0)
    rings = [ring for polygon in polygons for ring in polygon]
    assert all(np.array_equal(ring[0], ring[-1]) and len(ring) >= 4 for ring in rings)
    total = sum(polygon_area(ring) for ring in rings)
    assert total == pytest.approx(mask.mask.sum() * SX * SY, rel=0.02)
    rectangle, disc, _ = _by_size(polygons)
    assert polygon_area(disc[0]) == pytest.approx(shapes["disc"].sum() * SX * SY, rel=0.03)
    assert polygon_area(rectangle[1]) < 0 < polygon_area(rectangle[0])
    # simplifying moves a ring by at most half a mask pixel (the corners' cuts are the vertices now)
    x, y = rectangle[0].T
    bounds = np.array([x.min(), x.max(), y.min(), y.max()])
    np.testing.assert_allclose(bounds[:2], [10 * SX, 50 * SX], rtol=0, atol=0.5 * SX)
    np.testing.assert_allclose(bounds[2:], [5 * SY, 40 * SY], rtol=0, atol=0.5 * SY)


def test_points_inside_and_outside_follow_the_mask():
    mask = _mask()
    polygons = tissue_polygons(mask, LEVEL0)
    # every mask pixel's centre, in level-0 px; pixels on a border are left out (the corners are cut there)
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    square = np.ones((3, 3), bool)
    border = (mask.mask & ~ndimage.binary_erosion(mask.mask, square)) | (~mask.mask & ~ndimage.binary_erosion(~mask.mask, square, border_value=1))
    centres = np.column_stack([(cols + 0.5).ravel() * SX, (rows + 0.5).ravel() * SY])
    keep = ~border.ravel()
    assert keep.sum() > 0.8 * mask.mask.size
    np.testing.assert_array_equal(_inside(polygons, centres[keep]), mask.mask.ravel()[keep])


def test_a_mask_touching_the_edges_is_closed_along_them():
    full = TissueMask(mask=np.ones(SHAPE, bool), mpp=16.0)
    ((ring,),) = tissue_polygons(full, LEVEL0, tolerance=0)
    x, y = ring.T
    assert (x.min(), x.max(), y.min(), y.max()) == (0, LEVEL0[0], 0, LEVEL0[1])
    assert polygon_area(ring) == pytest.approx((full.mask.size - 0.5) * SX * SY)
    assert tissue_polygons(TissueMask(mask=np.zeros(SHAPE, bool), mpp=16.0), LEVEL0) == []


def test_geojson_has_qupaths_fields_and_rounded_level0_coordinates(tmp_path):
    mask = _mask()
    size = (LEVEL0[0] + 7, LEVEL0[1] + 3)  # a scale with fractions, so that rounding shows
    polygons = tissue_polygons(mask, size)
    path = write_tissue_outlines(tmp_path / "outlines" / "slide.geojson", mask, size)
    assert [p.name for p in path.parent.iterdir()] == ["slide.geojson"]  # written atomically: no partial file left
    collection = json.loads(path.read_text())
    assert collection == json.loads(json.dumps(outlines_geojson(polygons)))
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == len(polygons)
    for feature, polygon in zip(collection["features"], polygons):
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
        assert feature["properties"] == {"objectType": "annotation", "classification": {"name": "Tissue", "color": list(TISSUE_COLOR)}}
        rings = feature["geometry"]["coordinates"]
        assert len(rings) == len(polygon) and all(ring[0] == ring[-1] for ring in rings)
        for stored, ring in zip(rings, polygon):
            np.testing.assert_allclose(stored, ring, atol=0.05 + 1e-9)
            assert all(isinstance(v, float) for point in stored for v in point)


@pytest.fixture(scope="module")
def three_slides(virtual_files) -> list:
    return list(find_slides(virtual_files["brca"].root).values())[:3]


def test_a_virtual_slides_tiles_lie_inside_its_outline_and_its_background_outside(three_slides):
    for path in three_slides:
        with open_slide(path) as slide:
            mask = tissue_mask(slide)
            grid = tile_grid(slide, mpp=slide.mpp, tile_px=64, mask=mask)
            width, height = slide.dimensions
        polygons = tissue_polygons(mask, (width, height))
        side = grid.tile_px * grid.mpp / slide.mpp  # tile side in level-0 px
        centres = grid.tiles[["x", "y"]].to_numpy(float) + side / 2
        assert len(grid) > 10
        assert _inside(polygons, centres).mean() >= 0.95, path.name
        # the background pixel farthest from any tissue, as a level-0 point
        distance = ndimage.distance_transform_edt(~np.pad(mask.mask, 1, constant_values=False))[1:-1, 1:-1]
        row, col = np.unravel_index(np.argmax(distance), distance.shape)
        assert distance[row, col] >= 3  # far from the tissue, in mask pixels
        far = np.array([[(col + 0.5) * width / mask.mask.shape[1], (row + 0.5) * height / mask.mask.shape[0]]])
        assert not _inside(polygons, far)[0], path.name
