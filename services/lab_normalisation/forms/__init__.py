"""Clinician entry (issue 23): the forms, described once in Python. From this one description come the FHIR R4
Questionnaires the intake serves (`fhir.questionnaire`), which the French forms page renders as they are (so the page
and the Questionnaire cannot drift), and the reading of a QuestionnaireResponse (`response.read_response`).

A module per section of the guideline (five forms, four modules): `imaging` (a lesion's imaging finding:
SCORE-MIRELS, SCORE-SINS), `assessment` (the clinical assessment), `local` (the surgical opinion and the local
treatment request: RT-*, SURG-*), `treatment` (a treatment received); `model` describes a form, `choices` holds the
answer lists they share (the score tables of SCORE-MIRELS, Tableau 3, L1308-1372, and SCORE-SINS, L1375-1392, with
their points). Pure, no I/O.
"""

from __future__ import annotations

from typing import Final

from services.lab_normalisation.forms.assessment import ASSESSMENT
from services.lab_normalisation.forms.imaging import LESION_FINDING
from services.lab_normalisation.forms.local import LOCAL_TREATMENT_REQUEST, SURGICAL_OPINION
from services.lab_normalisation.forms.treatment import TREATMENT_EVENT

#: every form by its id (the Questionnaire's id)
FORMS: Final = {
    f.id: f for f in (LESION_FINDING, ASSESSMENT, SURGICAL_OPINION, LOCAL_TREATMENT_REQUEST, TREATMENT_EVENT)
}
