"""From a GDC sample sheet to *sample units*: one row per patient and sample type, a file per modality.

A TCGA patient may have a primary tumour (sample type ``01``) and a solid-tissue normal
(``11``) sample, each with its own slide, RNA-seq and methylation files - and not always all
of them. A multimodal model scores a *unit* (``TCGA-05-4244-01``: this patient's tumour),
whose modalities are joined by the first 15 characters of their barcodes; a file the sample
sheet does not list leaves that modality missing for the unit, to be masked, not dropped.

A somatic mutation file (MAF, VCF) belongs to its tumour, though the sheet lists the tumour
and its matched normal, in either order ("TCGA-CC-5258-10A, TCGA-CC-5258-01A"): the
tumour is found by its sample-type code (:func:`mmsurv.io.barcodes.tumour_barcode`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .barcodes import SAMPLE_TYPES, listed_samples, parse_barcode, sample_kind, tumour_barcode
from .errors import DataFormatError, DataWarning
from .gdc import sample_files, sheet_source

__all__ = ["unit_id", "sample_units"]

#: TCGA sample types that are pieces of tissue (not blood, buccal cells or bone marrow).
_TISSUE_SAMPLE_TYPES = ("01", "02", "05", "06", "07", "11")


def unit_id(barcode: str) -> str:
    """The unit a sample, slide or aliquot barcode belongs to: patient and sample type (``TCGA-05-4244-01``)."""
    parts = parse_barcode(barcode)
    if parts.sample is None:
        raise ValueError(f"{barcode!r} is a patient barcode: it names no sample")
    return f"{parts.patient}-{parts.sample}"


def _sheet_sample(field: str, source: str) -> tuple[str, str]:
    """The sample a sheet row's file belongs to (its one sample, or the tumour of a tumour-normal pair) and its unit.

    A DataFormatError naming the sheet if the field holds no TCGA sample barcode.
    """
    samples = listed_samples(field)
    sample = samples[0] if len(samples) == 1 else tumour_barcode(field, source=source)
    try:
        return sample, unit_id(sample)
    except ValueError as error:
        raise DataFormatError(source, f"sample id field {field!r}: {error}") from None


def sample_units(sheet: pd.DataFrame, root: str | os.PathLike, data_types: Mapping[str, str]) -> pd.DataFrame:
    """One row per sample unit with the path of each modality's file (missing: NaN).

    Parameters
    ----------
    sheet : DataFrame
        From :func:`mmsurv.io.gdc.read_sample_sheet`.
    root : path-like
        The download folder holding ``<file_id>/<file_name>``.
    data_types : mapping
        Modality name -> GDC data type, e.g. ``{"slide": "Slide Image", "rna": "Gene
        Expression Quantification", "methylation": "Methylation Beta Value"}``.

    Returns
    -------
    DataFrame
        Indexed by unit id; ``patient_id``, ``sample_type`` (the GDC name), ``kind``
        (``tumour`` / ``normal``), ``project`` (of the first file listed), and one path column
        per modality. Only tissue samples are kept: tumours (sample types 01-07) and solid
        tissue normals (11); blood, buccal and bone-marrow samples (03, 10, 12, 14) are left
        out, as no slide shows them.

    Raises
    ------
    DataFormatError
        Naming the sample sheet: a sample id that is not a TCGA sample barcode, or a
        several-sample field (a mutation file's) without exactly one tumour.

    Warns
    -----
    DataWarning
        When a unit has several files of one modality (two vials, two slides): the first in
        sorted order is kept, as TCGA analyses usually do, and the count is reported.
    """
    source = sheet_source(sheet)
    columns: dict[str, dict[str, Path]] = {}
    for modality, data_type in data_types.items():
        files = sample_files(sheet, root, data_type)
        by_unit: dict[str, list[tuple[str, Path]]] = {}
        for sample, path in files.items():
            # a mutation file lists "tumour, normal" or "normal, tumour": it belongs to the tumour
            chosen, unit = _sheet_sample(sample, source)
            by_unit.setdefault(unit, []).append((chosen, path))
        repeated = {unit: len(paths) for unit, paths in by_unit.items() if len(paths) > 1}
        if repeated:
            warnings.warn(
                f"{len(repeated)} sample unit(s) have several {modality} files ({data_type!r}), e.g. {dict(list(repeated.items())[:3])}: "
                "the first in sorted order is used",
                DataWarning,
                stacklevel=2,
            )
        columns[modality] = {unit: sorted(paths)[0][1] for unit, paths in by_unit.items()}
    units = pd.DataFrame(columns).sort_index().rename_axis("unit_id")
    units.insert(0, "patient_id", [u.rsplit("-", 1)[0] for u in units.index])
    units.insert(1, "sample_type", [SAMPLE_TYPES.get(u.rsplit("-", 1)[1], "unknown") for u in units.index])
    units.insert(2, "kind", [sample_kind(u) for u in units.index])
    if "project_id" in sheet.columns:
        # only the rows read above: a sheet's clinical and biospecimen rows have no sample id
        used = sheet[sheet["data_type"].isin(list(data_types.values()))]
        project_of = used.assign(unit=[_sheet_sample(s, source)[1] for s in used["sample_id"]]).drop_duplicates("unit")
        units.insert(3, "project", project_of.set_index("unit")["project_id"].reindex(units.index).to_numpy())
    tissue = [u.rsplit("-", 1)[1] in _TISSUE_SAMPLE_TYPES for u in units.index]
    return units[tissue]
