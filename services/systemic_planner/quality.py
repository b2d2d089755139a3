"""Quality of care and the bone biopsy: QUAL-PATHWAY (Exigences de qualité, L1-57) and MOL-BIOPSY (Techniques
d'histologie et de biologie moléculaire, L496-634), from hospital.care-events.v1. Pure."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from contracts.base import InputUsed
from contracts.care import BoneBiopsy, CareEvent, PathwayStep
from contracts.plan import Check, PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner import texts_quality as t
from services.systemic_planner.fr import fr_date
from services.systemic_planner.items import item
from services.systemic_planner.state import SystemicState

#: QUAL-PATHWAY: what every patient should be offered (L1-57), in the text's order.
PATHWAY: Final = (
    "multidisciplinary_decision",
    "patient_information",
    "smoking_cessation",
    "pain_management",
    "palliative_supportive_care",
    "psychologist",
    "social_worker",
    "occupational_exposure",
    "oncogenetics",
    "clinical_trial",
)
_STATUS = {"done": "done", "to_do": "to_do", "declined": "declined", "not_applicable": "done"}
#: Issue 18: the items the text makes systematic, for every patient (its lines): "not applicable" is not done for
#: them, the line stays to do. The others are conditional or optional ("peut/peuvent bénéficier", "en cas de", "a la
#: possibilité"; help to stop smoking presumes a smoker) and keep it. A patient's refusal (declined) stays accepted.
SYSTEMATIC: Final = {
    "multidisciplinary_decision": "L5-11",  # "font l'objet d'une discussion pluridisciplinaire"
    "patient_information": "L13-19",  # "sont expliqués au patient", "remis au patient"
    "pain_management": "L29-31",  # "doit bénéficier d'une prise en charge de la douleur"
    "occupational_exposure": "L43-45",  # "doit être systématique"
}
#: Issue 18 review: the items that are the care team's duty, not an offer the patient may refuse: "declined" is not
#: done for them, the line stays to do (L5-6 "Les modalités de prise en charge du patient font l'objet d'une
#: discussion pluridisciplinaire").
NOT_DECLINABLE: Final = {"multidisciplinary_decision": "L5-6"}

#: MOL-BIOPSY (L603-611): adenocarcinoma, priority biomarkers on a bone metastasis (the whole panel of the primary
#: tumour applies, L601-603); PD-L1 by immunohistochemistry is reliable on bone (L568-570).
ADENOCARCINOMA_MARKERS: Final = ("EGFR", "ALK", "KRAS", "PD-L1")
#: at resistance to a tyrosine-kinase inhibitor the resistance mutations are searched (L611-613)
RESISTANCE_MARKER: Final = "TKI resistance mutations"


#: Issue 18, MOL-BIOPSY (L601-615): how a free-text molecular result reads (BoneBiopsy.molecular_results carries no
#: status). Only a result that reads as one (positive, negative, a variant, a PD-L1 score) counts as done; a failure
#: ("échec", "non contributif", "insufficient sample": the DNA loss L532-536, L626 warn of), a test not done, a
#: pending one, a result given with a reservation on its quality, and any wording not recognised are missing:
#: counted done by mistake, a failed EGFR/ALK/KRAS (L607-611) would never be asked again; counted missing by
#: mistake, it only asks to check the report. Issue 18 review: the negated and test-quality wordings ("non
#: recherchée", "ADN non amplifiable", "contrôle interne non valide", "low coverage", "pas de tumeur") are read
#: before any word of a result, and a percentage is a result for PD-L1 only (a tumour-cell content is not).
ResultKind = Literal["done", "failed", "not_done", "pending", "qualified", "unrecognised", "none"]
#: on the text folded to lower case without accents or punctuation (`_fold`), in this order
_FAILED: Final = re.compile(
    r"\bfail|\bechec|\bechou|\b(non|not|pas) contrib|\bnoncontributi|\bnot contributo|"
    r"\b(non |not |un|in)interp|\b(non |not |in|un)evaluable|\b(non |not |in)analysable|\b(not |non |un)assessable|"
    r"\binsuff|\bqns\b|\bnon realisable|\bnot feasible|\birrealisable|\bimpossible|\binvalid|\bnon valide|"
    r"\bindetermin|\bnon determin|\bundetermin|\bunable to|\bcould not|\bcannot be|\bno call\b|\breject|"
    r"\bequivo|\bdouteu|\binconclusi|\bnon conclu|\b(non|not) informati|\binexploitable|\bdegrade|"
    r"\binadequa|\binadapte|\btoo low\b|\bpoor (dna|rna|quality|sample)|\bmauvaise qualite|"
    r"\b(absence|pas) d (adn|arn)\b|\bno (dna|rna)\b|\b(adn|dna|arn|rna) non amplifi|\b(non|not|un) ?amplifiable|"
    r"\b(absence de|pas de|no|sans|aucun) signal|"
    r"\bcouverture insuffisante|\b(low|poor|insufficient) coverage|\bnon couverte?s?\b|\bnot covered|\buncovered|"
    r"\b(absence de|pas de|no|sans|aucune?) (cellules?|tumeur|tumou?r)\b|\btumeur absente|\bno tumou?r cells?|"
    r"(^| )0 ?% (de )?cellules|\bcellules tumorales 0 ?%|"
    r"\b(absence de|pas de|aucun|sans|no) (materiel|material|prelevement|sample|tissue?|tissu)\b"
)
_NOT_DONE: Final = re.compile(
    r"\bnon (recherchee?s?|testee?s?|analysee?s?|evaluee?s?|etudiee?s?|techniquee?s?|faite?s?|effectuee?s?|"
    r"realisee?s?|demandee?s?)\b|\bnot (done|performed|requested|tested|searched|analy[sz]ed)\b|"
    r"\bnon disponible|\bnot available|\bunavailable|\b(pas de|no|sans|aucun) result(at)?s?\b|\bpas de bloc\b|"
    r"\bepuisee?s?\b|\bexhausted|\bcancel|\bannulee?s?\b|\ba faire\b|(^|\s)(n a|na)$|"
    # second review: a test still to do, or whose result is not known, is no result
    r"\ba (realiser|prevoir|programmer|completer|demander|refaire|rechercher|tester)\b|"
    r"\bpas (faite?s?|realisee?s?|effectuee?s?|recherchee?s?|testee?s?|demandee?s?)\b|"
    r"\binconnue?s?\b|\bnon connue?s?\b|\bunknown\b|\bnot known\b|"
    r"\bnon (renseignee?s?|communiquee?s?|precisee?s?|transmise?s?|rendue?s?)\b|\bnot (reported|provided)\b|"
    r"\babandonn|\brefusee?s?\b|\brefused\b|\bdeclined\b|\bproposee?s?\b"
)
_PENDING: Final = re.compile(
    r"\ben cours\b|\ben attente|\bpending|\bin progress|\ba venir\b|\bawaited|\bdemandee?\b|\brequested|"
    r"\bprevue?s?\b|\benvoyee?s?\b|\bsen[dt] ?out\b|\bto follow\b|\btbd\b|\bulterieur|\ba suivre\b"
)
#: a reservation on the test's quality: "qualified" when the text also gives a result, else the test failed
_RESERVATION: Final = re.compile(
    r"\bsous reserve|\bsensibilite limitee|\bpeu sensible|\blow confidence|\blow tumou?r|"
    r"\blimite? (de|of) detection (non atteinte|not reached)|\bcontrole (qualite|interne) non (satisfaisant|conforme)|"
    r"\bqc non conforme|\b(cellularite|taux de cellules tumorales|pourcentage de cellules tumorales|richesse "
    r"tumorale|contenu tumoral)( tumorale)? (faible|basse)|\bfaible (taux|cellularite|pourcentage|contenu|richesse)"
)
_BORDERLINE: Final = re.compile(r"\bborderline|\ba la limite\b")
#: second review: a result given as still to confirm ("à confirmer", "présence non exclue") is qualified, result or not
_TO_CONFIRM: Final = re.compile(
    r"\ba (confirmer|verifier|controler)\b|\bnon exclue?s?\b|\bto (be )?confirm|\bnot excluded"
)
#: "no amplification" alone may be a PCR that failed or a gene not amplified: a result only when a gene is named
_NO_AMPLIFICATION: Final = re.compile(r"\b(no|absence d|pas d|non|sans|aucune?) ?amplifi")
_GENE: Final = re.compile(r"\b(met|erbb2|her2|egfr|kras|alk|ros1|ret|braf|ntrk\d?|nrg1)\b")
#: Second review: only words of a result count, never the name of a test ("mutation", "recherche de réarrangement",
#: "expression", "fusion", "translocation", "exon", "IHC" alone name what was searched, not what was found): a
#: result is positive (muté, détecté, présence, présent, réarrangé, positif, a variant such as L858R or an exon 19
#: deletion), negative (négatif, sauvage, wild type, "absence de mutation", "pas de réarrangement", "mutation :
#: non"), or a score (TPS, CPS, 0 to 3+).
_DONE: Final = re.compile(
    r"\bneg(atif|ative|atifs|atives)?\b|\bpos(itif|itive|itifs|itives)?\b|\bmutee?s?\b|\brearrangee?s?\b|"
    r"\bsauvage|\bwild ?type|\bwt\b|detecte|\bpresence|\bpresente?s?\b|\bidentifiee?s?\b|\bretrouvee?s?\b|"
    r"\bmise? en evidence\b|\b(absence|pas|aucune?|sans|no|none) (d |de |de la |du |des )?(mutations?|"
    r"rearrangements?|fusions?|translocations?|alterations?|anomalies?|variants?|expression|marquage|amplification)\b|"
    r"\b(mutations?|rearrangements?|fusions?|translocations?|alterations?|amplifications?)( [a-z0-9]+)? (non|oui)$|"
    r"\bamplifi|deletion|(\b|\d)del\b|\bdel ?(ex(on)? ?)?\d+\b|\binsertion|\bins\b|\bskipping|\bduplication|"
    r"\bsubstitution|"
    r"\b[a-z]\d{1,4}[a-z]\b|\bp ?[a-z]{3}\d+|\bc \d+|\b(tps|cps|tc|ic)\s?[<>]?\s?\d|\b[0-3]\s?\+|"
    r"\b(mutated|rearranged|translocated|detected)\b|\bihc( [a-z0-9]+)? [0-3]\b|"
    # a fusion partner named is a rearrangement found (EML4-ALK, KIF5B-RET, CD74-ROS1...)
    r"\b(eml4|kif5b|cd74|ccdc6|ncoa4|ezr|slc34a2|sdc4|tpm3|tfg|lrig3|etv6)\b"
)
#: Second review: a positive result in its own clause ("EGFR : L858R détectée ; T790M non recherchée") is a result
#: although another clause names a test not done or pending (another variant, another technique); a negative one is
#: not (a negative IHC with its FISH pending is not yet the answer). Clauses: split on ; , / ( ) and "mais".
_CLAUSES: Final = re.compile(r"[;,/()\n|]+|\bmais\b|\bbut\b")
_POSITIVE: Final = re.compile(
    r"\bmutee?s?\b|\brearrangee?s?\b|detectee?s?\b|\bpresence\b|\bpresente?s?\b|\bidentifiee?s?\b|"
    r"\bretrouvee?s?\b|\bmise? en evidence\b|\bpositi(f|ve|fs|ves)\b|\b(detected|mutated|rearranged)\b"
)
_NEGATION: Final = re.compile(
    r"\b(pas|non|aucune?|absence|absente?|sans|no|not|none|neg\w*|sauvage|wild|wt|exclue?s?)\b"
)
#: PD-L1 is a percentage of tumour cells (TPS, L568-570); a tumour-cell content (cellularity) is not a result
_CELLULARITY: Final = re.compile(
    r"\b(taux|pourcentage|proportion) de cellules tumorales\s?[<>]?\s?\d+\s?%|\bcellularite( tumorale)?\s?[<>]?\s?\d+"
    r"\s?%|\btumou?r (cell )?content\s?[<>]?\s?\d+\s?%"
)
_PERCENT: Final = re.compile(r"\d\s?%")
_NOT_A_RESULT: Final[tuple[tuple[ResultKind, re.Pattern[str]], ...]] = (
    ("failed", _FAILED),
    ("not_done", _NOT_DONE),
    ("pending", _PENDING),
)


def _fold(text: str) -> str:
    """Lower case, accents removed, punctuation as spaces except %, + and <, >."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9%+<>]+", " ", plain).split())


