"""The local-treatment planner aggregate: facts per patient, the plan they imply (pure), and what to publish.

Each event updates the facts; `build_plan()` derives the whole plan (one section per lesion) from them;
`apply_event()` publishes a new plan version when a decision changed, and one recommendation per notifiable item
that changed (a changed item withdraws the one it replaces; an item that no longer applies is withdrawn: a
corrected finding, a resolved compression, a cancelled request)."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from contracts.base import Message, derived_id
from contracts.hospital import RadiotherapyCourse, Surgery, TreatmentEvent
from contracts.local import LesionSection, LocalTreatmentPlan, LocalTreatmentRequest
from contracts.rules import RULESET_VERSION
from services.radiotherapy_planner import as_of
from services.radiotherapy_planner.as_of import FUTURE_TOLERANCE as FUTURE_TOLERANCE  # exported as before
from services.radiotherapy_planner.facts import Lesion, LocalState, lesions
from services.radiotherapy_planner.fold import merge as merge  # the fold (fold.py), re-exported
from services.radiotherapy_planner.fold import relevant
from services.radiotherapy_planner.items_base import Item
from services.radiotherapy_planner.items_mscc import to_rule_out
from services.radiotherapy_planner.items_patient import Patient
from services.radiotherapy_planner.memo import Fingerprints, memo, patient_key, section, uncached
from services.radiotherapy_planner.retention import retain
from services.radiotherapy_planner.sections import lesion_section
from services.radiotherapy_planner.sections import shown_now as shown_now  # re-exported (HAZ-25-RT-08)
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.facts import Fact
from shared.clinical.irradiation import CORD_ALPHA_BETA_GY
from shared.clinical.life_expectancy import Remaining
from shared.clinical.newest import Newest
from shared.clinical.recommend import caused_by, notify_plan_changes

SERVICE = "radiotherapy-planner"
#: RT-MSCC: a compression seen longer ago than this, with no newer imaging, is not a current emergency (settings;
#: the same default as scoring's LESION_EVENT_CURRENT_DAYS).
COMPRESSION_CURRENT: Final = timedelta(days=42)
#: SURG-LE, RT-MSCC, RT-SBRT-CI: an older life-expectancy estimate is not decided on (asked again), as scoring's
#: LIFE_EXPECTANCY_VALID_DAYS.
LE_VALID: Final = timedelta(days=91)
RadiotherapyState = LocalState  # the aggregate's historical name


# ---- the plan ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """A lesion's decisions in the planner's working form (LesionSection once published)."""

    lesion_id: str
    skeletal_site: str
    vertebral_level: str | None
    items: list[Item]

    def model(self) -> LesionSection:
        return LesionSection(
            lesion_id=self.lesion_id,
            skeletal_site=self.skeletal_site,
            vertebral_level=self.vertebral_level,
            items=[i.model for i in self.items],
        )


def currency(onset: datetime | None, now: datetime | None, window: timedelta) -> str:
    """Whether a compression is current at `now` (the decision time: the clock, never the triggering event)."""
    if onset is None or now is None:
        return "current"
    if onset > now + FUTURE_TOLERANCE:
        return "future"
    return "stale" if now - onset > window else "current"


def inferred_compression(s: LocalState, lesion: Lesion) -> tuple[datetime, datetime] | None:
    """RT-MSCC (L1397-1402) with no compression on imaging: an epidural extension of a spinal lesion with a
    neurological deficit is a compression to rule out in an emergency. The dates of its two facts (the newest finding
    stating the extension, the deficit), or None when it does not hold."""
    epidural, deficit = lesion.newest("epidural_extension"), s.assessed.get("neurological_deficit")
    if epidural is None or deficit is None or not to_rule_out(lesion, deficit):  # items_mscc.to_rule_out (review RK)
        return None
    return epidural.occurred_at, deficit.occurred_at


def inferred_compressions(s: LocalState, by_lesion: Mapping[str, Lesion]) -> dict[str, tuple[datetime, datetime]]:
    """RT-MSCC (L1397-1402): each lesion's inferred compression (none on imaging: `inferred_compression`), by lesion
    ID, once per event: the plan's currency (`build_plan`) and the clock (`next_due`) read the same dates."""
    out = {}
    for lid, lesion in by_lesion.items():
        facts = inferred_compression(s, lesion) if lesion.compression_onset() is None else None
        if facts is not None:
            out[lid] = facts
    return out


