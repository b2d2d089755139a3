"""The forms as FHIR R4 Questionnaires (GET /fhir/Questionnaire): one per form and their searchset Bundle. Pure,
no I/O."""

from __future__ import annotations

from typing import Any

from services.lab_normalisation.forms import FORMS
from services.lab_normalisation.forms.model import (
    BASE,
    LOINC,
    MAX_OCCURS_URL,
    POINTS_URL,
    TARGET_URL,
    UNIT_DISPLAY,
    VERSION,
    Form,
    Group,
    Option,
    Question,
    option_system,
)


# ---- FHIR R4 Questionnaire ------------------------------------------------------------------------------------------
def _coding(q: Question, o: Option) -> dict[str, str]:
    return {"system": option_system(q), "code": o.code, "display": o.display}


def _enable_when(when: tuple[str, tuple[str, ...]] | None, questions: dict[str, Question]) -> dict[str, Any]:
    """enableWhen; an answerCoding is the option's whole coding (review HAZ-23-R04: a form engine compares the
    system too)."""
    if when is None:
        return {}
    link, codes = when
    on = questions[link]
    by_code = {o.code: o for o in on.options}
    conditions = [
        {"question": link, "operator": "=", "answerBoolean": code == "true"}
        if on.type == "boolean"
        else {"question": link, "operator": "=", "answerCoding": _coding(on, by_code[code])}
        for code in codes
    ]
    return {"enableWhen": conditions, **({"enableBehavior": "any"} if len(conditions) > 1 else {})}


def _question(q: Question, questions: dict[str, Question]) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": q.link_id, "text": q.text, "type": q.type}
    if q.loinc is not None:
        out["code"] = [{"system": LOINC, "code": q.loinc[0], "display": q.loinc[1]}]
    ext: list[dict[str, Any]] = [{"url": TARGET_URL, "valueString": q.target}]
    if q.minimum is not None:
        kind = "valueInteger" if q.type == "integer" else "valueDecimal"
        ext.append({"url": "http://hl7.org/fhir/StructureDefinition/minValue", kind: q.minimum})
    if q.maximum is not None:
        kind = "valueInteger" if q.type == "integer" else "valueDecimal"
        ext.append({"url": "http://hl7.org/fhir/StructureDefinition/maxValue", kind: q.maximum})
    if q.unit is not None:
        ext.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
                "valueCoding": {
                    "system": "http://unitsofmeasure.org",
                    "code": q.unit,
                    "display": UNIT_DISPLAY.get(q.unit, q.unit),
                },
            }
        )
    out["extension"] = ext
    if q.required:
        out["required"] = True
    if q.repeats:
        out["repeats"] = True
    if q.max_length is not None:
        out["maxLength"] = q.max_length
    out |= _enable_when(q.when, questions)
    if q.options:
        out["answerOption"] = [
            {
                "valueCoding": _coding(q, o),
                **(
                    {
                        "extension": [
                            {
                                "url": POINTS_URL,
                                "extension": [
                                    {"url": "score", "valueCode": score},
                                    {"url": "points", "valueInteger": points},
                                ],
                            }
                            for score, points in o.points
                        ]
                    }
                    if o.points
                    else {}
                ),
            }
            for o in q.options
        ]
    if q.score_item is not None:
        out["extension"].append(
            {"url": f"{BASE}/StructureDefinition/score-item", "valueString": ":".join(q.score_item)}
        )
    return out


def questionnaire(form: Form) -> dict[str, Any]:
    """The form as a FHIR R4 Questionnaire (JSON), served as is and rendered as is by the forms page."""
    questions = form.questions()
    items: list[dict[str, Any]] = []
    for item in form.items:
        if isinstance(item, Group):
            items.append(
                {
                    "linkId": item.link_id,
                    "text": item.text,
                    "type": "group",
                    "extension": [
                        {"url": TARGET_URL, "valueString": item.target},
                        *(
                            [{"url": MAX_OCCURS_URL, "valueInteger": item.max_occurs}]
                            if item.max_occurs is not None
                            else []
                        ),
                    ],
                    **({"repeats": True} if item.repeats else {}),
                    **_enable_when(item.when, questions),
                    "item": [_question(q, questions) for q in item.questions],
                }
            )
        else:
            items.append(_question(item, questions))
    return {
        "resourceType": "Questionnaire",
        "id": form.id,
        "url": form.url,
        "version": VERSION,
        "name": form.id.title().replace("-", ""),  # R4 que-0: a machine name (review)
        "title": form.title,
        "status": "active",
        "subjectType": ["Patient"],
        "language": "fr-FR",
        "description": form.description,
        "item": items,
    }


def bundle() -> dict[str, Any]:
    """Every Questionnaire, as the searchset of GET /fhir/Questionnaire."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(FORMS),
        "entry": [{"fullUrl": f.url, "resource": questionnaire(f)} for f in FORMS.values()],
    }
