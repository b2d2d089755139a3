"""The planner's working form of a plan item: plain frozen dataclasses, turned into the PlanItem / InputUsed
contracts only when a plan version or a recommendation is published (most events change nothing)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from contracts.base import InputUsed, Severity
from contracts.hospital import Comparator
from contracts.local import LocalTreatmentRequest
from contracts.plan import Check, ItemStatus, PlanItem
from contracts.rules import cite
from services.radiotherapy_planner.rules.common import Finding
from shared.clinical.dates import HOSPITAL_TZ, local_day
from shared.clinical.recommend import PlanNotice


@dataclass(frozen=True, slots=True)
class In:
    """An input a rule used, with its provenance (InputUsed once published)."""

    name: str
    value: float | int | str | bool | None
    unit: str | None = None
    occurred_at: datetime | None = None
    source_event_id: uuid.UUID | None = None
    comparator: Comparator | None = None  # issue 12: a censored value, a bound

    def model(self) -> InputUsed:
        return InputUsed(
            name=self.name,
            value=self.value,
            unit=self.unit,
            occurred_at=self.occurred_at,
            source_event_id=self.source_event_id,
            comparator=self.comparator,
        )


Inp = In | InputUsed


def as_input(x: Inp) -> InputUsed:
    return x if isinstance(x, InputUsed) else x.model()


class _Used:
    """An item's inputs as contracts, made once and shared by its plan item and its recommendations (InputUsed is
    frozen); a new list each call. Held by the item and by its notice, it holds neither (no reference cycle)."""

    __slots__ = ("inputs", "used")

    def __init__(self, inputs: tuple[Inp, ...]) -> None:
        self.inputs = inputs
        self.used: list[InputUsed] | None = None

    def __call__(self) -> list[InputUsed]:
        if self.used is None:
            self.used = [as_input(x) for x in self.inputs]
        return list(self.used)


class Item:
    """One plan item, immutable. Its notified content and digest are computed once (items are memoised and reused
    from one event to the next); its contract form (PlanItem) only when a plan or recommendation is published."""

    __slots__ = (
        "_model",
        "_notice",
        "_used",
        "checks",
        "content",
        "digest",
        "inputs",
        "key",
        "missing",
        "rule_id",
        "severity",
        "status",
        "text_fr",
        "title",
        "what_would_change_fr",
    )

    def __init__(
        self,
        key: str,
        rule_id: str,
        status: ItemStatus,
        severity: Severity,
        title: str,
        text_fr: str,
        inputs: tuple[Inp, ...] = (),
        missing: tuple[str, ...] = (),
        what_would_change_fr: str | None = None,
        checks: tuple[Check, ...] = (),
    ) -> None:
        self.key, self.rule_id, self.status, self.severity = key, rule_id, status, severity
        self.title, self.text_fr, self.inputs, self.missing = title, text_fr, inputs, missing
        self.what_would_change_fr, self.checks = what_would_change_fr, checks
        # what a clinician is notified about: the decision and its text, not its provenance
        self.content = "|".join(
            (
                key,
                rule_id,
                status,
                severity,
                title,
                text_fr,
                ",".join(missing),
                what_would_change_fr or "",
                ",".join(f"{c.name}={c.status}" for c in checks),
            )
        )
        self.digest = hashlib.blake2b(self.content.encode(), digest_size=8).hexdigest()
        self._model: PlanItem | None = None
        self._notice: PlanNotice | None = None
        self._used = _Used(inputs)

    def inputs_used(self) -> list[InputUsed]:
        return self._used()

    @property
    def notice(self) -> PlanNotice:
        """The item as a notifiable decision (made once: items are memoised and reused from one event to the next).
        Its `inputs` holds the item's inputs, never the item (issue 25: a bound method made a reference cycle per
        item, so that every item dropped from the memo waited for the garbage collector's full passes)."""
        if self._notice is None:
            self._notice = PlanNotice(
                key=self.key,
                digest=self.digest,
                rule_id=self.rule_id,
                severity=self.severity,
                title=self.title,
                text_fr=self.text_fr,
                inputs=self._used,
                missing=list(self.missing),
                content=self.content,
            )
        return self._notice

    @property
    def model(self) -> PlanItem:
        if self._model is None:
            self._model = PlanItem(
                key=self.key,
                rule_id=self.rule_id,
                status=self.status,
                severity=self.severity,
                title=self.title,
                text_fr=self.text_fr,
                inputs=self.inputs_used(),
                missing=list(self.missing),
                what_would_change_fr=self.what_would_change_fr,
                citation=cite(self.rule_id),
                checks=list(self.checks),
            )
        return self._model