def _kind(folded: str, marker: str | None) -> ResultKind:
    for kind, words in _NOT_A_RESULT:
        if words.search(folded):
            return kind
    result = bool(_DONE.search(folded))
    if _BORDERLINE.search(folded) or _TO_CONFIRM.search(folded):
        return "qualified"
    if _RESERVATION.search(folded):
        return "qualified" if result else "failed"
    if _NO_AMPLIFICATION.search(folded) and not _GENE.search(folded):
        return "unrecognised"
    if result:
        return "done"
    if (marker or "").strip().upper() == "PD-L1" and _PERCENT.search(_CELLULARITY.sub(" ", folded)):
        return "done"
    return "unrecognised"


@functools.lru_cache(maxsize=4096)  # pure; read again at every decision while the biopsy is the newest
def result_kind(raw: str | None, marker: str | None = None) -> ResultKind:
    """What a reported molecular result is (issue 18): read robustly, French or English, case and accents aside.
    `marker`: the biomarker it is reported for (a percentage is a result for PD-L1 only). Second review: a text that
    names a test not done or pending reads as such, unless one of its clauses gives a positive result (`_CLAUSES`):
    the other clauses then decide on their own (a failure or a reservation anywhere still holds)."""
    folded = _fold(raw or "")
    if not folded:
        return "none"
    kind = _kind(folded, marker)
    if kind not in ("not_done", "pending"):
        return kind
    clauses = [_fold(c) for c in _CLAUSES.split(raw or "")]
    rest = [c for c in clauses if c and not any(words.search(c) for _, words in _NOT_A_RESULT)]
    if any(_POSITIVE.search(c) and not _NEGATION.search(c) for c in rest):
        return _kind(" ; ".join(rest), marker)
    return kind


