"""The LOINC codes lab-normalisation reads, per analyte (issue 12): each with the LOINC component, specimen
(system), method and the kind of quantity, so the one analyte a rule uses gathers the codes that real lab
catalogues send for it. `python -m services.lab_normalisation.loinc` prints the table kept in docs/loinc.md
(a test keeps the two in step). Codes seen in published value sets and implementation guides (HL7 CPG CKD,
PDDI calcium, US Core, CH LAB-Order, dQM serum creatinine); a code missing here can be configured as a local
code (LAB_LOCAL_CODES_FILE) until it is added. Pure, no I/O."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Final

from contracts.clinical import Analyte
from services.lab_normalisation.units import UNITS

LOINC: Final = "http://loinc.org"


@dataclass(frozen=True)
class LoincCode:
    code: str
    analyte: Analyte
    name: str  #: LOINC long common name
    specimen: str
    method: str  #: "" when the code names no method
    quantity: str  #: mass / substance concentration, count, ratio...
    note: str = ""  #: a caveat published with the value (French, for clinicians)


_SP = "serum or plasma"
D3_ONLY = "25-OH vitamine D3 seule : sous-estime le total chez un patient supplémenté en vitamine D2 (ergocalciférol)."
CATALOGUE: Final[tuple[LoincCode, ...]] = (
    # total calcium
    LoincCode("17861-6", "total_calcium", "Calcium [Mass/volume] in Serum or Plasma", _SP, "", "mass conc."),
    LoincCode("2000-8", "total_calcium", "Calcium [Moles/volume] in Serum or Plasma", _SP, "", "substance conc."),
    # ionised calcium (reported beside the corrected calcium)
    LoincCode("1994-3", "ionised_calcium", "Calcium.ionized [Moles/volume] in Blood", "blood", "", "substance conc."),
    LoincCode(
        "1995-0", "ionised_calcium", "Calcium.ionized [Moles/volume] in Serum or Plasma", _SP, "", "substance conc."
    ),
    LoincCode("17863-2", "ionised_calcium", "Calcium.ionized [Mass/volume] in Serum or Plasma", _SP, "", "mass conc."),
    LoincCode(
        "17864-0",
        "ionised_calcium",
        "Calcium.ionized [Mass/volume] in Serum or Plasma by Ion-selective membrane electrode (ISE)",
        _SP,
        "ion-selective electrode",
        "mass conc.",
    ),
    # albumin
    LoincCode("1751-7", "albumin", "Albumin [Mass/volume] in Serum or Plasma", _SP, "", "mass conc."),
    LoincCode(
        "61151-7",
        "albumin",
        "Albumin [Mass/volume] in Serum or Plasma by Bromocresol green (BCG) dye binding method",
        _SP,
        "bromocresol green",
        "mass conc.",
    ),
    LoincCode(
        "61152-5",
        "albumin",
        "Albumin [Mass/volume] in Serum or Plasma by Bromocresol purple (BCP) dye binding method",
        _SP,
        "bromocresol purple",
        "mass conc.",
    ),
    LoincCode(
        "2862-1",
        "albumin",
        "Albumin [Mass/volume] in Serum or Plasma by Electrophoresis",
        _SP,
        "electrophoresis",
        "mass conc.",
    ),
    # creatinine (serum/plasma or blood; Cockcroft-Gault was built on serum values, blood methods agree closely)
    LoincCode("2160-0", "creatinine", "Creatinine [Mass/volume] in Serum or Plasma", _SP, "", "mass conc."),
    LoincCode("14682-9", "creatinine", "Creatinine [Moles/volume] in Serum or Plasma", _SP, "", "substance conc."),
    LoincCode(
        "77140-2",
        "creatinine",
        "Creatinine [Moles/volume] in Serum, Plasma or Blood",
        "serum, plasma or blood",
        "",
        "substance conc.",
    ),
    LoincCode("38483-4", "creatinine", "Creatinine [Mass/volume] in Blood", "blood", "", "mass conc."),
    LoincCode("59826-8", "creatinine", "Creatinine [Moles/volume] in Blood", "blood", "", "substance conc."),
    LoincCode(
        "21232-4", "creatinine", "Creatinine [Mass/volume] in Arterial blood", "arterial blood", "", "mass conc."
    ),
    LoincCode(
        "101475-2", "creatinine", "Creatinine [Moles/volume] in Venous blood", "venous blood", "", "substance conc."
    ),
    # 25-OH vitamin D: total (D2 + D3), and D3 alone with its caveat
    LoincCode(
        "1989-3",
        "vitamin_d_25oh",
        "25-Hydroxyvitamin D3+25-Hydroxyvitamin D2 [Mass/volume] in Serum or Plasma",
        _SP,
        "",
        "mass conc.",
    ),
    LoincCode(
        "62292-8",
        "vitamin_d_25oh",
        "25-Hydroxyvitamin D2+25-Hydroxyvitamin D3 [Mass/volume] in Serum or Plasma",
        _SP,
        "",
        "mass conc.",
    ),
    LoincCode(
        "14635-7",
        "vitamin_d_25oh",
        "25-Hydroxyvitamin D3 [Moles/volume] in Serum or Plasma",
        _SP,
        "",
        "substance conc.",
        D3_ONLY,
    ),
    # serum CTX (LAB-CTX, L225-240). Issue 18: was "41171-2", a wrong check digit (mod 10: 41171-0), so real CTX
    # results were ignored; tests/unit/test_issue18_loinc.py checks every code's check digit
    LoincCode(
        "41171-0",
        "ctx_serum",
        "Collagen crosslinked C-telopeptide [Mass/volume] in Serum or Plasma",
        _SP,
        "",
        "mass conc.",
    ),
    # platelets (automated, manual or unspecified count)
    LoincCode(
        "777-3",
        "platelets",
        "Platelets [#/volume] in Blood by Automated count",
        "blood",
        "automated count",
        "number conc.",
    ),
    LoincCode("26515-7", "platelets", "Platelets [#/volume] in Blood", "blood", "", "number conc."),
    LoincCode(
        "778-1", "platelets", "Platelets [#/volume] in Blood by Manual count", "blood", "manual count", "number conc."
    ),
    # prothrombin ratio (TP, %)
    LoincCode(
        "5894-1",
        "prothrombin_pct",
        "Prothrombin time (PT) actual/normal in Platelet poor plasma by Coagulation assay",
        "platelet poor plasma",
        "coagulation assay",
        "relative time (%)",
    ),
    # alkaline phosphatase
    LoincCode(
        "6768-6",
        "alkaline_phosphatase",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        _SP,
        "",
        "catalytic conc.",
    ),
    # body weight
    LoincCode("29463-7", "body_weight", "Body weight", "patient", "", "mass"),
    LoincCode("3141-9", "body_weight", "Body weight Measured", "patient", "measured", "mass"),
)

LOINC_CODES: Final[dict[str, LoincCode]] = {c.code: c for c in CATALOGUE}
LOINC_ANALYTES: Final[dict[str, Analyte]] = {c.code: c.analyte for c in CATALOGUE}

#: LOINC codes close to a mapped analyte that are deliberately NOT read, with the reason (shown in the docs)
NOT_READ: Final[dict[str, str]] = {
    "29265-6": "Calcium corrected for albumin, computed by the lab: LAB-CA-CORR computes it from its inputs",
    "3142-7": "Body weight Stated: a declared weight is not a measurement to dose from",
    "8335-2": "Body weight Estimated",
    "44784-7": "Creatinine, maximum value during study: not one specimen",
    "2161-8": "Creatinine in urine: not the serum creatinine of Cockcroft-Gault",
}

#: words of a LOINC component (or a local display) that mean "this may be one of ours": an unknown code
#: carrying them is counted and logged by code instead of being ignored silently
_RELEVANT = re.compile(
    r"calcium|albumin|creatinin|vitamin ?d|hydroxyvitamin|calcif|calcidiol|telopeptide|\bctx\b|\bntx\b|"
    r"platelet|plaquette|thrombocyt|prothrombin|alkaline phosphatase|phosphatase alcaline|body weight|\bpoids\b",
    re.IGNORECASE,
)
LOINC_SHAPE = re.compile(r"^\d{1,7}-\d$")


def looks_relevant(display: str | None) -> bool:
    return bool(display and _RELEVANT.search(display))


def markdown() -> str:
    lines = [
        "# LOINC codes read by lab-normalisation",
        "",
        "Generated by `python -m services.lab_normalisation.loinc` from `services/lab_normalisation/loinc.py`"
        " (a test fails when this file is stale). Units are converted with UCUM (`units.py`); local codes"
        " are configured in `LAB_LOCAL_CODES_FILE`. An unknown code whose name looks like one of these analytes"
        " is counted (`osteocds_lab_unmapped_codes_total{code}`) and logged by code.",
        "",
        "| analyte | canonical unit | LOINC | name | specimen | method | quantity | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.analyte} | {UNITS[c.analyte].canonical} | {c.code} | {c.name} | {c.specimen} | {c.method or '—'} "
        f"| {c.quantity} | {c.note or ''} |"
        for c in sorted(CATALOGUE, key=lambda c: (c.analyte, c.code))
    ]
    lines += ["", "## Close codes not read", "", "| LOINC | why not |", "|---|---|"]
    lines += [f"| {code} | {why} |" for code, why in NOT_READ.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
