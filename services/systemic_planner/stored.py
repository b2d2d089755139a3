"""The stored JSON of the systemic planner's aggregate (`SystemicState`), written without serialising again the
parts that did not change (issue 25: per-event cost flat in the history's length; shared/runtime/parts_json.py)."""

from __future__ import annotations

from typing import Any, Final, cast

from pydantic import BaseModel, TypeAdapter

from shared.runtime.parts_json import Bodies, StoredJson, json_key


class _StoredState(StoredJson):
    """StoredJson, with the fields it leaves to pydantic written field by field (issue 25, helper ZD): pydantic's
    `exclude` of the 18 other fields cost ~20 µs per state. Each of those fields is written by its own type's
    serializer (the same JSON as the model's), the lists and dicts among them (replaced, never changed in place, as
    every table here) reused by object."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rest_fields: tuple[tuple[str, str, TypeAdapter[Any], bool], ...] | None = None
        self._kept = Bodies(self.bodies_size)  # the held lists' and dicts' texts (shared/runtime/parts_json.py)

    def _rest(self, state: BaseModel) -> str:
        fields = self._rest_fields
        if fields is None:  # the model's fields other than the excluded ones, in the model's order
            fields = self._rest_fields = tuple(
                (name, json_key(name), TypeAdapter[Any](cast(Any, info.annotation)), _held(info))
                for name, info in type(state).model_fields.items()
                if name not in self.exclude
            )
        out = []
        for name, key, adapter, held in fields:
            value: Any = getattr(state, name)
            if held and value:
                kept = self._kept.get(value)
                if kept is not None:
                    out.append(f"{key}:{kept}")
                    continue
                text = adapter.dump_json(value).decode()
                self._kept.put(value, text)
            else:
                text = adapter.dump_json(value).decode()
            out.append(f"{key}:{text}")
        return "{" + ",".join(out) + "}"


def _held(info: Any) -> bool:
    """A list or dict field: its JSON is kept by object."""
    origin = getattr(info.annotation, "__origin__", None)
    return origin in (list, dict)


#: issue 25: the tables written from each record's and fact's JSON (merge copies a table it changes, and a record or
#: fact in a state is replaced, never changed in place: shared/runtime/parts_json.py)
STORED: Final = _StoredState(
    (
        "sres",
        "sre_currency",
        "lesions",
        "findings",
        "assessments",
        "creatinine_clearance",
        "vitamin_d",
        "corrected_calcium",
        "ctx",
        "treatments",
        "care",
        "finding_base",
    ),
    ("response", "oligometastatic", "plan_event", "assessment_base"),
    fields=("published", "late_arrivals"),
)
