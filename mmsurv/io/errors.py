"""One exception for bad input files: it always names the file and says what is wrong."""

from __future__ import annotations

import os

__all__ = ["DataFormatError"]


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
