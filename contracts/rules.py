"""Rule catalogue: stable IDs from ../shared/guideline/RULES.md with their guideline citation.

The citation (section title and line range in the French text) travels with every
recommendation, so a clinician can open the exact passage.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

GUIDELINE: Final = "Référentiels Auvergne Rhône-Alpes en Oncologie Thoracique — Métastases osseuses (édition 2023)"
#: Bump when any rule's logic or text changes; every output carries it.
RULESET_VERSION: Final = "aura-2023.3"


class Citation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    document: str = GUIDELINE
    section: str
    lines: str


def _c(section: str, lines: str) -> Citation:
    return Citation(section=section, lines=lines)


_CTX = "Contexte général — 4. Evènements osseux"
_SYS = "Traitement osseux systémique des métastases osseuses"
_RT = "Traitement local de la métastase osseuse par radiothérapie"

#: rule ID -> citation in the French text (line numbers of referentiel-aura-2023-metastases-osseuses.fr.txt).
CITATIONS: Final[dict[str, Citation]] = {
    "LAB-UNITS": _c("Biologie — unités usuelles (chimie clinique courante)", "-"),
    "LAB-CA-CORR": _c(_CTX + " (calcémie corrigée)", "L316"),
    #: L294-296 hypercalcaemia as an SRE; L300-306 the crisis (life-threatening, corrected calcium > 3.5 mmol/L, the
    #: threshold on L306); L316 the corrected-calcium formula
    "LAB-CA-CRISIS": _c(_CTX + " (crise aiguë hypercalcémique)", "L294-296, L300-306, L316"),
    "LAB-CRCL": _c(_SYS + " — 2.4 Modalités du traitement anti-résorptif", "L1153-1156"),
    "LAB-VITD": _c(_SYS + " — 1. Vitamine D, Tableau 1", "L819-836"),
    "LAB-CTX": _c("Contexte général — 3. Epidémiologie (marqueurs de résorption)", "L225-240"),
    "LAB-CORRECTION": _c("Pratique d'intégration (statuts FHIR/HL7 v2)", "-"),
    "SCORE-MIRELS": _c(_RT + " — 1.2 Prévention de la morbidité, Tableau 3", "L1308-1372"),
    "MIRELS-LOW": _c(_RT + " — 1.2 Score de Mirels, Tableau 3", "L1322, L1367"),
    "MIRELS-8": _c(_RT + " — 1.2 Score de Mirels, Tableau 3", "L1330-1332, L1367"),
    "MIRELS-HIGH": _c(
        _RT + " — 1.2 Score de Mirels, Tableau 3; Chirurgie — 2.1 Chirurgie préventive",
        "L1324-1328, L1340-1346, L1367, L2836-2853",
    ),
    #: Mirels >= 9 but life expectancy <= 3 months: the fixation-first condition (> 3 months) is not met; between
    #: 6 weeks and 3 months the case is discussed in RCP-OOS (RT, a simpler stabilisation); under 6 weeks SURG-LE.
    "MIRELS-HIGH-SHORT-LE": _c(
        _RT + " — 1.2 Score de Mirels, 2.1 (risque fracturaire); Chirurgie — 1. Principes généraux",
        "L1322-1332, L1573-1575, L2794-2816",
    ),
    "SCORE-SINS": _c(_RT + " — 1.2 Score SINS", "L1375-1392"),
    "SINS-SURGICAL": _c(_RT + " — 1.2 Score SINS", "L1387-1389"),
    "SCORE-OBSOLETE": _c(_RT + " — 1.3 Scores de Tokuhashi et de Rades", "L1403-1424"),
    "CLASS-OLIGO": _c(
        _RT + " — 1.5 Oligo-métastases; 2.2.1 Indications; Recommandations en situation curative",
        "L1470-1474, L1621-1625, L2161-2169",
    ),
    "CLASS-SRE": _c(_CTX, "L259-265, L282-296"),
    "IMG-FLARE": _c(
        "Rôle de la médecine nucléaire — 1.2 « flare up »; Chimiothérapie, thérapies ciblées — 1.2, recommandations",
        "L357-418, L664-668, L774-776",
    ),
    #: L489-491 the isolated lesion; L351-353 and L483 the bone scan's place (the catalogue's second sentence); the
    #: flare passage (L493-495) belongs to IMG-FLARE
    "IMG-ISOLATED": _c(
        "Rôle de la médecine nucléaire — 1. Scintigraphie osseuse; Recommandations", "L351-353, L483, L489-491"
    ),
    "SYS-AR-START": _c(_SYS + " — 2.2 Quand débuter un traitement par anti-résorptif ?", "L1068-1084, L1263-1265"),
    "SYS-AR-PREREQ": _c(_SYS + " — 2.3 Précautions avant mise en route", "L795-801, L1086-1100, L1267-1273"),
    "SYS-VITD-CORR": _c(_SYS + " — 1. Vitamine D et apports phosphocalciques, Tableau 1", "L803-865, L1124-1128"),
    "SYS-SCHEDULE": _c(_SYS + " — 2.4 Modalités du traitement anti-résorptif", "L1130-1142, L1279-1281"),
    "SYS-ZA-DOSE": _c(_SYS + " — 2.4 Modalités, Tableau 2", "L1153-1184, L900-906"),
    "SYS-ZA-FLU": _c(_SYS + " — 2.4 Modalités (syndrome pseudo-grippal)", "L1188-1196"),
    #: L1249-1255: an item on denosumab at CrCl < 30 names the rebound risk of a stop
    "SYS-DENO": _c(_SYS + " — 2.4 Modalités (dénosumab)", "L1210-1226, L736-740, L1249-1255"),
    "SYS-DENO-STOP": _c(_SYS + " — 2.4 Modalités (arrêt du dénosumab)", "L1249-1255"),
    "SYS-REVIEW-2Y": _c(_SYS + " — 2.4 Modalités (durée du traitement)", "L1198-1202, L1238-1248, L1275-1279"),
    "SYS-RENAL-TOX": _c("Chimiothérapie, thérapies ciblées et immunothérapie — 2.", "L726-742, L770-772"),
    "SYS-ONJ": _c(_SYS + " — 2.3 Précautions (ostéonécrose de la mâchoire)", "L1108-1120"),
    "SYS-ONCO": _c("Chimiothérapie, thérapies ciblées et immunothérapie", "L637-776"),
    # Local treatment (radiotherapy planner). Lines re-read against the French text (it wins over RULES.md).
    "RT-PAIN": _c(_RT + " — 1.1 Traitement de la douleur", "L1298-1302"),
    "RT-FRACT-PALL": _c(
        _RT + " — 2.1 Radiothérapie conformationnelle; Tableau 5; Recommandations; Tableau 7",
        "L1522-1563, L1795-1828, L1914, L1937-1943, L2131-2157",
    ),
    "RT-FRACTURE-RISK": _c(
        _RT + " — 1.2 Prévention de la morbidité; 2.1; Tableau 5 (douleur avec risque fracturaire)",
        "L1304-1330, L1573-1575, L1830-1850, L2149",
    ),
    "RT-MSCC": _c(
        _RT + " — 1.3 Métastase vertébrale avec compression médullaire; 2.1; Tableau 5; Tableau 7",
        "L1290-1292, L1397-1402, L1518, L1567-1569, L1863-1870, L2143-2145, L2426-2436",
    ),
    "RT-POSTOP": _c(
        _RT + " — 1.4 Traitement adjuvant post-opératoire; Tableau 5; Tableau 7; Chirurgie",
        "L1456-1461, L1851-1862, L1937-1938, L2413-2424, L2828-2830",
    ),
    "RT-SBRT-IND": _c(_RT + " — 2.2.1 Indications", "L1599-1628"),
    "RT-SBRT-CI": _c(_RT + " — 2.2.1 Indications (contre-indications)", "L1629-1636"),
    "RT-SBRT-DOSE": _c(
        _RT + " — 2.2.2 Techniques; Tableau 5; Recommandations en situation curative",
        "L1658-1680, L1871-1914, L2161-2186",
    ),
    "RT-CORD-DMAX": _c(_RT + " — 2.2.4 Effets secondaires (myélopathie radique)", "L1778-1784"),
    "RT-REIRR": _c(
        _RT + " — 4. Possibilité de ré-irradiation; Tableau 5; Option ré-irradiation",
        "L2056-2102, L1871-1892, L2191-2194",
    ),
    "RT-SBRT-FX": _c(_RT + " — 2.2.4 Effets secondaires (fracture vertébrale, pain flare)", "L1758-1766, L1788-1790"),
    "RT-DRUG": _c(
        _RT + " — 3. Irradiation et traitement systémique; Tableau 6; Tableau 7", "L1948-2016, L2150-2152, L2196-2358"
    ),
    "IR-CEMENT": _c(
        "Radiologie interventionnelle — cimentoplastie (indications, Tableau 8, risque hémorragique, os longs)",
        "L2521-2522, L2559-2643, L2687-2691",
    ),
    "SURG-LE": _c(
        "Chirurgie des métastases osseuses des membres — 1. Principes; 2.2 Fractures; 3. Séquence thérapeutique",
        "L2802-2818, L2855-2861, L2932-2956",
    ),
    "QUAL-PATHWAY": _c("Exigences de qualité dans la prise en charge", "L1-57"),
    "MOL-BIOPSY": _c("Techniques d'histologie et de biologie moléculaire", "L496-634"),
}


def cite(rule_id: str) -> Citation:
    """The guideline citation for a rule ID; an unknown ID is a programming error."""
    return CITATIONS[rule_id]
