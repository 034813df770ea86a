"""Reading negation: a bag-of-words baseline beside the encoder, and probe sentences neither has seen.

"No parametrial invasion" and "parametrial invasion is present" share their content words. A
TF-IDF model can still tell them apart when a negation cue it saw in training ("no", "not
seen") sits next to the words, but a phrasing it never saw ("the parametria are free of
tumour") leaves it with the words alone. A sentence encoder places both phrasings near each
other (they are about the same thing) yet, a linear probe on top of it often keeps the
direction that separates them. :func:`negation_table` shows both on :data:`NEGATION_PROBES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["NEGATION_PROBES", "tfidf_classifier", "embedding_classifier", "probe_report", "negation_table"]

#: Affirmed / negated pairs of a finding in phrasings the virtual reports never use: (sentence, invasion 1 / 0).
NEGATION_PROBES: tuple[tuple[str, int], ...] = (
    ("Tumour invades the right parametrium.", 1),
    ("The parametria are free of tumour.", 0),
    ("Parametrial involvement is noted.", 1),
    ("Parametrial involvement is excluded.", 0),
    ("The tumour breaches the stromal ring into the parametrium.", 1),
    ("The stromal ring is intact without parametrial spread.", 0),
)


def tfidf_classifier(C: float = 1.0) -> Pipeline:
    """Word uni- and bigrams, TF-IDF weighted, into an L2-penalised logistic regression."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LogisticRegression(C=C, max_iter=5000))


def embedding_classifier(C: float = 0.1) -> Pipeline:
    """A linear probe on report embeddings: standardised, L2-penalised logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))


def probe_report(finding: str) -> str:
    """A minimal report whose only finding is ``finding`` (the section layout of the training reports)."""
    return (
        "CLINICAL INDICATION: Biopsy-proven cervical carcinoma, staging.\n"
        "TECHNIQUE: Multiplanar T2-weighted and diffusion-weighted MRI of the pelvis.\n"
        f"FINDINGS: {finding}\n"
    )


def negation_table(
    tfidf: Pipeline,
    probe: Pipeline,
    embed: Callable[[Sequence[str]], np.ndarray],
    probes: Sequence[tuple[str, int]] = NEGATION_PROBES,
) -> pd.DataFrame:
    """P(finding) from the TF-IDF model and from the embedding probe, for each probe sentence.

    Parameters
    ----------
    tfidf : fitted :func:`tfidf_classifier` (on report texts)
    probe : fitted :func:`embedding_classifier` (on report embeddings)
    embed : callable
        Texts to an (n, d) array of embeddings, the same encoder the probe was fitted on.
    probes : sequence of (sentence, label)

    Returns
    -------
    DataFrame
        One row per sentence: ``truth``, ``p_tfidf``, ``p_encoder``, and ``cosine_to_pair``
        (the encoder's cosine similarity between a sentence and its partner of the other
        label: near 1 means the encoder alone barely tells them apart).
    """
    sentences = [s for s, _ in probes]
    texts = [probe_report(s) for s in sentences]
    vectors = np.asarray(embed(texts))
    bare = np.asarray(embed(sentences))
    bare = bare / np.linalg.norm(bare, axis=1, keepdims=True)
    partner = [i + 1 if i % 2 == 0 else i - 1 for i in range(len(sentences))]
    return pd.DataFrame(
        {
            "truth": [label for _, label in probes],
            "p_tfidf": tfidf.predict_proba(texts)[:, 1],
            "p_encoder": probe.predict_proba(vectors)[:, 1],
            "cosine_to_pair": [float(bare[i] @ bare[j]) for i, j in enumerate(partner)],
        },
        index=sentences,
    )
