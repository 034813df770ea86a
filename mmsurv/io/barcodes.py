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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Barcode", "parse_barcode", "patient_barcode", "sample_barcode", "sample_kind", "SAMPLE_TYPES"]

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
