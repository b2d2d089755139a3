"""One realistic example of every message, per topic. `python -m contracts.generate` renders them
into docs/contracts.md; tests validate every example against its model."""

from __future__ import annotations

from typing import Any, Final

from contracts.rules import RULESET_VERSION, cite
from contracts.topics import (
    ALERTS,
    CLINICAL_ASSESSMENTS,
    DEAD_LETTER,
    IMAGING_FINDINGS,
    LAB_RESULTS,
    LABS_NORMALISED,
    PATIENT_RECORDS,
    RECOMMENDATIONS,
    SCORES,
    SKELETAL_EVENTS,
    TREATMENT_EVENTS,
)

_ENV = {"patient_id": "pt-7f3a9c", "occurred_at": "2026-11-27T07:40:00+01:00",
        "recorded_at": "2026-11-27T09:12:31+01:00"}
_CRISIS_CITATION = cite("LAB-CA-CRISIS").model_dump()
_INPUTS = [
    {"name": "corrected_calcium", "value": 3.6, "unit": "mmol/L", "occurred_at": "2026-11-27T06:40:00Z",
     "source_event_id": "0b8e1d9a-53a4-5d8e-9a57-3f6fb1a1c0de"},
    {"name": "total_calcium", "value": 3.3, "unit": "mmol/L", "occurred_at": "2026-11-27T06:40:00Z",
     "source_event_id": "3c1f7a52-9d0e-4c1b-8f1e-2d7c5b9a0e11"},
    {"name": "albumin", "value": 28.0, "unit": "g/L", "occurred_at": "2026-11-27T06:40:00Z",
     "source_event_id": "b2a7c9e4-1f3d-4e8a-9c6b-5d4e3f2a1b0c"},
]

EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    PATIENT_RECORDS.name: {
        "event_id": "6a0c3a8e-3c55-4f1b-b0a4-6c1b2f9d7e10", **_ENV, "source": "dpi-bus",
        "birth_date": "1956-04-02", "sex": "male", "weight_kg": 71.0, "weight_measured_at": "2026-11-20",
        "histology": "adenocarcinoma", "molecular_profile": {"EGFR": "L858R", "ALK": "negative"},
    },
    LAB_RESULTS.name: {
        "event_id": "3c1f7a52-9d0e-4c1b-8f1e-2d7c5b9a0e11", **_ENV, "source": "lab-bus",
        "result_id": "LAB-20261127-000123-CA", "code": {"system": "http://loinc.org", "code": "17861-6",
                                                        "display": "Calcium [Mass/volume] in Serum or Plasma"},
        "value": 13.2, "unit": "mg/dL", "status": "final", "fasting": None,
    },
    IMAGING_FINDINGS.name: {
        "event_id": "9e2d4c1b-7a8f-4d3e-b5c6-1a2b3c4d5e6f", **_ENV, "source": "ris-bus",
        "lesion_id": "L1-body", "skeletal_site": "spine", "vertebral_level": "L1", "lesion_type": "lytic",
        "cortical_involvement_fraction": None, "axial_cortical_osteolysis_pct": None,
        "circumferential_cortical_osteolysis_pct": None, "vertebral_collapse": "lt_50",
        "alignment": "normal", "posterolateral_involvement": "unilateral", "epidural_extension": True,
        "cord_compression": False, "size_cm": 2.5, "modality": "mri", "new_focus": True,
    },
    CLINICAL_ASSESSMENTS.name: {
        "event_id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d", **_ENV, "source": "dpi-bus", "ecog": 1,
        "pain": {"character": "mechanical", "intensity": "moderate", "nrs": 6, "resistant_to_analgesics": True},
        "neurological_deficit": False, "life_expectancy_months": 12, "primary_controlled": True,
    },
    TREATMENT_EVENTS.name: {
        "event_id": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e", **_ENV, "source": "pharmacy-bus",
        "treatment": {"kind": "systemic_drug", "drug": "zoledronic_acid", "action": "started", "on": "2026-11-27"},
    },
    LABS_NORMALISED.name: {
        "event_id": "0b8e1d9a-53a4-5d8e-9a57-3f6fb1a1c0de", **_ENV, "source": "lab-normalisation",
        "analyte": "corrected_calcium", "result_id": "corrected:LAB-20261127-000123-CA", "value": 3.6,
        "unit": "mmol/L", "status": "final", "original_value": None, "original_unit": None, "loinc": None,
        "rule_ids": ["LAB-CA-CORR"], "fasting": None, "missing": [],
        "derived_from": [
            {"event_id": "3c1f7a52-9d0e-4c1b-8f1e-2d7c5b9a0e11", "analyte": "total_calcium", "value": 3.3,
             "unit": "mmol/L", "occurred_at": "2026-11-27T06:40:00Z"},
            {"event_id": "b2a7c9e4-1f3d-4e8a-9c6b-5d4e3f2a1b0c", "analyte": "albumin", "value": 28.0,
             "unit": "g/L", "occurred_at": "2026-11-27T06:40:00Z"},
        ],
    },
    SCORES.name: {
        "event_id": "7c8d9e0f-1a2b-5c3d-8e4f-5a6b7c8d9e0f", **_ENV, "source": "scoring", "score": "sins",
        "subject": "L1-body", "total": 11, "complete": True, "band": "potentially_unstable",
        "components": [{"name": "location", "value": "junctional", "points": 3},
                       {"name": "pain", "value": "mechanical", "points": 3},
                       {"name": "bone_lesion", "value": "lytic", "points": 2},
                       {"name": "alignment", "value": "normal", "points": 0},
                       {"name": "vertebral_collapse", "value": "lt_50", "points": 2},
                       {"name": "posterolateral_involvement", "value": "unilateral", "points": 1}],
        "missing": [], "rule_ids": ["SCORE-SINS", "SINS-SURGICAL"], "ruleset_version": RULESET_VERSION,
    },
    SKELETAL_EVENTS.name: {
        "event_id": "2e3f4a5b-6c7d-5e8f-9a0b-1c2d3e4f5a6b", **_ENV, "source": "scoring",
        "kind": "hypercalcaemia", "rule_id": "CLASS-SRE", "evidence": _INPUTS[:1],
    },
    RECOMMENDATIONS.name: {
        "event_id": "4f5a6b7c-8d9e-5f0a-b1c2-d3e4f5a6b7c8", **_ENV, "source": "scoring",
        "rule_id": "LAB-CA-CRISIS", "ruleset_version": RULESET_VERSION, "severity": "critical",
        "title": "Crise aiguë hypercalcémique : calcémie corrigée 3.60 mmol/L",
        "text_fr": "Calcémie corrigée à 3.60 mmol/L (seuil de crise : > 3,5 mmol/L). Prise en charge en urgence.",
        "citation": _CRISIS_CITATION, "inputs": _INPUTS, "missing": [], "produced_by": "scoring",
        "status": "active", "supersedes": [],
    },
    ALERTS.name: {
        "event_id": "8a9b0c1d-2e3f-5a4b-9c5d-6e7f8a9b0c1d", **_ENV, "source": "notification",
        "recommendation_id": "4f5a6b7c-8d9e-5f0a-b1c2-d3e4f5a6b7c8", "rule_id": "LAB-CA-CRISIS",
        "ruleset_version": RULESET_VERSION, "severity": "critical",
        "title": "Crise aiguë hypercalcémique : calcémie corrigée 3.60 mmol/L",
        "text_fr": "Calcémie corrigée à 3.60 mmol/L (seuil de crise : > 3,5 mmol/L). Prise en charge en urgence.",
        "citation": _CRISIS_CITATION, "inputs": _INPUTS, "missing": [], "produced_by": "scoring",
        "status": "acknowledged", "acknowledged_by": "dr-martin", "acknowledged_at": "2026-11-27T09:20:00+01:00",
    },
    DEAD_LETTER.name: {
        "service": "lab-normalisation", "topic": "hospital.lab-results.v1", "partition": 2, "offset": 1841,
        "key_b64": "cHQtN2YzYTlj", "value_b64": "eyJldmVudF9pZCI6IC4uLn0=", "headers": {},
        "error_type": "Rejected",
        "reason": "total_calcium: unknown unit 'mg'; accepted: mg/dl, mmol/l", "failed_at": "2026-11-27T09:12:32Z",
    },
}
