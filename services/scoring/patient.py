"""Patient-level decisions: CLASS-OLIGO, IMG-FLARE, IMG-ISOLATED. Pure."""

from __future__ import annotations

import functools
from datetime import date
from typing import Final

from contracts.base import InputUsed
from services.scoring import rules as r
from services.scoring import texts as t
from services.scoring.common import Component, Context, Decisions, FamilyMemo, around, finding_inputs, score
from services.scoring.state import Lesion
from shared.clinical.dates import add_months, local_day
from shared.clinical.recommend import lazy_recommendation

SERVICE = r.SERVICE


def _counted(c: Context) -> list[Lesion]:
    """The lesions that are or may be metastases now (a resolved one no longer counts)."""
    return [x for x in c.s.lesions.values() if x.effective_status() != "resolved"]


#: issue 25: the oligometastatic status by lesions and staging facts, and by where the reference time falls among the
#: staging facts' windows
OLIGO_MEMO: Final = FamilyMemo()


def decide_oligo(c: Context, d: Decisions) -> None:
    """CLASS-OLIGO over bone lesions (suspected ones as a possibility) and the extra-osseous disease."""
    a, policy = c.s.assessment, c.policy
    facts = (a.primary_controlled, a.extra_osseous)
    OLIGO_MEMO.decide(
        (c.patient_id, policy),
        (c.s.lesions, *facts),
        None,
        lambda: (m for f in facts if f is not None for m in around(f.occurred_at, policy, policy.staging_valid)),
        c.at,
        lambda into: _decide_oligo(c, into),
        d,
        c.memo,
    )


def _decide_oligo(c: Context, d: Decisions) -> None:
    lesions = list(c.s.lesions.values())
    if not lesions:
        return
    counted = _counted(c)
    a = c.s.assessment
    # only current staging data: neither dated in the future nor older than the restaging window
    pc = c.usable(a.primary_controlled, c.policy.staging_valid)
    extra = c.usable(a.extra_osseous, c.policy.staging_valid)
    not_current = [
        name
        for name, fact, used in (
            ("primary_controlled", a.primary_controlled, pc),
            ("extra_osseous", a.extra_osseous, extra),
        )
        if fact is not None and used is None
    ]
    status = r.oligometastatic(
        [r.BoneLesion(x.latest.skeletal_site, x.latest.size_cm, x.effective_status() == "confirmed") for x in counted],
        None
        if extra is None
        else r.ExtraOsseous(
            extra.value.count, tuple(extra.value.sites), extra.value.stable, extra.value.largest_size_cm
        ),
        pc.value if pc else None,
    )
    trigger = max((x.latest for x in lesions), key=lambda f: (f.occurred_at, f.recorded_at, str(f.event_id)))
    comps: list[Component] = [(x.name, x.value, None if x.met is None else int(x.met), None) for x in status.criteria]

    def inputs() -> list[InputUsed]:  # made with the message only (issue 25: a new finding rarely changes the status)
        out = [
            InputUsed(
                name="lesion",
                value=f"{x.latest.lesion_id}:{x.latest.skeletal_site}:{x.latest.size_cm}:{x.effective_status()}",
                unit="cm",
                occurred_at=x.latest.occurred_at,
                source_event_id=x.latest.event_id,
            )
            for x in counted
        ]
        if pc is not None:
            out.append(pc.used("primary_controlled"))
        if extra is not None:
            out.append(extra.used("extra_osseous_metastases"))
        return out

    d.scores["oligometastatic"] = score(
        "oligometastatic",
        "patient",
        trigger,
        comps,
        None,
        not status.missing,
        status.status,
        list(status.missing) + [f"{n} (not current: restage)" for n in not_current],
        ["CLASS-OLIGO"],
        lambda: t.oligo_text(status, extra_known=extra is not None, not_current=not_current),
        inputs,
        also=[pc, extra],
    )


