"""Procedural H&E-like tissue, rendered at any resolution from the same recipe.

A real slide is one physical object seen at several magnifications. To make virtual slides
behave the same way, tissue is defined as a *function of physical position* (microns) and
rendered on demand at any microns-per-pixel: the pyramid levels of a virtual slide are
renderings of one specimen, not resized copies of each other, and a 40,000 px slide can be
written tile by tile without ever holding it in memory.

Planted biology (what a model can learn from the pixels):

* **tumour nuclei** - their density and size grow with the patient's ``proliferation`` trait;
* **lymphocytes** - small, dark, round nuclei whose density grows with ``immune``;
* **tissue layout** - a blob of tissue on a white background, with tumour nests inside stroma;
* **subtype morphology** (lung, optional) - gland lumens inside tumour nests (adenocarcinoma),
  keratin pearls (squamous cell carcinoma), and alveolar air spaces in the stroma (normal lung),
  each at a per-slide density, so a slide shows its class only in some of its tiles.

And nuisance variation that carries no outcome information, as real slides have:

* **staining** - haematoxylin hue and strength, eosin strength and section thickness differ
  between slides, and systematically between centres (``stain_shift``);
* **tumour content** - the share of tumour in the section varies from slide to slide.

Without it every image feature would track the planted traits, and even an untrained
network's output would correlate with them.

Every random choice comes from a hash of lattice coordinates and the slide's seed, so the same
location always looks the same, whatever tile or level it is rendered in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TissueRecipe", "tissue_recipe", "render_tissue"]

_BACKGROUND = np.array([244.0, 243.0, 246.0], dtype=np.float32)
_STROMA = np.array([232.0, 168.0, 196.0], dtype=np.float32)
_TUMOUR_CYTOPLASM = np.array([214.0, 150.0, 198.0], dtype=np.float32)
_LYMPHOCYTE = np.array([52.0, 34.0, 105.0], dtype=np.float32)
_LUMEN = np.array([240.0, 226.0, 234.0], dtype=np.float32)  # the pale inside of a gland
_KERATIN = np.array([232.0, 112.0, 124.0], dtype=np.float32)  # a bright eosinophilic keratin pearl

_TUMOUR_CELL_UM = 10.0  # lattice of tumour-cell nuclei
_LYMPHOCYTE_CELL_UM = 8.0  # lattice of lymphocytes
_JITTER = 0.35  # how far a nucleus may wander from its lattice cell's centre (fraction of the cell)


@dataclass(frozen=True)
class TissueRecipe:
    """Everything that decides what a virtual slide looks like.

    Attributes
    ----------
    width_um, height_um : float
        Physical size of the glass slide's scanned area.
    nuclear_density : float
        Probability that a tumour lattice cell holds a nucleus (0-1).
    nuclear_radius_um : float
        Mean radius of tumour nuclei.
    lymphocyte_density : float
        Probability that a lymphocyte lattice cell holds a lymphocyte (0-1).
    tumour_fraction : float
        Roughly the share of tissue that is tumour rather than stroma.
    seed : int
        Seeds the hashes that place tissue, nests and nuclei.
    haematoxylin : tuple of 3 floats
        RGB colour of tumour nuclei (its hue and darkness vary with staining).
    eosin_strength : float
        Saturation of the pink stroma and cytoplasm (1 = typical).
    thickness : float
        Section thickness: scales the optical density of everything (1 = typical).
    glands, keratin, alveoli : float
        Subtype morphology (0 = none): the probability that a lattice cell of tumour holds a
        gland lumen (36 um cells), or a keratin pearl (48 um cells), or that one of stroma holds
        an alveolar air space (46 um cells).
    """

    width_um: float
    height_um: float
    nuclear_density: float
    nuclear_radius_um: float
    lymphocyte_density: float
    tumour_fraction: float
    seed: int
    haematoxylin: tuple[float, float, float] = (88.0, 58.0, 140.0)
    eosin_strength: float = 1.0
    thickness: float = 1.0
    glands: float = 0.0
    keratin: float = 0.0
    alveoli: float = 0.0


def tissue_recipe(
    proliferation: float,
    immune: float,
    *,
    width_um: float,
    height_um: float,
    seed: int,
    tumour_fraction: float | None = None,
    stain_shift: float = 0.0,
    glands: float = 0.0,
    keratin: float = 0.0,
    alveoli: float = 0.0,
) -> TissueRecipe:
    """Turn a patient's latent traits into a tissue recipe.

    Parameters
    ----------
    proliferation, immune : float
        Latent traits (standard normal in the virtual cohort).
    width_um, height_um : float
        Scanned area in microns.
    seed : int
        Slide seed (layout, nuclei positions and the slide's staining).
    tumour_fraction : float, optional
        Default: drawn per slide between 0.3 and 0.7.
    stain_shift : float, default 0.0
        A centre's systematic staining difference (about -1 to 1): darker or paler, bluer or
        purpler haematoxylin, stronger or weaker eosin.
    glands, keratin, alveoli : float, default 0.0
        Subtype morphology densities (see :class:`TissueRecipe`).

    Returns
    -------
    TissueRecipe
        Nuclear density 0.45 + 0.15 * proliferation and radius 2.3 + 0.3 * proliferation um
        (clipped); lymphocyte density 0.08 + 0.06 * immune (clipped); staining and tumour
        content drawn from ``seed`` and ``stain_shift``, independent of the traits.
    """
    rng = np.random.default_rng([int(seed), 7919])
    darkness = 1.0 + 0.12 * stain_shift + rng.normal(0.0, 0.10)
    hue = 0.5 * stain_shift + rng.normal(0.0, 0.5)  # negative: bluer, positive: purpler
    haematoxylin = tuple(float(np.clip(c, 20, 200)) for c in (88.0 / darkness + 18 * hue, 58.0 / darkness, 140.0 / darkness - 10 * hue))
    if tumour_fraction is None:
        tumour_fraction = float(rng.uniform(0.3, 0.7))
    return TissueRecipe(
        width_um=float(width_um),
        height_um=float(height_um),
        nuclear_density=float(np.clip(0.45 + 0.15 * proliferation, 0.12, 0.92)),
        nuclear_radius_um=float(np.clip(2.3 + 0.3 * proliferation, 1.5, 3.1)),
        lymphocyte_density=float(np.clip(0.08 + 0.06 * immune, 0.0, 0.35)),
        tumour_fraction=float(tumour_fraction),
        seed=int(seed),
        haematoxylin=haematoxylin,
        eosin_strength=float(np.clip(1.0 + 0.15 * stain_shift + rng.normal(0.0, 0.15), 0.5, 1.6)),
        thickness=float(np.clip(1.0 + 0.08 * stain_shift + rng.normal(0.0, 0.10), 0.7, 1.4)),
        glands=float(np.clip(glands, 0.0, 1.0)),
        keratin=float(np.clip(keratin, 0.0, 1.0)),
        alveoli=float(np.clip(alveoli, 0.0, 1.0)),
    )


def _hash01(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) for each integer lattice point (a 64-bit integer hash)."""
    with np.errstate(over="ignore"):
        h = (ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
        h ^= np.uint64((salt * 0x165667B19E3779F9) & 0xFFFFFFFFFFFFFFFF)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
    return (h >> np.uint64(40)).astype(np.float32) / np.float32(2**24)


def _lattice(coordinate_um: np.ndarray, cell_um: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split coordinates into lattice cells: (unique cell indices, each pixel's slot, fraction)."""
    scaled = coordinate_um / cell_um
    cell = np.floor(scaled).astype(np.int64)
    unique, slot = np.unique(cell, return_inverse=True)
    return unique, slot, (scaled - cell).astype(np.float32)


def _lattice_hash(ux: np.ndarray, uy: np.ndarray, salt: int) -> np.ndarray:
    """Hash every (cell-row, cell-column) pair once: shape (len(uy), len(ux))."""
    return _hash01(ux[None, :], uy[:, None], salt)


def _value_noise(x_um: np.ndarray, y_um: np.ndarray, scale_um: float, salt: int) -> np.ndarray:
    """Smooth noise in [0, 1): hashed lattice values every ``scale_um``, smoothly interpolated."""
    ux, sx, tx = _lattice(x_um, scale_um)
    uy, sy, ty = _lattice(y_um, scale_um)
    ux_next, uy_next = np.append(ux, ux[-1] + 1), np.append(uy, uy[-1] + 1)
    corners = _lattice_hash(ux_next, uy_next, salt)
    # neighbours in the unique list are not always neighbours on the lattice: index explicitly
    col_next = np.searchsorted(ux_next, ux + 1)
    row_next = np.searchsorted(uy_next, uy + 1)
    tx, ty = (tx * tx * (3 - 2 * tx))[None, :], (ty * ty * (3 - 2 * ty))[:, None]
    # spread the corners to pixels one axis at a time (rows, then columns): the same values as
    # indexing with a (rows, columns) pair, several times faster
    here, below = corners.take(sy, axis=0), corners.take(row_next[sy], axis=0)
    cols, cols_next = sx, col_next[sx]
    top = here.take(cols, axis=1) * (1 - tx) + here.take(cols_next, axis=1) * tx
    bottom = below.take(cols, axis=1) * (1 - tx) + below.take(cols_next, axis=1) * tx
    return top * (1 - ty) + bottom * ty


def _nuclei_alpha(x_um: np.ndarray, y_um: np.ndarray, mpp: float, cell_um: float, density: float, radius_um: float, salt: int) -> np.ndarray:
    """Opacity of nuclei placed on a jittered lattice (one candidate nucleus per cell)."""
    ux, sx, fx = _lattice(x_um, cell_um)
    uy, sy, fy = _lattice(y_um, cell_um)

    def per_pixel(per_cell: np.ndarray) -> np.ndarray:  # a value per lattice cell, spread to the cell's pixels
        return per_cell.take(sy, axis=0).take(sx, axis=1)

    present = (_lattice_hash(ux, uy, salt) < density).astype(np.float32)
    centre_x = 0.5 + _JITTER * (_lattice_hash(ux, uy, salt + 1) - 0.5)
    centre_y = 0.5 + _JITTER * (_lattice_hash(ux, uy, salt + 2) - 0.5)
    radius = radius_um * (0.8 + 0.4 * _lattice_hash(ux, uy, salt + 3)) / cell_um
    distance = np.hypot(fx[None, :] - per_pixel(centre_x), fy[:, None] - per_pixel(centre_y))
    edge = max(mpp, 0.25) / cell_um  # anti-aliased rim one pixel wide
    sharp = np.clip((per_pixel(radius) - distance) / edge + 0.5, 0.0, 1.0) * per_pixel(present)
    # far below the nuclear size a pixel shows the average colour, not a speckle
    mean = np.float32(density * np.pi * (radius_um / cell_um) ** 2)
    blend = np.float32(np.clip((mpp - 1.0) / 3.0, 0.0, 1.0))
    return (1 - blend) * sharp + blend * mean


def render_tissue(recipe: TissueRecipe, x_um: float, y_um: float, width_px: int, height_px: int, mpp: float) -> np.ndarray:
    """Render a region of a virtual slide.

    Parameters
    ----------
    recipe : TissueRecipe
    x_um, y_um : float
        Top-left corner of the region, in microns from the slide's top-left corner.
    width_px, height_px : int
        Size of the rendered region in pixels.
    mpp : float
        Microns per pixel of the rendering (0.25 is about 40x, 0.5 about 20x).

    Returns
    -------
    ndarray of uint8, shape (height_px, width_px, 3)
        RGB pixels. The same physical point looks the same at every ``mpp``.
    """
    xs = (x_um + (np.arange(width_px) + 0.5) * mpp).astype(np.float64)
    ys = (y_um + (np.arange(height_px) + 0.5) * mpp).astype(np.float64)
    salt = recipe.seed * 97

    # tissue: a noisy ellipse on the glass
    u = (xs[None, :] / recipe.width_um - 0.5) / 0.42
    v = (ys[:, None] / recipe.height_um - 0.5) / 0.40
    outline = 1.0 - np.hypot(u, v) + 0.55 * (_value_noise(xs, ys, 0.22 * min(recipe.width_um, recipe.height_um), salt) - 0.5)
    tissue = np.clip(outline / 0.04, 0.0, 1.0).astype(np.float32)[..., None]
    if not tissue.any():  # bare glass (about 40% of a slide's tiles): the same pixels as below, without drawing the tissue
        return np.broadcast_to(np.clip(_BACKGROUND, 0, 255).astype(np.uint8), (height_px, width_px, 3)).copy()

    # tumour nests inside stroma
    nests = _value_noise(xs, ys, 180.0, salt + 10)
    tumour = np.clip((nests - (1.0 - recipe.tumour_fraction)) / 0.05 + 0.5, 0.0, 1.0)[..., None]
    texture = 0.92 + 0.16 * _value_noise(xs, ys, 12.0, salt + 20)[..., None]
    pink = _STROMA * (1 - tumour) + _TUMOUR_CYTOPLASM * tumour
    colour = (255.0 - (255.0 - pink) * recipe.eosin_strength) * texture

    tumour_nuclei = _nuclei_alpha(xs, ys, mpp, _TUMOUR_CELL_UM, recipe.nuclear_density, recipe.nuclear_radius_um, salt + 30)
    stroma_nuclei = _nuclei_alpha(xs, ys, mpp, 2 * _TUMOUR_CELL_UM, 0.35, 1.4, salt + 40)
    nuclei = (tumour_nuclei * tumour[..., 0] + stroma_nuclei * (1 - tumour[..., 0]))[..., None]
    shade = 0.85 + 0.3 * _value_noise(xs, ys, 6.0, salt + 50)[..., None]
    colour = colour * (1 - nuclei) + np.asarray(recipe.haematoxylin, dtype=np.float32) * shade * nuclei

    lymphocytes = _nuclei_alpha(xs, ys, mpp, _LYMPHOCYTE_CELL_UM, recipe.lymphocyte_density, 1.7, salt + 60)[..., None]
    colour = colour * (1 - lymphocytes) + _LYMPHOCYTE * lymphocytes
    colour = _subtype_morphology(recipe, colour, tumour, xs, ys, mpp, salt)

    colour = 255.0 - (255.0 - colour) * recipe.thickness  # thicker sections absorb more light
    rgb = _BACKGROUND * (1 - tissue) + colour * tissue
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _subtype_morphology(
    recipe: TissueRecipe, colour: np.ndarray, tumour: np.ndarray, xs: np.ndarray, ys: np.ndarray, mpp: float, salt: int
) -> np.ndarray:
    """Paint gland lumens and keratin pearls into tumour, and air spaces into stroma (lung subtypes)."""
    for density, cell_um, radius_um, paint, where, offset in (
        (recipe.glands, 36.0, 9.0, _LUMEN, tumour, 70),
        (recipe.keratin, 48.0, 12.0, _KERATIN, tumour, 80),
        (recipe.alveoli, 46.0, 12.0, _BACKGROUND, 1 - tumour, 90),
    ):
        if density > 0:
            alpha = _nuclei_alpha(xs, ys, mpp, cell_um, density, radius_um, salt + offset)[..., None] * where
            colour = colour * (1 - alpha) + paint * alpha
    return colour
