"""Readers for the real file formats: slides, CT / MRI volumes, GDC and TCIA tables.

The virtual cohort writes its data in these same formats, so a notebook's loading cells do
not change between the embedded data and a fetched TCGA / TCIA directory.
"""

from .errors import DataFormatError, DataWarning

__all__ = ["DataFormatError", "DataWarning"]
