"""The guideline this system implements, kept with the contracts so that every deployment serves the passages its
recommendations cite (issue 19: "the decoded text served by the system"): the French text (Référentiels Auvergne
Rhône-Alpes, Métastases osseuses, 2023) and the rule catalogue RULES.md, copied unchanged from the project's
`../shared/guideline/` (tests/test_contracts.py checks the copy against it when it is there)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
TEXT: Final = HERE / "referentiel-aura-2023-metastases-osseuses.fr.txt"
RULES_MD: Final = HERE / "RULES.md"
#: the project's source copy, beside the repository (absent from a clone elsewhere)
SOURCE: Final = HERE.parents[2] / "shared" / "guideline"