def inferred_currency(facts: tuple[datetime, datetime] | None, now: datetime | None, window: timedelta) -> str:
    """An inferred compression is an emergency while its deficit is current (the symptom that makes a known epidural
    extension an emergency to rule out; the extension may have been imaged long ago): "future" when either fact is
    dated after now, "stale" when the deficit is older than the window (an emergency from current data only)."""
    if facts is None or now is None:
        return "current"
    if max(facts) > now + FUTURE_TOLERANCE:
        return "future"
    return "stale" if now - facts[1] > window else "current"


def build_plan(
    s: LocalState,
    alpha_beta: float = CORD_ALPHA_BETA_GY,
    now: datetime | None = None,
    compression_window: timedelta = COMPRESSION_CURRENT,
    tz: ZoneInfo = HOSPITAL_TZ,
    by_lesion: dict[str, Lesion] | None = None,
    inferred: Mapping[str, tuple[datetime, datetime]] | None = None,
    ahead: list[as_of.Ahead] | None = None,
) -> list[Section]:
    """The whole plan from the facts (pure). Each family of items is memoised on the IDs of the facts it reads, so an
    event recomputes only what it can change (a platelet count, the cementoplasty items; a finding, its lesion).
    `inferred`: `inferred_compressions` of these lesions when the caller has it (computed here otherwise); `ahead`:
    likewise `as_of.ahead` at `now` (issue 25: once per event, `next_due` reads it too).
    HAZ-27-FUTURE-HIDES: when the decision reads facts dated in the future, it is made twice more, on the views
    "the current one holds" (B) and "the future one holds now" (C), and merged per item (as_of.py); else once."""
    by_lesion = lesions(s) if by_lesion is None else by_lesion
    sections = _decide(s, alpha_beta, now, compression_window, tz, by_lesion, inferred)
    facts = ahead if ahead is not None else [] if now is None else as_of.ahead(s, by_lesion, now)
    if not facts:
        return sections
    assert now is not None
    vb, vc = as_of.view_b(s, by_lesion, now), as_of.view_c(s, by_lesion, now)
    b = _decide(vb[0], alpha_beta, now, compression_window, tz, vb[1], None, cached=False)
    # C undecidable (no room after the newest current fact, R29B): A read as C (A's items kept, said to verify)
    c = sections if vc is None else _decide(vc[0], alpha_beta, now, compression_window, tz, vc[1], None, cached=False)
    merged = as_of.merge(_by_id(sections), _by_id(b), _by_id(c), facts, tz)
    where = {x.lesion_id: x for x in [*b, *sections]}  # the site and level of A's section, else B's
    # a lesion only B reads (review R32-FA: a correction dated ahead withdrew its only finding in A) comes after A's
    order = [*by_lesion, *(lid for lid in vb[1] if lid not in by_lesion)]
    return [
        Section(lid, where[lid].skeletal_site, where[lid].vertebral_level, merged[lid])
        for lid in order
        if lid in merged
    ]


def _by_id(sections: list[Section]) -> dict[str, list[Item]]:
    return {x.lesion_id: x.items for x in sections}


def _decide(
    s: LocalState,
    alpha_beta: float,
    now: datetime | None,
    compression_window: timedelta,
    tz: ZoneInfo,
    by_lesion: Mapping[str, Lesion],
    inferred: Mapping[str, tuple[datetime, datetime]] | None,
    cached: bool = True,
) -> list[Section]:
    """One decision of the plan on these facts (`build_plan`); `cached=False`: outside the family memo (a view)."""
    memo_ = memo if cached else uncached
    le = s.assessed.get("life_expectancy_months")
    le_current = le is None or now is None or (now - LE_VALID <= le.occurred_at <= now + FUTURE_TOLERANCE)
    p = Patient(s, alpha_beta, le_current, tz, now)
    # the families that read the life expectancy are keyed on what is left of it: its band (every threshold of the
    # text) and its value as shown (issue 18.4), so a family is re-decided as the estimate runs down (the estimate
    # itself is in each family's fingerprint: memo.READS)
    r = p.remaining
    le_key = (le_current, None if r is None else (r.band, round(r.remaining, 1)))
    fp = Fingerprints.of(s, shared=cached)
    sections = []
    requests: dict[str, list[LocalTreatmentRequest]] = {}  # each lesion's active requests, by request ID
    for req in sorted((r for r in s.requests.values() if r.status == "active"), key=lambda r: r.request_id):
        requests.setdefault(req.lesion_id, []).append(req)
    inferred = inferred_compressions(s, by_lesion) if inferred is None else inferred
    # issue 25: a lesion's section is kept on the union of what its families' keys read (below), the patient-level
    # part of it once per decision as an int; what is lesion-level is in the section's key
    patient = None
    if cached:
        families = tuple(fp.families.values())
        local = (fp.opinions, fp.surgeries, fp.radiotherapy, fp.drugs, fp.labs, families, fp.lesion_pain)
        patient = patient_key((*local, fp.score("oligometastatic"), le_key, p.today, now is None, alpha_beta, tz))
    for lid, lesion in by_lesion.items():
        seen = lesion.compression_last_seen()  # currency from the newest imaging showing it (issue 18 review)
        cur = (  # no compression seen (no onset): the inferred one's, if any (RT-MSCC)
            currency(seen.occurred_at, now, compression_window)
            if seen is not None
            else inferred_currency(inferred.get(lid), now, compression_window)
        )
        mine = requests.get(lid, [])
        build = functools.partial(lesion_section, p, fp, memo_, lid, lesion, cur, mine, le_key)
        if patient is None:
            built = build()
        else:
            mirels, sins = fp.score(f"mirels:{lid}"), fp.score(f"sins:{lid}")
            reqs = tuple(r.event_id.int for r in mine)
            key = (lid, lesion.ids, patient, cur, reqs, fp.lesion_reads(lid), mirels, sins)
            built = section(key, build)
        items = built.items(p.life_expectancy)
        if items:
            sections.append(Section(lid, lesion.latest.skeletal_site, lesion.level, items))
    return sections