def item(
    key: str,
    rule_id: str,
    status: ItemStatus,
    severity: Severity,
    title: str,
    text: str,
    *,
    inputs: Sequence[Inp] | None = None,
    missing: list[str] | None = None,
    what_would_change_fr: str | None = None,
    checks: Sequence[Check] | None = None,
) -> Item:
    return interned(
        key,
        rule_id,
        status,
        severity,
        title,
        text,
        tuple(inputs or ()),
        tuple(missing or ()),
        what_would_change_fr,
        tuple(checks or ()),
    )


# ---- the same item again (issue 25) ---------------------------------------------------------------------------------
#: Items by everything they are made of: a family decided again mostly finds the items it found before (an event
#: changed a fact it reads, not its decision), and the item already made keeps its published forms (PlanItem, notice,
#: InputUsed), made once. Compared strictly: each value with its type (1, 1.0 and True are equal but written apart),
#: each time with its time zone; a float zero or NaN is never looked up (-0.0 == 0.0; NaN equals nothing).
ITEMS_INTERNED: Final = 16384
_ITEMS: dict[tuple[object, ...], Item] = {}


def _strict(x: Inp) -> tuple[object, ...] | None:
    v, at = x.value, x.occurred_at
    if type(v) is float and (v == 0 or v != v):
        return None
    fields = None if isinstance(x, In) else frozenset(x.model_fields_set)
    zone = None if at is None else (at.tzinfo, at.utcoffset(), at.fold)
    return (type(x), x.name, type(v), v, x.unit, at, zone, x.source_event_id, x.comparator, fields)


def interned(
    key: str,
    rule_id: str,
    status: ItemStatus,
    severity: Severity,
    title: str,
    text_fr: str,
    inputs: tuple[Inp, ...] = (),
    missing: tuple[str, ...] = (),
    what_would_change_fr: str | None = None,
    checks: tuple[Check, ...] = (),
) -> Item:
    """`Item(...)`, or the item made before of exactly the same parts (tests/unit/test_issue25_ze_cost.py)."""
    strict = [_strict(x) for x in inputs]
    if None in strict:
        return Item(key, rule_id, status, severity, title, text_fr, inputs, missing, what_would_change_fr, checks)
    parts = (key, rule_id, status, severity, title, text_fr, *strict, missing, what_would_change_fr, checks)
    found = _ITEMS.get(parts)
    if found is None:
        found = Item(key, rule_id, status, severity, title, text_fr, inputs, missing, what_would_change_fr, checks)
        if len(_ITEMS) >= ITEMS_INTERNED:
            _ITEMS.clear()
        _ITEMS[parts] = found
    return found


def clear_interned() -> None:
    _ITEMS.clear()


def inp(
    name: str,
    value: float | int | str | bool | None,
    unit: str | None = None,
    occurred_at: datetime | None = None,
    source_event_id: uuid.UUID | None = None,
    comparator: Comparator | None = None,
) -> In:
    return In(name, value, unit, occurred_at, source_event_id, comparator)


def finding_used(f: Finding) -> In:
    return inp(name=f.input_name or "input", value=f.input_value)


def reference_date(req: LocalTreatmentRequest, tz: ZoneInfo = HOSPITAL_TZ) -> date:
    """The date a request is decided for: its planned date, else the (hospital-local) day it was made."""
    return req.planned_on or local_day(req.occurred_at, tz)