def _active_drugs(c: Context, on: date) -> list[r.DrugStart]:
    """Systemic drugs started on or before `on` and not stopped by then, each with the start of its continuous
    treatment, named by the shared vocabulary (a stop under another name stops the same drug), corrections applied
    (issue 18.3, 18.7). Issue 18 review: a drug under way stopped and started again the same day stays under way
    (a re-prescription: `in_effect_order`), and one renewed then stopped the same day, in that recorded order, is
    stopped (second review); a start sent again while under way, or a restart after an interruption shorter than
    FLARE_RESTART_INTERRUPTION_MONTHS, keeps the first start (IMG-FLARE, L391-395)."""
    active: dict[str, r.DrugStart] = {}
    paused: dict[str, tuple[r.DrugStart, date]] = {}  # drug -> (its continuous start, the day it was stopped)
    for _, x in c.drug_steps:
        if x.on > on:
            break
        if x.action == "started":
            if x.drug in active:
                continue  # a start sent again: the same treatment
            before = paused.pop(x.drug, None)
            resumed = before is not None and x.on < add_months(before[1], r.FLARE_RESTART_INTERRUPTION_MONTHS)
            since = before[0].on if before is not None and resumed else x.on
            active[x.drug] = r.DrugStart(x.drug, since, x.atc_code)
        elif x.drug in active:
            paused[x.drug] = (active.pop(x.drug), x.on)
    return [active[drug] for drug in sorted(active)]


#: issue 25: a lesion's IMG-FLARE reading by lesion and drug steps (Context.drug_steps, by object): it reads no
#: reference time (the focus's day against the drugs' days), so it is decided again only when one of them changes
FLARE_MEMO: Final = FamilyMemo(size=16384)


def decide_flare(c: Context, lesion: Lesion, d: Decisions) -> None:
    """IMG-FLARE: new foci on bone scan or PET < 6 months after an anticancer treatment started: possible flare,
    never progression; after 6 months, new foci mean progression; a drug of unknown class: cannot tell."""
    if not lesion.new_foci:
        return
    FLARE_MEMO.decide(
        (c.patient_id, lesion.latest.lesion_id),
        (c.drug_steps, lesion),
        None,
        tuple,
        c.at,
        functools.partial(_decide_flare, c, lesion),
        d,
        c.memo,
    )


def _decide_flare(c: Context, lesion: Lesion, d: Decisions) -> None:
    focus = lesion.new_foci[-1]
    on = local_day(focus.occurred_at)  # the hospital day, as treatment dates are
    reading = r.flare_reading(_active_drugs(c, on), on)
    if reading is None:
        return
    lesion_id = lesion.latest.lesion_id
    drug = reading.treatment
    inputs = [focus.used(f"new_focus:{lesion_id}")]
    if drug is not None:
        inputs.append(InputUsed(name="anticancer_treatment_started", value=f"{drug.drug} {drug.on.isoformat()}"))
    inputs += [
        InputUsed(name="drug_of_unknown_class_started", value=f"{x.drug} {x.on.isoformat()}")
        for x in reading.unknown_drugs
    ]
    flare, egfr = reading.reading == "flare", drug is not None and drug.egfr_tki
    if reading.reading == "unknown":
        title = "Nouveau foyer osseux : flare ou progression indéterminé (médicament non classé)"
    elif flare:
        title = "Nouveau foyer osseux : possible flare, pas une progression"
    else:
        title = "Nouveau foyer osseux plus de 6 mois après le début du traitement anticancéreux"
    d.recommendations[f"flare:{lesion_id}"] = lazy_recommendation(
        rule_id="IMG-FLARE",
        trigger=lesion.latest,
        produced_by=SERVICE,
        severity="warning" if flare and egfr else "info",
        title=title,
        text_fr=t.flare_text(lesion_id, focus.value, reading, egfr),
        inputs=inputs,
        key=(
            lesion_id,
            str(focus.event_id),
            reading.reading,
            drug.drug if drug else None,
            drug.on.isoformat() if drug else None,
            tuple(x.drug for x in reading.unknown_drugs),
        ),
        missing=[f"drug class of {x.drug}" for x in reading.unknown_drugs],
    )


def decide_isolated(c: Context, d: Decisions) -> None:
    """IMG-ISOLATED (L489-491): a single lesion, not confirmed (seen only on PET or bone scan, or stated suspected),
    asks for targeted imaging, then a specialist opinion, before it starts anything."""
    counted = _counted(c)
    if len(counted) != 1:
        return
    (lesion,) = counted
    if lesion.effective_status() != "suspected":
        return
    f = lesion.latest
    d.recommendations["isolated"] = lazy_recommendation(
        rule_id="IMG-ISOLATED",
        trigger=f,
        produced_by=SERVICE,
        severity="info",
        title="Lésion osseuse isolée non confirmée : imagerie ciblée",
        text_fr=t.isolated_text(f.lesion_id, ", ".join(lesion.modalities)),
        inputs=finding_inputs(f),
        key=(f.lesion_id,),
    )