@dataclass(frozen=True)
class MarkerResult:
    marker: str
    raw: str | None
    kind: ResultKind

    @property
    def shown(self) -> str:
        """The reported wording, shortened (the whole report stays with the pathology lab)."""
        text = " ".join((self.raw or "").split())
        return text if len(text) <= 80 else text[:79] + "…"

    @property
    def shown_fr(self) -> str:
        return "échec" if self.kind == "failed" and _fold(self.shown) == "failed" else self.shown

    def missing(self) -> str:
        """English, like every `missing` entry; the contract's bare "failed" adds nothing to name."""
        why = {
            "failed": "last test failed",
            "not_done": "not done",
            "pending": "pending",
            "qualified": "qualified result, to confirm",
            "unrecognised": "unrecognised result, to check",
        }.get(self.kind)
        if why is None or (self.kind == "failed" and _fold(self.shown) == "failed"):
            return f"{self.marker} result"
        return f"{self.marker} result ({why}: {self.shown})"


def _steps(s: SystemicState, at: r.AsOf) -> dict[str, tuple[PathwayStep, CareEvent]]:
    latest: dict[str, tuple[PathwayStep, CareEvent]] = {}
    for e in sorted(s.care.values(), key=lambda e: (e.occurred_at, e.recorded_at, e.event_id.int)):
        if isinstance(e.event, PathwayStep) and at.today_ge(e.event.on):
            latest[e.event.item] = (e.event, e)
    return latest


