"""HAZ-27-FUTURE-HIDES: the systemic planner's "decide twice" plans merged (pure): decision A and the views B ("the
current one holds") and C ("the future one holds now") built by as_of.py.

Per plan item (its key), `merged`: B and C agree (the item but its inputs: presence, rule, status, severity, texts,
orders, checks): B's item (decided on current data). They disagree: A's item (today's behaviour), except when B's item
is critical and A's is not (or absent): B's item, marked "à vérifier" with the future-dated facts as inputs; and when
A has none: B's recommendation (or any item of B's with an order) suspended ("cannot decide", a warning, no order, the
future-dated facts as inputs), B's other items kept with their texts, marked and naming those facts (`kept`), left out
only when not an alert and contradicting A's reading published marked (`read_ahead`, `contradicts`): never a silent
withdrawal (session 31, review R31-MERGE). Where A reads the record ahead (A decides as C) with no alert and B gives
one, B's item is published, suspended or marked (an alert is never withdrawn on a record not yet current); where
it drafts another order than B's, B's, marked (R29B), but where B's only spaces zoledronic acid A's keeps monthly,
A's, marked (review R31-SYS2, SYS-SCHEDULE L1136-1140: monthly holds on either reading). An item
only C gives is never published."""

from __future__ import annotations

from typing import Final

from contracts.base import InputUsed
from contracts.plan import PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner.fr import fr_date
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.facts import Fact


def _decision(x: PlanItem | None) -> str | None:
    """What B and C must agree on: the item but its inputs (presence, rule, status, severity, texts, orders, checks:
    the schedule a response gives is said in the text only, SYS-SCHEDULE L1138-1140), not the facts' provenance."""
    return None if x is None else x.model_dump_json(exclude={"inputs"})


def _dates(future: tuple[Fact[str], ...]) -> str:
    """The records' days in the hospital's zone, as the planner's other dates (review R29-SYS)."""
    days = sorted({f.occurred_at.astimezone(HOSPITAL_TZ).date() for f in future})
    return ", ".join(fr_date(d) for d in days)


def _shown(future: tuple[Fact[str], ...]) -> list[InputUsed]:
    return [
        InputUsed(name="future_dated_record", value=f.value, occurred_at=f.occurred_at, source_event_id=f.event_id)
        for f in future
    ]


def read_ahead(x: PlanItem, future: tuple[Fact[str], ...], spacing: bool = False) -> PlanItem:
    """A's item where A read a record dated in the future as holding now (A decides as C) and current data decide
    otherwise (review R29-SYS: a "good" response dated tomorrow spacing the infusions, a restart shown under way):
    kept, said to rest on that record, to verify. `spacing`: current data would space the infusions A keeps monthly
    (review R31-SYS2, SYS-SCHEDULE L1136-1140): said so."""
    note = (
        f" À vérifier : cet élément tient compte d'un enregistrement daté dans le futur ({_dates(future)} ; "
        "imagerie ou évaluation clinique) ; les données actuelles conduisent à une autre décision : vérifier sa date "
        "(horloge du système qui l'a produit) et son contenu."
    )
    if spacing:
        note += (
            " Sur les données actuelles, l'espacement trimestriel serait possible (bonne réponse) ; il n'est pas "
            "proposé tant que cet enregistrement n'est pas vérifié : le rythme mensuel vaut dans les deux cas."
        )
    return x.model_copy(update={"text_fr": x.text_fr + note, "inputs": [*x.inputs, *_shown(future)]})


def to_verify(x: PlanItem, future: tuple[Fact[str], ...]) -> PlanItem:
    """B's emergency, published over A: the future-dated records shown as inputs and said to be verified."""
    dates = _dates(future)
    note = (
        f" À vérifier : un enregistrement daté dans le futur ({dates} ; imagerie ou évaluation clinique) contredit cet "
        "élément, décidé sur les données actuelles : sa date (horloge du système qui l'a produit) est à vérifier."
    )
    shown = _shown(future)
    return x.model_copy(update={"text_fr": x.text_fr + note, "inputs": [*x.inputs, *shown]})


