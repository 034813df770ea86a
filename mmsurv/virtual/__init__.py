"""The virtual cohort written in real file formats (slides, DICOM, NIfTI, GDC tables, reports)."""

from .dataset import COHORTS, SIZES, VirtualDataset, default_data_dir, virtual_cohort_files

__all__ = ["COHORTS", "SIZES", "VirtualDataset", "default_data_dir", "virtual_cohort_files"]