def next_due(
    s: LocalState,
    now: datetime,
    compression_window: timedelta = COMPRESSION_CURRENT,
    by_lesion: dict[str, Lesion] | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
    inferred: Mapping[str, tuple[datetime, datetime]] | None = None,
    ahead: list[as_of.Ahead] | None = None,
) -> datetime | None:
    """When the plan must be decided again though no event arrives (issue 18): a cord compression (seen, or inferred
    from an epidural extension with a deficit) leaves its currency window (RT-MSCC decides an emergency from current
    data only), a future-dated one becomes current, the
    life-expectancy estimate ages out of LE_VALID or becomes current, what remains of it crosses a threshold; the
    day a course or a decompression recorded ahead of its date begins (RT-MSCC counts those begun by today; review
    RK: the emergency stayed up to COMPRESSION_CURRENT after it). `inferred`, `ahead`: as `build_plan`'s.
    HAZ-27-FUTURE-HIDES: with facts dated in the future, also the moments view B's decision changes and each of
    those facts becomes current (the views then give way to the single decision): never later than before."""
    by_lesion = lesions(s) if by_lesion is None else by_lesion
    due = _next_due(s, now, compression_window, by_lesion, tz, inferred)
    facts = as_of.ahead(s, by_lesion, now) if ahead is None else ahead
    if not facts:
        return due
    b, b_lesions = as_of.view_b(s, by_lesion, now)
    times = [t for t in (due, _next_due(b, now, compression_window, b_lesions, tz, None)) if t is not None]
    times += [x for t in as_of.future_times(facts) if (x := t + _SECOND) > now]
    return min(times, default=None)


def _next_due(
    s: LocalState,
    now: datetime,
    compression_window: timedelta,
    by_lesion: Mapping[str, Lesion],
    tz: ZoneInfo,
    inferred: Mapping[str, tuple[datetime, datetime]] | None,
) -> datetime | None:
    """`next_due` of one view of the facts."""
    times: list[datetime] = []
    today = now.astimezone(tz).date()
    if (last := _LAST_DATED(s.treatments)) is not None and last > today:  # once per table object (issue 25)
        for e in s.treatments.values():
            t = e.treatment
            if isinstance(t, _DATED_AHEAD) and t.on > today:
                times.append(datetime.combine(t.on, time(0), tz))
    for lesion in by_lesion.values():
        seen = lesion.compression_last_seen()
        if seen is not None:
            times += [seen.occurred_at - FUTURE_TOLERANCE, seen.occurred_at + compression_window]
    # an epidural extension with a deficit: the deficit ages out (RT-MSCC)
    for epidural, deficit in (inferred_compressions(s, by_lesion) if inferred is None else inferred).values():
        times += [epidural - FUTURE_TOLERANCE, deficit - FUTURE_TOLERANCE, deficit + compression_window]
    le = s.assessed.get("life_expectancy_months")
    if le is not None:
        times += [le.occurred_at - FUTURE_TOLERANCE, le.occurred_at + LE_VALID]
        # a crossing at `now` exactly still changes the decision just after it: searched from a second before, as
        # every moment here (its tick is the moment + 1 s; HAZ-26-LE-01)
        crossing = Remaining.at(float(le.value), le.occurred_at, now).next_crossing(now - _SECOND)
        if crossing is not None:
            times.append(crossing)
    later = [x for t in times if (x := t + _SECOND) > now]
    return min(later, default=None)


