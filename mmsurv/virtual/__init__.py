"""The virtual cohort written in real file formats (slides, DICOM, NIfTI, GDC tables, reports)."""

from .dataset import (
    CESC_HISTOLOGY,
    CESC_PROGNOSTIC_GENES,
    COHORTS,
    SIZES,
    VirtualDataset,
    cohort_being_written,
    default_data_dir,
    virtual_cohort_files,
)

__all__ = [
    "CESC_HISTOLOGY",
    "CESC_PROGNOSTIC_GENES",
    "COHORTS",
    "SIZES",
    "VirtualDataset",
    "cohort_being_written",
    "default_data_dir",
    "virtual_cohort_files",
]
