"""TCGA barcodes: from a sample or aliquot barcode to its patient and sample type.

A TCGA aliquot barcode such as ``TCGA-A7-A0CE-01A-11R-A00Z-07`` reads:

====================  ======  ==========================================
part                  here    meaning
====================  ======  ==========================================
project               TCGA
tissue source site    A7      the centre that collected the sample
participant           A0CE    the patient within the site
sample type           01      01-09 tumour, 10-19 normal, 20-29 control
vial                  A
portion, analyte      11R     R = RNA, D = DNA, W = whole-genome amplified
plate, centre         A00Z-07
====================  ======  ==========================================

Slide barcodes end in a slide code instead of plate and centre:
``TCGA-A7-A0CE-01Z-00-DX1`` is diagnostic slide 1 (``TS``/``BS``: top / bottom frozen section).

The first three parts (12 characters) identify the patient: that is the key joining slides,
omics and clinical tables. The kit's virtual cohort uses the project code ``VIRT``.

A GDC sample sheet lists the samples a file was made from in one field. Somatic mutation
files (MAF, VCF) come from a tumour *and* a normal, listed in either order:
``TCGA-DD-AACF-10A, TCGA-DD-AACF-01A`` as often as ``TCGA-DD-AAEG-01A, TCGA-DD-AAEG-10A``.
:func:`tumour_barcode` picks the tumour by its sample-type code, never by its position.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import DataFormatError

__all__ = [
    "Barcode",
    "parse_barcode",
    "patient_barcode",
    "sample_barcode",
    "sample_kind",
    "listed_samples",
    "tumour_barcode",
    "SAMPLE_TYPES",
]

_PATTERN = re.compile(
    r"^(?P<project>[A-Z]{4})-(?P<tss>[A-Z0-9]{2})-(?P<participant>[A-Z0-9]{4})"
    r"(?:-(?P<sample>\d{2})(?P<vial>[A-Z])?"
    r"(?:-(?P<portion>\d{2})(?P<analyte>[A-Z])?"
    r"(?:-(?P<plate>[A-Z0-9]{4})(?:-(?P<centre>\d{2}))?|-(?P<slide>[A-Z]{2}\d+))?)?)?$"
)

#: TCGA sample type codes (GDC "Sample Type" names).
SAMPLE_TYPES: dict[str, str] = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "14": "Bone Marrow Normal",
}


@dataclass(frozen=True)
class Barcode:
    """The parts of a TCGA barcode (``None`` for parts the barcode does not reach)."""

    project: str
    tss: str
    participant: str
    sample: str | None = None
    vial: str | None = None
    portion: str | None = None
    analyte: str | None = None
    plate: str | None = None
    centre: str | None = None
    slide: str | None = None

    @property
    def patient(self) -> str:
        return f"{self.project}-{self.tss}-{self.participant}"


def parse_barcode(barcode: str) -> Barcode:
    """Split a TCGA-style barcode into its parts.

    Raises
    ------
    ValueError
        If ``barcode`` is not a TCGA-style patient, sample, portion or aliquot barcode.
    """
    match = _PATTERN.match(str(barcode).strip().upper())
    if match is None:
        raise ValueError(f"unknown barcode {barcode!r}: expected a TCGA barcode such as 'TCGA-A7-A0CE' or 'TCGA-A7-A0CE-01A-11R-A00Z-07'")
    return Barcode(**match.groupdict())


def patient_barcode(barcode: str) -> str:
    """The 12-character patient barcode of any TCGA barcode (``TCGA-A7-A0CE-01A...`` -> ``TCGA-A7-A0CE``)."""
    return parse_barcode(barcode).patient


def sample_barcode(barcode: str) -> str:
    """The 16-character sample barcode with vial (``TCGA-A7-A0CE-01A``)."""
    parts = parse_barcode(barcode)
    if parts.sample is None:
        raise ValueError(f"{barcode!r} is a patient barcode: it names no sample")
    return f"{parts.patient}-{parts.sample}{parts.vial or ''}"


def sample_kind(barcode: str) -> str:
    """``"tumour"`` (codes 01-09), ``"normal"`` (10-19) or ``"control"`` (20-29)."""
    parts = parse_barcode(barcode)
    if parts.sample is None:
        raise ValueError(f"{barcode!r} is a patient barcode: it has no sample type")
    code = int(parts.sample)
    if 1 <= code <= 9:
        return "tumour"
    if 10 <= code <= 19:
        return "normal"
    if 20 <= code <= 29:
        return "control"
    raise ValueError(f"{barcode!r}: sample type {parts.sample} is not a TCGA sample type code")


def listed_samples(field: str) -> list[str]:
    """The barcodes of a sample sheet's ``Sample ID`` field, which lists one sample or several separated by commas."""
    return [part.strip() for part in str(field).split(",") if part.strip()]


def tumour_barcode(field: str, *, source: str | os.PathLike | None = None) -> str:
    """The one tumour sample (type 01-09) of a sample-id field that may list several samples.

    A MAF or VCF row of a GDC sample sheet lists its tumour and its matched normal in either
    order (``"TCGA-CC-5258-10A, TCGA-CC-5258-01A"``); the sample-type code, not the position,
    says which is the tumour. A field listing one tumour sample gives that sample back.

    Parameters
    ----------
    field : str
        The ``Sample ID`` field (``sample_id`` after :func:`mmsurv.io.gdc.read_sample_sheet`).
    source : path-like, optional
        The sample sheet the field comes from, named by the error.

    Raises
    ------
    DataFormatError
        (a ``ValueError``) when the field lists no tumour, more than one tumour, or a barcode
        that is not a TCGA sample barcode; the message names ``source`` when given.
    """
    samples = listed_samples(field)
    kinds = []
    for sample in samples:
        try:
            kinds.append(sample_kind(sample))
        except ValueError as error:
            raise DataFormatError(source or "<sample-id field>", f"sample id field {field!r}: {error}") from None
    tumours = [sample for sample, kind in zip(samples, kinds) if kind == "tumour"]
    if len(tumours) != 1:
        found = "no tumour sample (type 01-09)" if not tumours else f"{len(tumours)} tumour samples {tumours}"
        raise DataFormatError(source or "<sample-id field>", f"sample id field {field!r} lists {found}; expected exactly one")
    return tumours[0]
