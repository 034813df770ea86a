"""Text wing: radiology reports to features (notebook 05).

Modules: :mod:`.report_encoder` (a pretrained BERT-family sentence encoder loaded offline,
cached embeddings) and :mod:`.negation` (the TF-IDF baseline, a linear probe, and how each
reads negated findings). Never imports the virtual cohort or another wing.
"""

from __future__ import annotations

from .negation import NEGATION_PROBES, embedding_classifier, negation_table, probe_report, tfidf_classifier
from .report_encoder import bundled_model_path, embed_reports, encoder_name, load_report_encoder

__all__ = [
    "NEGATION_PROBES",
    "bundled_model_path",
    "embed_reports",
    "embedding_classifier",
    "encoder_name",
    "load_report_encoder",
    "negation_table",
    "probe_report",
    "tfidf_classifier",
]