_DATED_AHEAD: Final = (RadiotherapyCourse, Surgery)
#: the latest date of a course or surgery of each treatments table object (`_next_due`)
_LAST_DATED: Final = Newest[Mapping[str, TreatmentEvent], date](
    lambda table: (e.treatment.on for e in table.values() if isinstance(e.treatment, _DATED_AHEAD))
)
_SECOND: Final = timedelta(seconds=1)


# ---- publishing ----------------------------------------------------------------------------------------------------
NOTIFY_STATUSES = frozenset({"recommended", "to_do", "cannot_decide", "warning", "not_indicated"})


def _notify(item: Item) -> bool:
    """Clinicians are alerted to warnings and emergencies; info items stay in the plan (API and plan topic)."""
    return item.status in NOTIFY_STATUSES and item.severity != "info"


def apply_event(
    state: LocalState,
    event: Message,
    alpha_beta: float = CORD_ALPHA_BETA_GY,
    compression_window: timedelta = COMPRESSION_CURRENT,
    tz: ZoneInfo = HOSPITAL_TZ,
    now: datetime | None = None,
    retention: bool = True,
) -> tuple[LocalState, list[Message]]:
    """The event folded into the facts, the plan decided again, and what changed published; the state then retained
    (retention.retain, issue 25; `retention=False` keeps every record: the reference its tests compare with)."""
    if not relevant(event):
        return state, []
    s = merge(state, event)
    s.newest_at = event.recorded_at if state.newest_at is None else max(state.newest_at, event.recorded_at)
    # the decision time: the clock when the adapter gives it (service.clock(): the wall clock live, the record's time
    # in a replay), else the newest record the state holds; never the triggering event's own time (issue 22: an
    # older event re-deciding the plan made a newer estimate look dated in the future), and never earlier than the
    # last decision (issue 18 review: alerts must not flap)
    decided = max(t for t in (state.decided_at, s.newest_at if now is None else now) if t is not None)
    s.decided_at = decided
    by_lesion = lesions(s, state)  # once per event (from the previous state's): the plan and the deadline read them
    inferred = inferred_compressions(s, by_lesion)  # and the same inferred compressions (RT-MSCC)
    facts = as_of.ahead(s, by_lesion, decided)  # and the facts dated ahead of the decision (HAZ-27-FUTURE-HIDES)
    sections = build_plan(s, alpha_beta, decided, compression_window, tz, by_lesion, inferred, facts)
    s.next_due = next_due(s, decided, compression_window, by_lesion, tz, inferred, facts)
    items = [i for sec in sections for i in sec.items]
    notices = [i.notice for i in items if _notify(i)]
    s.published, out = notify_plan_changes(
        s.published,
        notices,
        event,
        SERVICE,
        "Plan local mis à jour : cet élément a changé.",
        "Plan local mis à jour : cet élément ne s'applique plus.",
    )
    digest = hashlib.sha256("\n".join(i.digest for i in items).encode()).hexdigest()  # of the item digests
    if digest != s.plan_digest and (items or s.plan_version):
        s.plan_version += 1
        s.plan_digest = digest
        s.plan_event = Fact[str].of(event, str(derived_id("local-plan", event.patient_id, s.plan_version, digest)))
        plan = current_plan(s, event.patient_id, sections)
        assert plan is not None
        out.append(plan)
    return retain(s) if retention else s, caused_by(out, event)


def current_plan(
    s: LocalState,
    patient_id: str,
    sections: list[Section] | None = None,
    alpha_beta: float = CORD_ALPHA_BETA_GY,
    compression_window: timedelta = COMPRESSION_CURRENT,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> LocalTreatmentPlan | None:
    """The current plan: rebuilt from the facts (pure), with the version and time it was last published."""
    if s.plan_event is None:
        return None
    return LocalTreatmentPlan(
        event_id=uuid.UUID(s.plan_event.value),
        patient_id=patient_id,
        occurred_at=s.plan_event.occurred_at,
        recorded_at=s.plan_event.recorded_at,
        source=SERVICE,
        version=s.plan_version,
        ruleset_version=RULESET_VERSION,
        sections=[
            x.model()
            for x in (
                sections
                if sections is not None
                else build_plan(s, alpha_beta, s.decided_at or s.plan_event.recorded_at, compression_window, tz)
            )
        ],
    )