def pathway(s: SystemicState, at: r.AsOf) -> PlanItem:
    """QUAL-PATHWAY: one line per item, done / to do / declined (not applicable counts as done, except for an item the
    text makes systematic: SYSTEMATIC; declined is never done for the team's own duty: NOT_DECLINABLE)."""
    steps = _steps(s, at)
    checks = []
    inputs = []
    for name in PATHWAY:
        found = steps.get(name)
        if found is None:
            checks.append(Check(name=name, status="to_do", detail_fr=t.PATHWAY_FR[name] + " : à proposer."))
            continue
        step, e = found
        if step.status == "not_applicable" and name in SYSTEMATIC:
            checks.append(Check(name=name, status="to_do", detail_fr=t.pathway_not_waivable(name, step)))
        elif step.status == "declined" and name in NOT_DECLINABLE:
            checks.append(Check(name=name, status="to_do", detail_fr=t.pathway_not_declinable(name, step)))
        else:
            checks.append(Check(name=name, status=_STATUS[step.status], detail_fr=t.pathway_line(name, step)))
        inputs.append(InputUsed(name=f"pathway:{name}", value=step.status, source_event_id=e.event_id))
    todo = [c.name for c in checks if c.status == "to_do"]
    return item(
        "care-pathway",
        "QUAL-PATHWAY",
        "info",
        "info",
        f"Parcours de soins : {len(PATHWAY) - len(todo)}/{len(PATHWAY)} éléments traités",
        t.pathway_text(todo),
        inputs=inputs,
        checks=checks,
        what_would_change_fr="Chaque élément proposé, réalisé ou refusé et enregistré met la ligne à jour.",
    )


