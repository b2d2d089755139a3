"""A lesion's section of the local-treatment plan from its item families (pure; domain._decide decides the plan).

Each family is memoised on the IDs of the facts it reads (memo.memo); issue 25 (RT-FLAT): a lesion's whole section is
kept too (memo.section, domain._decide), on the union of what its families' keys read, so that an event that changes
nothing a lesion's families read costs that lesion one lookup, not one per family. The remainder of the life
expectancy an item shows is set at each decision (`shown_now`, HAZ-25-RT-08)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner.facts import Lesion
from services.radiotherapy_planner.items_base import In, Item, reference_date
from services.radiotherapy_planner.items_local import cement_items, surgery_items
from services.radiotherapy_planner.items_mscc import mscc_items
from services.radiotherapy_planner.items_patient import Patient
from services.radiotherapy_planner.items_reirr import reirradiation_items
from services.radiotherapy_planner.items_rt import drug_items, palliative_items, postop_items
from services.radiotherapy_planner.items_sbrt import sbrt_items
from services.radiotherapy_planner.memo import Fingerprints


@dataclass(frozen=True)
class Built:
    """A lesion's items as its families give them: `parts`, each with whether it shows the remainder of the life
    expectancy at the decision (`shown_now`); `done`: the section's items when none does (the same at every
    decision)."""

    parts: tuple[tuple[list[Item], bool], ...]
    done: list[Item] | None

    def items(self, remaining: float | None) -> list[Item]:
        if self.done is not None:
            return list(self.done)
        return _unique([i for part, shown in self.parts for i in (shown_now(part, remaining) if shown else part)])


def lesion_section(
    p: Patient,
    fp: Fingerprints,
    memo_: Callable[[Hashable, Callable[[], list[Item]]], list[Item]],
    lid: str,
    lesion: Lesion,
    cur: str,
    mine: list[LocalTreatmentRequest],
    le_key: Hashable,
) -> Built:
    """A lesion's items from its families (each memoised on the IDs of the facts it reads). Everything a key here
    reads is in `_decide`'s key of the section."""
    lx, alpha_beta, tz, now = lesion.ids, p.alpha_beta, p.tz, p.now
    mirels, sins = fp.score(f"mirels:{lid}"), fp.score(f"sins:{lid}")
    local = (fp.surgeries, fp.radiotherapy)
    parts: list[tuple[list[Item], bool]] = []
    onset = lesion.compression_onset()
    parts.append(
        (
            memo_(  # and the day: RT-MSCC counts a course begun by today (one recorded ahead of its date)
                ("mscc", lx, fp.reads("mscc", lid), le_key, fp.opinions, local, cur, p.today),
                functools.partial(mscc_items, p, lesion, cur),
            ),
            False,
        )
    )
    parts.append((memo_(("postop", lx, local), functools.partial(postop_items, p, lesion)), False))
    rt_refs = []
    key: Hashable
    for req in mine:
        rk = (lx, req.event_id.int)
        if req.modality == "palliative_rt":
            key = ("palliative", *rk, fp.reads("palliative", lid), le_key, fp.surgeries, fp.drugs, mirels, sins)
            parts.append((memo_(key, functools.partial(palliative_items, p, lesion, req)), False))
            found = memo_(  # a palliative course on an irradiated segment is a re-irradiation too (18.1)
                ("palliative-reirr", *rk, fp.radiotherapy, alpha_beta),
                functools.partial(reirradiation_items, p, lesion, req),
            )
            parts.append((found, False))
        elif req.modality in ("sbrt", "reirradiation"):
            oligo = fp.score("oligometastatic")
            for part, key in (  # each SBRT family on the facts it reads
                ("main", ("sbrt-main", *rk, fp.reads("sbrt", lid), le_key, local, sins, oligo, p.today)),
                ("reirr", ("sbrt-reirr", *rk, fp.radiotherapy, alpha_beta)),
            ):
                found = memo_(key, functools.partial(sbrt_items, p, lesion, req, part))
                parts.append((found, part == "main"))  # the remainder shown at each decision (shown_now)
        elif req.modality == "cementoplasty":
            key = ("cement", *rk, fp.reads("cement", lid), fp.opinions, sins, fp.drugs, fp.labs, le_key, p.today)
            parts.append((memo_(key, functools.partial(cement_items, p, lesion, req)), False))
        if req.modality in ("palliative_rt", "sbrt", "reirradiation"):
            rt_refs.append((reference_date(req, tz), req.urgent))
    requested = any(r.modality == "surgery" for r in mine)
    found = memo_(
        ("surgery", lx, requested, fp.reads("surgery", lid), le_key, fp.surgeries, mirels),
        functools.partial(surgery_items, p, lesion, requested),
    )
    parts.append((found, False))
    # shown_now changes no rule, status or severity
    critical = any(i.rule_id == "RT-MSCC" and i.severity == "critical" for part, _ in parts for i in part)
    if onset is not None and critical:
        # an emergency course starts now: the drugs that matter are those up to today (issue 18 review)
        rt_refs.append((p.today if now is not None else p.day(onset.occurred_at), True))
    if rt_refs:
        ref, urgent = min(rt_refs)
        what = "radiothérapie en urgence" if urgent else "radiothérapie"
        found = memo_(
            ("drug", lx, ref, urgent, fp.drugs, p.today),
            functools.partial(drug_items, p, lesion, ref, urgent, what),
        )
        parts.append((found, False))
    shows = any(shown for _, shown in parts)
    return Built(tuple(parts), None if shows else _unique([i for part, _ in parts for i in part]))


#: HAZ-25-RT-08: the remainder of the life expectancy an SBRT contraindication shows as its input (RT-SBRT-CI
#: L1629-1636, "espérance de vie < 3 mois"; its only unrounded one). The memo keys on its band and tenth (le_key),
#: so a reused item showed the remainder of its first build: it is set to the remainder at this decision.
_REMAINING_SHOWN: Final = "life_expectancy_months"


def shown_now(items: list[Item], remaining: float | None) -> list[Item]:
    """The items with the remainder they show (an input named _REMAINING_SHOWN without a source event: the estimate
    itself has its event) as computed at this decision, as a build now would (the status, text and digest read only
    its band, in the key)."""
    out = []
    for i in items:
        shown = [x for x in i.inputs if isinstance(x, In) and x.name == _REMAINING_SHOWN and x.source_event_id is None]
        if shown and any(x.value != remaining for x in shown):
            inputs = tuple(dataclasses.replace(x, value=remaining) if x in shown else x for x in i.inputs)
            i = Item(
                i.key,
                i.rule_id,
                i.status,
                i.severity,
                i.title,
                i.text_fr,
                inputs,
                i.missing,
                i.what_would_change_fr,
                i.checks,
            )
        out.append(i)
    return out


def _unique(items: list[Item]) -> list[Item]:
    seen: dict[str, Item] = {}
    for i in items:
        seen.setdefault(i.key, i)
    return list(seen.values())
