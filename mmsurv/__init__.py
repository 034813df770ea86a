"""mmsurv: a notebook-first teaching and analysis kit for multimodal cancer prognosis.

For teaching and research only; not for clinical use.

Modules
-------
metrics      survival, classification and agreement metrics (numpy in, numbers out)
stats        Kaplan-Meier, log-rank, Cox, risk groups, LASSO-Cox, calibration
simulate     the virtual cohort with planted signal and its oracle
splits       patient-level train / validation / test / external splits
datasets     real outcome tables shipped with the kit (TCGA-CDR)
environment  seeding, device choice, environment report
record       figures and metrics.json for each notebook
runner, cli  ``mmsurv run``: execute the notebooks headless with papermill
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