#: what may differ between two readings' orders of one drug besides its interval: the dose and its wording (review
#: R31-SYS3: a course under way on one reading is dosed on the initial clearance, a restart on today's, Tableau 2)
_DOSING: Final = {"interval": "", "dose": 0.0, "instructions_fr": ""}


def _spaces(x_b: PlanItem, x_a: PlanItem) -> bool:
    """`x_b`'s orders are `x_a`'s with zoledronic acid spaced to every 3 months where `x_a`'s is monthly, nothing else
    changed but the dose (SYS-SCHEDULE L1136-1140: the spacing a good response allows; the views differ on the
    response; review R31-SYS3: the spacing is withheld whatever the dose each reading gives)."""
    if len(x_a.orders) != len(x_b.orders):
        return False
    spaced = False
    for o_a, o_b in zip(x_a.orders, x_b.orders, strict=True):
        if o_a == o_b:
            continue
        if o_a.drug != "zoledronic_acid" or (o_a.interval, o_b.interval) != ("P1M", "P3M"):
            return False
        if o_b.model_copy(update=_DOSING) != o_a.model_copy(update=_DOSING):
            return False
        spaced = True
    return spaced


#: what a clinician would act on (a recommendation: an order drafted; its prerequisites follow it)
_ACTIONABLE = ("recommended",)


def _drafts(x: PlanItem) -> bool:
    """An item a clinician would prescribe from: a recommendation, or any item carrying an order."""
    return x.status in _ACTIONABLE or bool(x.orders)


def kept(x: PlanItem, future: tuple[Fact[str], ...]) -> PlanItem:
    """B's item that A lacks and that drafts no order (session 31, reviews R30-SYS and R30-MERGE): what current data
    say, published as it is (status, severity, text, checks), the records dated in the future named and said to be
    verified. Never "cannot decide" nor "Suspendu": a non-indication stays one, an advice its advice."""
    note = (
        " À vérifier : élément décidé sur les données actuelles ; un enregistrement daté dans le futur "
        f"({_dates(future)} ; imagerie ou évaluation clinique), pas encore actuel, le retirerait du plan : vérifier sa "
        "date (horloge du système qui l'a produit) et son contenu."
    )
    return x.model_copy(update={"text_fr": x.text_fr + note, "inputs": [*x.inputs, *_shown(future)]})


def _alert(x: PlanItem) -> bool:
    """Notified to the clinician (domain's rule: NOTIFY_STATUSES; SYS-ONCO's info item is not)."""
    from services.systemic_planner.domain import _notify  # domain imports this module: read at call time

    return _notify(x)


def _course_under_way(x: PlanItem) -> bool | None:
    """What `x` states of an anti-resorptive course being under way, None when nothing. SYS-REVIEW-2Y's item is given
    only with a course under way (L1275-1277: "poursuivi pendant au moins 2 ans puis réévalué"; domain: `if on_ar`);
    SYS-AR-START's item says "Anti-résorptif en cours" ("done") only then, and any other of its decisions is taken on
    no course under way (L1068-1074, L1263-1265: `antiresorptive_start` reads `on_antiresorptive` first)."""
    if x.rule_id == "SYS-REVIEW-2Y":
        return True
    if x.rule_id == "SYS-AR-START":
        return x.status == "done"
    return None


def contradicts(x: PlanItem, y: PlanItem) -> bool:
    """`x` and `y` cannot both hold (review R31-MERGE): one states an anti-resorptive course under way, the other none
    (a start, L1263-1265, beside the 2-year review of a course under way, L1275-1277: R30-MERGE). Items saying nothing
    of the course (a warning, the prerequisites, SYS-ONCO, the pathway) contradict nothing."""
    mine, theirs = _course_under_way(x), _course_under_way(y)
    return mine is not None and theirs is not None and mine != theirs


