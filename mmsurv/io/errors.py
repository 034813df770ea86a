"""Bad input files: an exception that always names the file and says what is wrong, and a warning
for files read in part (some rows unusable, counted and left out)."""

from __future__ import annotations

import os

__all__ = ["DataFormatError", "DataWarning"]


class DataFormatError(ValueError):
    """A data file is missing, corrupt or not in the expected format.

    Parameters
    ----------
    path : path-like
        The offending file or folder; always part of the message.
    problem : str
        What is wrong, and where possible what to do about it.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DataWarning(UserWarning):
    """A file was read, but part of it could not be used (the message says what and how much).

    Raised through :func:`warnings.warn`, so notebooks print it under the cell that read the
    file, and tests can require it with ``pytest.warns(DataWarning)``.
    """
