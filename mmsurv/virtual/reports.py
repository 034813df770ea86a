"""Virtual radiology reports: free text whose findings follow the planted tumour.

Real reports say the same thing in many ways and mix in negations ("no parametrial
invasion"), so a text model must read, not just spot words. Each report is assembled from
varied phrasings of the tumour's true size, parametrial invasion, lymph nodes and diffusion
restriction, in a fixed section layout (CLINICAL INDICATION / TECHNIQUE / FINDINGS /
IMPRESSION).
"""

from __future__ import annotations

import numpy as np

from .mri import PelvicTumour

__all__ = ["mri_report"]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def mri_report(tumour: PelvicTumour, *, seed: int) -> str:
    """A pelvic MRI report describing ``tumour``.

    Parameters
    ----------
    tumour : PelvicTumour
    seed : int
        Chooses the phrasing (same seed, same words).

    Returns
    -------
    str
    """
    rng = np.random.default_rng(seed)
    size_cm = tumour.max_diameter_mm / 10 * rng.normal(1.0, 0.05)  # radiologists measure with some error
    findings = [
        _pick(
            rng,
            [
                f"There is a {size_cm:.1f} cm mass arising from the cervix.",
                f"A cervical mass measuring {size_cm:.1f} cm in maximal dimension is identified.",
                f"Cervical tumour, {size_cm:.1f} cm in greatest diameter.",
            ],
        ),
        _pick(rng, ["It is intermediate to high signal on T2-weighted images.", "The lesion is T2 hyperintense relative to stroma."]),
    ]
    if tumour.restriction > 1.2:
        findings.append(_pick(rng, ["Marked restricted diffusion within the lesion.", "The mass shows avid diffusion restriction with low ADC."]))
    elif tumour.restriction > 0.8:
        findings.append(_pick(rng, ["Moderate diffusion restriction.", "Some restricted diffusion is seen."]))
    else:
        findings.append(_pick(rng, ["Only mild diffusion restriction.", "No significant diffusion restriction."]))
    if tumour.parametrial_invasion:
        findings.append(
            _pick(
                rng,
                [
                    "Disruption of the stromal ring with parametrial invasion.",
                    "Tumour extends into the left parametrium.",
                    "Parametrial invasion is present.",
                    "There is evidence of parametrial invasion.",
                ],
            )
        )
    else:
        findings.append(
            _pick(
                rng,
                [
                    "The hypointense stromal ring is preserved; no parametrial invasion.",
                    "No parametrial extension.",
                    "There is no evidence of parametrial invasion.",
                    "Parametrial invasion is not seen.",
                ],
            )
        )
    if tumour.nodes:
        findings.append(
            _pick(
                rng,
                [
                    f"{tumour.nodes} enlarged pelvic lymph node(s), suspicious for metastasis.",
                    f"Suspicious pelvic lymphadenopathy ({tumour.nodes} node(s)).",
                ],
            )
        )
    else:
        findings.append(_pick(rng, ["No pelvic lymphadenopathy.", "Pelvic lymph nodes are not enlarged."]))
    findings.append(_pick(rng, ["Bladder and rectum are unremarkable.", "No hydronephrosis.", "Small amount of free fluid in the pouch of Douglas."]))
    stage_words = "locally advanced" if tumour.parametrial_invasion or size_cm > 4 else "early-stage"
    impression = f"{size_cm:.1f} cm cervical carcinoma, {stage_words}" + ("; nodal disease." if tumour.nodes else "; no nodal disease.")
    return (
        "CLINICAL INDICATION: Biopsy-proven cervical carcinoma, staging.\n"
        "TECHNIQUE: Multiplanar T2-weighted and diffusion-weighted MRI of the pelvis.\n"
        f"FINDINGS: {' '.join(findings)}\n"
        f"IMPRESSION: {impression}\n"
    )