def suspended(x: PlanItem, future: tuple[Fact[str], ...], ahead: bool = False) -> PlanItem:
    """B's actionable item that A lacks (a record dated in the future, read as holding now, withdraws it: a lesion
    "resolved" tomorrow and SYS-AR-START today, review R27B): neither drafted (no order while a record says
    otherwise) nor silently dropped: a warning "cannot decide" naming the records dated in the future, to verify."""
    dates = _dates(future)
    note = (
        (
            f"Suspendu, à vérifier : « {x.title} » repose sur un enregistrement daté dans le futur ({dates} ; imagerie "
            "ou évaluation clinique), pas encore actuel ; les données actuelles ne le prescrivent pas. Vérifier sa "
            "date (horloge du système qui l'a produit) et son contenu avant toute prescription."
        )
        if ahead
        else (
            f"Suspendu, à vérifier : sur les données actuelles, « {x.title} » ; un enregistrement daté dans le futur "
            f"({dates} ; imagerie ou évaluation clinique) le contredit. Vérifier sa date (horloge du système qui l'a "
            "produit) et son contenu avant toute prescription."
        )
    )
    shown = _shown(future)
    return x.model_copy(
        update={
            "status": "cannot_decide",
            "severity": "warning",
            "title": f"À vérifier : {x.title}",
            "text_fr": note,
            "inputs": [*x.inputs, *shown],
            "orders": [],
            "what_would_change_fr": "La date de l'enregistrement daté dans le futur vérifiée, ou cette date atteinte.",
        }
    )