def _biopsy(s: SystemicState, at: r.AsOf) -> tuple[BoneBiopsy, CareEvent] | None:
    found = [
        (e.event, e) for e in s.care.values() if isinstance(e.event, BoneBiopsy) and not at.is_future(e.occurred_at)
    ]
    found.sort(key=lambda x: (x[0].on, x[0].status == "reported", x[1].recorded_at, x[1].event_id.int))
    return found[-1] if found else None


def expected_markers(b: BoneBiopsy) -> tuple[str, ...] | None:
    """The molecular tests expected for the reported histology; None when the text gives no rule for it."""
    if b.histology == "squamous_cell":
        return ()  # L613-615: no molecular testing for a squamous carcinoma
    if b.histology == "adenocarcinoma":
        extra = (RESISTANCE_MARKER,) if b.context == "tki_resistance" else ()
        return ADENOCARCINOMA_MARKERS + extra
    return None


def bone_biopsy(s: SystemicState, at: r.AsOf) -> PlanItem | None:
    found = _biopsy(s, at)
    if found is None:
        return None
    b, e = found
    used = [InputUsed(name="bone_biopsy", value=f"{b.status} {b.on.isoformat()}", source_event_id=e.event_id)]
    if b.status == "planned":
        return item(
            "bone-biopsy",
            "MOL-BIOPSY",
            "recommended",
            "info",
            f"Biopsie osseuse prévue le {fr_date(b.on)} : conditionnement pour la biologie moléculaire",
            t.biopsy_planned_text(b.context == "tki_resistance"),
            inputs=used,
        )
    if b.decalcification == "strong_acid":
        used.append(InputUsed(name="decalcification", value="strong_acid", source_event_id=e.event_id))
        return item(
            "bone-biopsy",
            "MOL-BIOPSY",
            "warning",
            "warning",
            "Biopsie osseuse décalcifiée par un acide fort : ADN probablement inutilisable",
            t.BIOPSY_STRONG_ACID_TEXT,
            inputs=used,
            what_would_change_fr="Une nouvelle biopsie décalcifiée à l'EDTA ou à l'acide formique.",
        )
    expected = expected_markers(b)
    if b.histology is not None:
        used.append(InputUsed(name="histology", value=b.histology, source_event_id=e.event_id))
    if expected is None:
        return item(
            "bone-biopsy",
            "MOL-BIOPSY",
            "cannot_decide",
            "info",
            "Biopsie osseuse : tests moléculaires à préciser",
            t.biopsy_unknown_histology_text(b.histology),
            inputs=used,
            missing=[] if b.histology else ["histology of the bone biopsy"],
        )
    results = {k.strip().upper(): v for k, v in b.molecular_results.items()}
    read = [MarkerResult(m, results.get(m.upper()), result_kind(results.get(m.upper()), m)) for m in expected]
    done = [x for x in read if x.kind == "done"]
    missing = [x.missing() for x in read if x.kind != "done"]
    return item(
        "bone-biopsy",
        "MOL-BIOPSY",
        "to_do" if missing else "done",
        "info",
        t.biopsy_reported_title(b.histology, bool(expected)),
        t.biopsy_reported_text(
            expected,
            done=[(x.marker, x.shown) for x in done],
            by_kind={k: [(x.marker, x.shown_fr) for x in read if x.kind == k] for k in t.UNUSABLE_FR},
            missing=[x.marker for x in read if x.kind != "done"],
        ),
        inputs=used
        + [InputUsed(name=f"marker:{x.marker}", value=x.raw) for x in done]
        + [
            InputUsed(name=f"marker_not_usable:{x.marker}", value=x.raw) for x in read if x.kind not in ("done", "none")
        ],
        missing=missing,
        what_would_change_fr="Chaque résultat reçu retire le test de la liste des manquants." if missing else None,
    )