def merged(a: list[PlanItem], b: list[PlanItem], c: list[PlanItem], future: tuple[Fact[str], ...]) -> list[PlanItem]:
    """Per item key (HAZ-27-FUTURE-HIDES): B where B and C agree, else A, but B's critical item A lacks (marked),
    B's item A lacks that drafts an order suspended (`suspended`), B's other items A lacks kept (`kept`) unless one
    contradicts A's reading of the record ahead published marked (`read_ahead`, `contradicts`) and is no alert, and
    B's alert where A's reading is none (suspended, or marked), A's marked items contradicting it left out when no
    alert (review R31-MERGE)."""
    by_a, by_b, by_c = ({x.key: x for x in items} for items in (a, b, c))
    out: list[PlanItem | str] = []  # a key: B's item kept, decided once every other item is
    marked: list[PlanItem] = []  # A's items published as A's reading of the record ahead
    raised: list[PlanItem] = []  # B's alerts published where A's reading of the record ahead has none
    starts: dict[str, PlanItem] = {}  # B's start among them, published suspended
    for key in [*by_a, *(k for k in by_b if k not in by_a)]:
        x_a, x_b, x_c = by_a.get(key), by_b.get(key), by_c.get(key)
        if _decision(x_b) == _decision(x_c):
            chosen = x_b
        elif x_b is not None and x_b.severity == "critical" and (x_a is None or x_a.severity != "critical"):
            chosen = to_verify(x_b, future)
        elif x_a is None and x_b is not None and _drafts(x_b):
            # an order drafted on data a record dated ahead contradicts (SYS-AR-START L1068-1074: "dès la
            # découverte d'une métastase osseuse", the metastasis resolved ahead): suspended, never silently withdrawn
            chosen = suspended(x_b, future)  # (the lead, 2026-12-06)
        elif x_a is None and x_b is not None:
            out.append(key)  # no order: what current data say, kept below (session 31)
            continue
        elif x_a is not None and _decision(x_a) == _decision(x_c):  # A read the record ahead as holding now
            # review R29-SYS: never silently; no order drafted on it that current data would not draft; where
            # current data draft another order, theirs, said to be contradicted (review R29B: P1M, not P3M)
            if x_a.orders and x_b is not None and x_b.orders and _spaces(x_b, x_a):
                # review R31-SYS2: current data space the infusions (a "good" response an entry in error dated ahead,
                # recorded now, withdraws) where A's reading keeps them monthly: monthly is the rule and holds on
                # either reading, spacing is only possible (SYS-SCHEDULE L1136-1140, L1279-1281): A's, marked
                marked.append(x_a)
                chosen = read_ahead(x_a, future, spacing=True)
            elif x_a.orders and x_b is not None and x_b.orders and x_b.orders != x_a.orders:
                chosen = to_verify(x_b, future)
            elif x_b is not None and _alert(x_b) and not _alert(x_a):
                # review R31-MERGE: current data raise an alert A's reading does not (the start recommended today,
                # A's "pas d'indication à débuter" on a resolution dated ahead, SYS-AR-START L1068-1074): B's,
                # suspended when it drafts, else marked; the alert is reworded, never withdrawn "ne s'applique plus"
                raised.append(x_b)
                chosen = suspended(x_b, future) if _drafts(x_b) else to_verify(x_b, future)
                if chosen.status == "cannot_decide" and x_b.rule_id == "SYS-AR-START" and not x_b.orders:
                    starts[key] = x_b  # decided below, once every key's orders are (review R31-MERGE2)
            else:  # A's reading, said to rest on the record ahead (current data decide otherwise)
                marked.append(x_a)
                same = not x_a.orders or (x_b is not None and x_b.orders == x_a.orders)
                chosen = read_ahead(x_a, future) if same else suspended(x_a, future, ahead=True)
        else:
            chosen = x_a
        if chosen is not None:
            out.append(chosen)
    # B's items A lacks that draft no order (reviews R30-SYS, R30-MERGE): kept as current data give them, marked:
    # the estimate SYS-AR-START asks for (L1070-1074), its non-indication (L1072-1074: "espérance de vie [...]
    # supérieure à 3 mois"), SYS-RENAL-TOX's advice at a clearance < 30 (L736-738: "baisser les doses de
    # chimiothérapie") or its warning (L726-730, L770-772), SYS-ONCO's (L725-726: the bone extension "ne conditionne
    # pas le choix des molécules de chimiothérapie ni leur dose"). Left out only when it contradicts A's item published
    # marked "les données actuelles conduisent à une autre décision" (`read_ahead`) and is no alert (review R31-MERGE:
    # SYS-REVIEW-2Y's review of a course under way, L1275-1277, beside A's start, L1263-1265, R30-MERGE); an alert is
    # kept whatever A publishes (never withdrawn on a record not yet current). Likewise A's item marked beside B's
    # alert published in A's reading's place (the review of a course under way read ahead beside the restart today)
    read = {x.key for x in marked}

    def shown(x: PlanItem | str) -> bool:
        if isinstance(x, str):
            return _alert(by_b[x]) or not any(contradicts(by_b[x], y) for y in marked)
        return x.key not in read or _alert(x) or not any(contradicts(by_a[x.key], y) for y in raised)

    plan = [x if isinstance(x, PlanItem) else kept(by_b[x], future) for x in out if shown(x)]
    # review R31-MERGE2, across keys: B's start suspended "avant toute prescription" while another key publishes an
    # anti-resorptive order current data draft (R29B: B's monthly zoledronic acid beside A's spacing). Both readings
    # treat (A: the course under way, L1275-1277; B: the start, L1068-1074, L1263-1265, drafted only with its
    # prerequisites met or an emergency: dosing.orders_a_drug), monthly holds on either (SYS-SCHEDULE L1136-1140):
    # suspending the order would withdraw what both give. The start is B's recommendation, marked as the order is
    if starts and any(_treats(x) and _treats(by_b.get(x.key)) for x in plan):
        plan = [to_verify(starts[x.key], future) if x.key in starts else x for x in plan]
    return plan


def _treats(x: PlanItem | None) -> bool:
    """`x` drafts an anti-resorptive order (zoledronic acid, denosumab: SYS-AR-START L1263-1265)."""
    return x is not None and any(o.drug in r.ANTIRESORPTIVES for o in x.orders)
