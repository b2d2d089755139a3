"""Issue 23: the clinician forms as FHIR R4 Questionnaires, and a QuestionnaireResponse read into contract messages.
The points the forms carry (and the page adds up live) are checked row by row against the guideline's Mirels and
SINS tables (RULES.md SCORE-MIRELS, SCORE-SINS) and against the scoring service's own tables; refusals are French
and name the item. Pure: no broker, no clock."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import guideline
from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from services.lab_normalisation.fhir import resource_type
from services.lab_normalisation.forms import FORMS
from services.lab_normalisation.forms.choices import sins_location_points
from services.lab_normalisation.forms.fhir import bundle, questionnaire
from services.lab_normalisation.forms.model import LOINC, POINTS_URL
from services.lab_normalisation.forms.response import PROBLEMS_SHOWN, Refused, read_response, source_of
from services.scoring import rules as scoring
from shared.runtime.kafka import TOPIC_FOR_MODEL

RULES_MD = guideline.RULES_MD
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
PID = "p-issue23"

# (score, linkId, answer code, points, the words of RULES.md that give them)
GUIDELINE_TABLE: list[tuple[str, str, str, int, str]] = [
    # SCORE-MIRELS: "Site: upper limb 1, lower limb 2, trochanteric region 3"
    ("mirels", "skeletal_site", "humerus", 1, "upper limb 1"),
    ("mirels", "skeletal_site", "radius_ulna", 1, "upper limb 1"),
    ("mirels", "skeletal_site", "other_upper_limb", 1, "upper limb 1"),
    ("mirels", "skeletal_site", "femur_shaft", 2, "lower limb 2"),
    ("mirels", "skeletal_site", "tibia_fibula", 2, "lower limb 2"),
    ("mirels", "skeletal_site", "other_lower_limb", 2, "lower limb 2"),
    ("mirels", "skeletal_site", "femur_trochanteric", 3, "trochanteric region 3"),
    ("mirels", "skeletal_site", "femur_neck", 3, "trochanteric region 3"),
    # "Type: blastic (condensante) 1, mixed 2, lytic 3"
    ("mirels", "lesion_type", "blastic", 1, "blastic (condensante) 1"),
    ("mirels", "lesion_type", "mixed", 2, "mixed 2"),
    ("mirels", "lesion_type", "lytic", 3, "lytic 3"),
    # "Pain: mild 1, moderate 2, functional (handicapante) 3"
    ("mirels", "pain_intensity", "mild", 1, "mild 1"),
    ("mirels", "pain_intensity", "moderate", 2, "moderate 2"),
    ("mirels", "pain_intensity", "functional", 3, "functional (handicapante) 3"),
    # SCORE-SINS: "Pain: mechanical 3, occasional non-mechanical 1, none 0"
    ("sins", "pain_character", "mechanical", 3, "mechanical 3"),
    ("sins", "pain_character", "non_mechanical", 1, "non-mechanical 1"),
    ("sins", "pain_character", "none", 0, "none 0"),
    # "Bone lesion: lytic 2, mixed 1, blastic 0"
    ("sins", "lesion_type", "lytic", 2, "lytic 2"),
    ("sins", "lesion_type", "mixed", 1, "mixed 1"),
    ("sins", "lesion_type", "blastic", 0, "blastic 0"),
    # "Alignment: subluxation or translation 4, de novo deformity (kyphosis or scoliosis) 2, normal 0"
    ("sins", "alignment", "subluxation_translation", 4, "subluxation or translation 4"),
    ("sins", "alignment", "de_novo_deformity", 2, "(kyphosis or scoliosis) 2"),
    ("sins", "alignment", "normal", 0, "normal 0"),
    # "Vertebral body collapse: > 50 % 3, < 50 % 2, none but > 50 % of the body involved 1, none of these 0"
    ("sins", "vertebral_collapse", "gt_50", 3, "> 50 % 3"),
    ("sins", "vertebral_collapse", "lt_50", 2, "< 50 % 2"),
    ("sins", "vertebral_collapse", "none_body_involved_gt_50", 1, "of the body involved 1"),
    ("sins", "vertebral_collapse", "none", 0, "none of these 0"),
    # "Posterolateral involvement (...): bilateral 3, unilateral 1, none 0"
    ("sins", "posterolateral", "bilateral", 3, "bilateral 3"),
    ("sins", "posterolateral", "unilateral", 1, "unilateral 1"),
    ("sins", "posterolateral", "none", 0, "none 0"),
    # "Location: junctional (occiput–C2, C7–T2, T11–L1, L5–S1) 3; mobile (C3–C6, L2–L4) 2; semi-rigid (T3–T10) 1;
    # rigid (S2–S5) 0"
    *[("sins", "vertebral_level", lv, 3, "junctional") for lv in ("C1", "C2", "C7", "T1", "T2", "T11", "T12", "L1")],
    *[("sins", "vertebral_level", lv, 3, "junctional") for lv in ("L5", "S1")],
    *[("sins", "vertebral_level", lv, 2, "mobile (C3–C6, L2–L4) 2") for lv in ("C3", "C4", "C5", "C6", "L2", "L3")],
    ("sins", "vertebral_level", "L4", 2, "mobile (C3–C6, L2–L4) 2"),
    *[("sins", "vertebral_level", f"T{n}", 1, "semi-rigid (T3–T10) 1") for n in range(3, 11)],
    *[("sins", "vertebral_level", f"S{n}", 0, "rigid (S2–S5) 0") for n in range(2, 6)],
]
#: the scoring service's tables, by score and linkId (the same items, so the page and the service agree)
SERVICE_TABLES: dict[tuple[str, str], dict[str, int]] = {
    ("mirels", "skeletal_site"): scoring.MIRELS_SITE,
    ("mirels", "lesion_type"): scoring.MIRELS_TYPE,
    ("mirels", "pain_intensity"): scoring.MIRELS_PAIN,
    ("sins", "pain_character"): scoring.SINS_PAIN,
    ("sins", "lesion_type"): scoring.SINS_LESION,
    ("sins", "alignment"): scoring.SINS_ALIGNMENT,
    ("sins", "vertebral_collapse"): scoring.SINS_COLLAPSE,
    ("sins", "posterolateral"): scoring.SINS_POSTEROLATERAL,
}


def _points(form_id: str, link_id: str) -> dict[str, dict[str, int]]:
    """score -> code -> points, read from the served Questionnaire (what the page reads)."""
    q = questionnaire(FORMS[form_id])
    [item] = [i for i in q["item"] if i["linkId"] == link_id]
    out: dict[str, dict[str, int]] = {}
    for option in item.get("answerOption", []):
        for e in option.get("extension", []):
            if e["url"] == POINTS_URL:
                parts = {x["url"]: x for x in e["extension"]}
                score, points = parts["score"]["valueCode"], parts["points"]["valueInteger"]
                out.setdefault(score, {})[option["valueCoding"]["code"]] = points
    return out


@pytest.mark.parametrize(("score", "link_id", "code", "points", "words"), GUIDELINE_TABLE)
def test_score_points_follow_the_guideline_tables(score: str, link_id: str, code: str, points: int, words: str) -> None:
    rule = next(line for line in RULES_MD.read_text().splitlines() if f"| SCORE-{score.upper()} |" in line)
    assert words in rule  # the row comes from the guideline's table
    assert _points("lesion-finding", link_id)[score][code] == points


def test_score_points_are_the_scoring_service_tables() -> None:
    for (score, link_id), table in SERVICE_TABLES.items():
        assert _points("lesion-finding", link_id)[score] == table, (score, link_id)
    levels = _points("lesion-finding", "vertebral_level")["sins"]
    for level, points in levels.items():
        location = scoring.sins_location(level)
        assert location is not None and scoring.SINS_LOCATION_POINTS[location] == points, level
    assert "Co" not in levels and scoring.sins_location("Co") is None and sins_location_points("Co") is None
    # every site the service scores with Mirels carries its points; none other does
    assert set(_points("lesion-finding", "skeletal_site")["mirels"]) == set(scoring.MIRELS_SITE)


def test_questionnaires_are_valid_fhir_r4_and_their_references_hold() -> None:
    doc = bundle()
    assert doc["total"] == len(FORMS) == 5
    for entry in doc["entry"]:
        q = Questionnaire.model_validate(entry["resource"])
        assert q.url == entry["fullUrl"] and q.status == "active"
        links: set[str] = set()

        def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for i in items:
                out.append(i)
                out += walk(i.get("item", []))
            return out

        items = walk(entry["resource"]["item"])
        for i in items:
            assert i["linkId"] not in links, i["linkId"]
            links.add(i["linkId"])
        for i in items:
            for cond in i.get("enableWhen", []):
                assert cond["question"] in links
            for code in i.get("code", []):  # only the LOINC codes checked for this issue
                assert code["system"] == LOINC and code["code"] in ("89247-1", "72514-3")


# ---- responses ---------------------------------------------------------------------------------------------------
def coding(code: str) -> dict[str, Any]:
    return {"valueCoding": {"code": code}}


def response(form: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": FORMS[form].url,
        "status": "completed",
        "subject": {"reference": f"Patient/{PID}"},
        "authored": (NOW - timedelta(minutes=1)).isoformat(),
        "item": items,
        **extra,
    }


def a(link_id: str, *answers: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "answer": list(answers)}


EXAMINED = (NOW - timedelta(days=2)).isoformat()


def lesion(site: str = "femur_trochanteric", *more: dict[str, Any]) -> dict[str, Any]:
    return response(
        "lesion-finding",
        [
            a("lesion_id", {"valueString": "femur-R"}),
            a("examined_at", {"valueDateTime": EXAMINED}),
            a("modality", coding("ct")),
            a("skeletal_site", coding(site)),
            *more,
        ],
    )


def read(doc: dict[str, Any], actor: str = "dr-house") -> list[Any]:
    return read_response(doc, actor, NOW, SKEW).messages


def refused(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(Refused) as exc:
        read(doc)
    return exc.value.problems


def test_a_lesion_with_its_mirels_items_is_a_finding_and_the_lesions_pain() -> None:
    doc = lesion(
        "femur_trochanteric",
        a("lesion_type", coding("lytic")),
        a("cortical_pct", {"valueDecimal": 80}),
        a("pain_intensity", coding("functional")),
        a("pain_nrs", {"valueInteger": 7}),
        a("record_status", coding("final")),
    )
    QuestionnaireResponse.model_validate(doc)  # what the page posts is a valid FHIR R4 resource
    finding, pain = read(doc)
    assert isinstance(finding, ImagingFinding) and isinstance(pain, ClinicalAssessment)
    assert (finding.skeletal_site, finding.lesion_type, finding.modality) == ("femur_trochanteric", "lytic", "ct")
    assert finding.cortical_involvement_fraction == pytest.approx(0.80)  # entered in %, a fraction in the contract
    assert finding.occurred_at == datetime.fromisoformat(EXAMINED)  # the study's time, not the entry's
    [lp] = pain.lesion_pain
    assert (lp.lesion_id, lp.intensity, lp.nrs) == ("femur-R", "functional", 7)
    # the score the service computes from these messages
    m = scoring.mirels(finding.skeletal_site, finding.cortical_involvement_fraction, finding.lesion_type, lp.intensity)
    assert m.total == 3 + 3 + 3 + 3
    for msg in (finding, pain):
        assert msg.source == source_of("dr-house", FORMS["lesion-finding"]) == "saisie:lesion-finding:dr-house"
        assert msg.patient_id == PID and msg.recorded_at == NOW


def test_a_spinal_lesion_with_its_sins_items() -> None:
    doc = lesion(
        "spine",
        a("vertebral_level", coding("T12")),
        a("lesion_type", coding("mixed")),
        a("pain_character", coding("mechanical")),
        a("alignment", coding("de_novo_deformity")),
        a("vertebral_collapse", coding("lt_50")),
        a("posterolateral", coding("unilateral")),
    )
    finding, pain = read(doc)
    s = scoring.sins(
        finding.vertebral_level,
        pain.lesion_pain[0].character,
        finding.lesion_type,
        finding.alignment,
        finding.vertebral_collapse,
        finding.posterolateral_involvement,
    )
    assert s.total == 3 + 3 + 1 + 2 + 2 + 1


def test_the_source_names_the_token_subject_never_the_body_and_retries_keep_their_ids() -> None:
    doc = lesion("humerus", a("lesion_type", coding("blastic")))
    doc["author"] = {"reference": "Practitioner/someone-else"}
    [one] = read(doc, "dr-a")
    [again] = read(doc, "dr-a")
    [other] = read(doc, "dr-b")
    assert one.source.endswith(":dr-a") and "someone-else" not in one.source
    assert one.event_id == again.event_id != other.event_id


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (lesion("spine"), "« Niveau vertébral » (vertebral_level) : obligatoire"),
        (lesion("humerus", a("lesion_type", coding("osteoid"))), "« Type de lésion » (lesion_type) : « osteoid »"),
        (lesion("humerus", a("cortical_pct", {"valueDecimal": 140})), "(cortical_pct) : 140 hors des bornes 0 à 100"),
        (
            lesion("spine", a("vertebral_level", coding("T4")), a("cortical_pct", {"valueDecimal": 40})),
            "(cortical_pct)",
        ),
        (lesion("humerus", a("alignment", coding("normal"))), "« Alignement » (alignment) : sans objet ici"),
        (lesion("humerus", a("pain_nrs", {"valueString": "7"})), "(pain_nrs) : réponse de type integer attendue"),
        (
            lesion("humerus", a("record_status", coding("entered-in-error"))),
            "une saisie erronée doit nommer la saisie qu'elle retire",
        ),
        (
            lesion("humerus", a("record_status", coding("amended")), a("corrects", {"valueString": "not-a-uuid"})),
            "« Identifiant de la saisie corrigée (constatation) » (corrects) : identifiant de saisie (UUID) attendu",
        ),
        (lesion("humerus", a("unknown", {"valueString": "x"})), "item « unknown » : inconnu de ce formulaire"),
        (
            response("lesion-finding", [a("lesion_id", {"valueString": "x"})]),
            "« Date et heure de l'examen » (examined_at) : obligatoire",
        ),
        (
            lesion("humerus", a("examined_at", {"valueDateTime": (NOW + timedelta(days=1)).isoformat()})),
            "(examined_at) : présent deux fois",
        ),
        (
            response("surgical-opinion", [a("on", {"valueDate": "2026-11-27"})]),
            "« Opérable » (operable) : obligatoire",
        ),
        (
            response("treatment-event", [a("kind", coding("radiotherapy")), a("rt.site", {"valueString": "femur"})]),
            "« Dose totale (Gy) » (rt.total_dose_gy) : obligatoire",
        ),
        (
            response(
                "local-treatment-request",
                [
                    a("request_id", {"valueString": "r1"}),
                    a("lesion_id", {"valueString": "T8"}),
                    a("modality", coding("sbrt")),
                    a("total_dose_gy", {"valueDecimal": 24}),
                ],
            ),
            "un schéma proposé demande la dose totale et le nombre de fractions",
        ),
        (
            response(
                "assessment",
                [
                    {
                        "linkId": "extra_osseous",
                        "item": [
                            a("extra_osseous.count", {"valueInteger": 0}),
                            a("extra_osseous.sites", {"valueString": "foie"}),
                        ],
                    }
                ],
            ),
            "les organes atteints se listent quand le nombre est supérieur à 0",
        ),
        (response("assessment", []), "évaluation : aucune donnée saisie"),
        (response("assessment", [a("ecog", {"valueInteger": 5})]), "« ECOG (0-4) » (ecog) : 5 hors des bornes 0 à 4"),
    ],
)
def test_refusals_are_french_and_name_the_item(doc: dict[str, Any], expected: str) -> None:
    problems = refused(doc)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"status": "in-progress"}, "seule une réponse terminée (completed) est prise"),
        ({"subject": {"reference": "Group/1"}}, "subject : la réponse doit désigner le patient"),
        ({"questionnaire": "Questionnaire/other"}, "n'est pas un formulaire de ce service"),
        ({"authored": (NOW + timedelta(hours=1)).isoformat()}, "authored : dans le futur"),
        ({"authored": "2026-11-28T10:00:00"}, "authored : le fuseau horaire manque"),
    ],
)
def test_the_response_itself_is_checked(change: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in refused({**lesion("humerus"), **change}))


def test_a_future_examination_is_refused() -> None:
    doc = lesion("humerus")
    doc["item"][1] = a("examined_at", {"valueDateTime": (NOW + timedelta(days=1)).isoformat()})
    assert any("(examined_at) : dans le futur" in p for p in refused(doc))


def test_every_form_maps_to_its_contract_and_topic() -> None:
    day = "2026-11-20"
    cases: dict[str, tuple[dict[str, Any], type[Message]]] = {
        "lesion-finding": (lesion("pelvis"), ImagingFinding),
        "assessment": (
            response(
                "assessment",
                [
                    a("ecog", {"valueInteger": 1}),
                    a("life_expectancy_months", {"valueDecimal": 12}),
                    {
                        "linkId": "lesion_pain",
                        "item": [
                            a("lesion_pain.lesion_id", {"valueString": "T8"}),
                            a("lesion_pain.character", coding("mechanical")),
                        ],
                    },
                    {
                        "linkId": "lesion_pain",
                        "item": [
                            a("lesion_pain.lesion_id", {"valueString": "femur-R"}),
                            a("lesion_pain.intensity", coding("moderate")),
                        ],
                    },
                    {
                        "linkId": "extra_osseous",
                        "item": [
                            a("extra_osseous.count", {"valueInteger": 2}),
                            a("extra_osseous.sites", {"valueString": "foie"}, {"valueString": "surrénale"}),
                        ],
                    },
                    a("frail", {"valueBoolean": False}),
                ],
            ),
            ClinicalAssessment,
        ),
        "surgical-opinion": (
            response(
                "surgical-opinion",
                [
                    a("operable", {"valueBoolean": True}),
                    a("on", {"valueDate": day}),
                    a("lesion_id", {"valueString": "femur-R"}),
                ],
            ),
            ClinicalAssessment,
        ),
        "local-treatment-request": (
            response(
                "local-treatment-request",
                [
                    a("request_id", {"valueString": "r1"}),
                    a("lesion_id", {"valueString": "T8"}),
                    a("modality", coding("reirradiation")),
                    a("total_dose_gy", {"valueDecimal": 20}),
                    a("fractions", {"valueInteger": 5}),
                    {
                        "linkId": "previous",
                        "item": [
                            a("previous.on", {"valueDate": "2025-01-10"}),
                            a("previous.fractions", {"valueInteger": 10}),
                            a("previous.cord_dmax_gy", {"valueDecimal": 30}),
                        ],
                    },
                ],
            ),
            LocalTreatmentRequest,
        ),
        "treatment-event": (
            response(
                "treatment-event",
                [
                    a("kind", coding("surgery")),
                    a("surgery.site", {"valueString": "femur"}),
                    a("surgery.procedure", coding("prophylactic_fixation")),
                    a("surgery.on", {"valueDate": day}),
                    a("surgery.lesion_id", {"valueString": "femur-R"}),
                ],
            ),
            TreatmentEvent,
        ),
    }
    for form_id, (doc, model) in cases.items():
        [msg] = read(doc)
        assert isinstance(msg, model), form_id
        assert TOPIC_FOR_MODEL[model].name in FORMS[form_id].publishes
        assert msg.source == f"saisie:{form_id}:dr-house"
    [assessment] = read(cases["assessment"][0])
    assert assessment.ecog == 1 and assessment.extra_osseous_metastases.sites == ["foie", "surrénale"]
    assert {lp.lesion_id for lp in assessment.lesion_pain} == {"T8", "femur-R"}
    [opinion] = read(cases["surgical-opinion"][0])
    assert opinion.surgical_opinion is not None and opinion.surgical_opinion.operable is True
    [request] = read(cases["local-treatment-request"][0])
    assert request.previous_courses[0].cord_dmax_gy == 30
    [surgery] = read(cases["treatment-event"][0])
    assert surgery.treatment.kind == "surgery" and surgery.treatment.lesion_id == "femur-R"


def test_corrections_use_the_contracts_correction_fields() -> None:
    target = uuid.uuid4()
    doc = lesion("humerus", a("record_status", coding("entered-in-error")), a("corrects", {"valueString": str(target)}))
    [finding] = read(doc)
    assert (finding.record_status, finding.corrects) == ("entered-in-error", target)
    with_pain = lesion(
        "humerus",
        a("record_status", coding("entered-in-error")),
        a("corrects", {"valueString": str(target)}),
        a("pain_intensity", coding("mild")),
    )
    assert any("une saisie erronée retire la constatation" in p for p in refused(with_pain))
    treatment = response(
        "treatment-event",
        [
            a("kind", coding("metabolic_radiotherapy")),
            a("metabolic.agent", {"valueString": "radium-223"}),
            a("metabolic.on", {"valueDate": "2026-11-01"}),
            a("record_status", coding("amended")),
        ],
    )
    assert any("une correction doit nommer la saisie qu'elle corrige" in p for p in refused(treatment))
    treatment["item"].append(a("corrects", {"valueString": str(target)}))
    [event] = read(treatment)
    assert (event.record_status, event.corrects) == ("amended", target)


def test_only_a_questionnaire_response_takes_the_clinician_path() -> None:
    assert resource_type(b'{"resourceType": "QuestionnaireResponse"}') == "QuestionnaireResponse"
    assert resource_type(b'{"resourceType": "Observation", "note": [{"text": "QuestionnaireResponse"}]}') is None
    bundled = b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "QuestionnaireResponse"}}]}'
    assert resource_type(bundled) is None
    assert resource_type(b"not json QuestionnaireResponse") is None


def test_a_contract_refusal_names_the_item_answered() -> None:
    """Two items fill `treatment.atc_code` (a systemic drug, an administration): the refusal names the one given."""
    doc = response(
        "treatment-event",
        [
            a("kind", coding("drug_administration")),
            a("administration.drug", {"valueString": "clopidogrel"}),
            a("administration.atc_code", {"valueString": "not-atc"}),
            a("administration.on", {"valueDate": "2026-11-20"}),
        ],
    )
    assert "« Code ATC » (administration.atc_code) : format non reconnu" in refused(doc)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)
VALUE_KEYS = st.sampled_from(
    ["valueCoding", "valueDecimal", "valueInteger", "valueBoolean", "valueDate", "valueDateTime", "valueString"]
)
LINKS = st.sampled_from([*sorted(FORMS["lesion-finding"].questions()), "unknown"])
#: an answer list of typed values, or any JSON in its place
ANSWERS = st.lists(st.builds(lambda k, v: {k: v}, VALUE_KEYS, JSON), max_size=2) | JSON.map(lambda v: ("raw", v))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(LINKS, ANSWERS),
        max_size=6,
    )
)
def test_any_answers_are_taken_or_refused_in_french_never_a_crash(answers: list[tuple[str, Any]]) -> None:
    items: list[Any] = [{"linkId": link, "answer": got[1] if isinstance(got, tuple) else got} for link, got in answers]
    doc = lesion("humerus")
    doc["item"] = doc["item"][:1] + items + doc["item"][1:]
    try:
        read(doc)
    except Refused as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def test_a_number_that_is_not_finite_is_refused() -> None:
    doc = lesion("humerus", a("cortical_pct", {"valueDecimal": float("nan")}))
    assert "« Part de la corticale atteinte (%) » (cortical_pct) : nombre attendu" in refused(doc)


# ---- independent review (RC, HAZ-23-R01..R05): what the first version let through ----------------------------------
def rt_course(*more: dict[str, Any], on: str = "2026-11-01") -> dict[str, Any]:
    return response(
        "treatment-event",
        [
            a("kind", coding("radiotherapy")),
            a("rt.site", {"valueString": "rachis"}),
            a("rt.total_dose_gy", {"valueDecimal": 30}),
            a("rt.fractions", {"valueInteger": 10}),
            a("rt.on", {"valueDate": on}),
            *more,
        ],
    )


def opinion(on: str) -> dict[str, Any]:
    return response("surgical-opinion", [a("operable", {"valueBoolean": True}), a("on", {"valueDate": on})])


def test_review_an_amended_response_says_which_entry_it_corrects() -> None:
    """HAZ-23-R01: a QuestionnaireResponse `amended` (an EHR's correction) with no record_status was published as a
    second, `final` fact beside the one it corrects (e.g. a radiotherapy course counted twice)."""
    amended = {**rt_course(), "status": "amended"}
    assert any("(record_status)" in p and "amended" in p for p in refused(amended))
    target = uuid.uuid4()
    amended["item"] += [a("record_status", coding("amended")), a("corrects", {"valueString": str(target)})]
    [event] = read(amended)
    assert (event.record_status, event.corrects) == ("amended", target)
    voided = {**rt_course(), "status": "entered-in-error"}
    assert any("status" in p and "(record_status)" in p for p in refused(voided))


def test_review_an_undated_response_is_refused_never_dated_by_its_receipt() -> None:
    """HAZ-23-R02: without `authored`, an assessment, an opinion or a treatment event took the receipt time as its
    `occurred_at` (a guessed clinical time)."""
    doc = response("assessment", [a("ecog", {"valueInteger": 1})])
    [msg] = read(doc)
    assert msg.occurred_at == datetime.fromisoformat(doc["authored"])
    del doc["authored"]
    assert any(p.startswith("authored : obligatoire") for p in refused(doc))


@pytest.mark.parametrize(
    "doc",
    [
        {**response("assessment", [a("ecog", {"valueInteger": 1})]), "authored": "1850-06-01T10:00:00+00:00"},
        lesion("humerus", a("examined_at", {"valueDateTime": "0001-01-01T00:30:00+01:00"})),
        rt_course(on="0001-01-01"),
        opinion("1800-01-01"),
        response(
            "local-treatment-request",
            [
                a("request_id", {"valueString": "r1"}),
                a("lesion_id", {"valueString": "T8"}),
                a("modality", coding("sbrt")),
                a("planned_on", {"valueDate": "0999-01-01"}),
            ],
        ),
    ],
)
def test_review_a_date_before_1900_is_an_entry_error(doc: dict[str, Any]) -> None:
    """HAZ-23-R03: a year-1 time with an offset was published and cannot be moved to UTC downstream (the crash
    services/lab_normalisation/common.EARLIEST_YEAR guards against on the results path)."""
    if len(doc["item"]) > 4 and doc["item"][1]["linkId"] == "examined_at":
        doc["item"].pop(1)  # the lesion's own examination time replaced by the year-1 one
    assert any("avant 1900" in p for p in refused(doc)), doc


def test_review_a_past_fact_dated_in_the_future_is_refused_a_plan_is_not() -> None:
    """HAZ-23-R03: a surgical opinion, a treatment received or an earlier course dated after today was taken."""
    tomorrow_utc14 = (NOW + timedelta(hours=14)).date()  # already today somewhere (UTC+14): taken
    later = (NOW + timedelta(days=2)).date().isoformat()
    assert read(opinion(tomorrow_utc14.isoformat()))
    for doc in (opinion(later), rt_course(on=later)):
        assert any("dans le futur" in p for p in refused(doc)), doc
    # a course under way: started, its last fraction planned (RT-DRUG's "after" windows count from it)
    [under_way] = read(rt_course(a("rt.end_on", {"valueDate": later}), on=NOW.date().isoformat()))
    assert under_way.treatment.end_on is not None and under_way.treatment.end_on.isoformat() == later
    earlier = {
        "linkId": "previous",
        "item": [a("previous.on", {"valueDate": later}), a("previous.fractions", {"valueInteger": 10})],
    }
    request = response(
        "local-treatment-request",
        [
            a("request_id", {"valueString": "r1"}),
            a("lesion_id", {"valueString": "T8"}),
            a("modality", coding("reirradiation")),
            a("planned_on", {"valueDate": later}),
        ],
    )
    [planned] = read(request)  # a planned date is in the future by nature
    assert planned.planned_on is not None and planned.planned_on.isoformat() == later
    request["item"].append(earlier)
    assert any("(previous.on) : dans le futur" in p for p in refused(request))


def test_review_a_course_cannot_end_before_it_starts() -> None:
    """HAZ-23-R03: RT-REIRR counts the interval from the last fraction; an end before the start was taken."""
    doc = rt_course(a("rt.end_on", {"valueDate": "2026-10-01"}), on="2026-11-01")
    assert any("(rt.end_on) : avant « Première séance »" in p for p in refused(doc))
    [ok] = read(rt_course(a("rt.end_on", {"valueDate": "2026-11-14"}), on="2026-11-01"))
    assert ok.treatment.end_on is not None


def test_review_an_irradiated_level_must_name_a_vertebra() -> None:
    """HAZ-23-R04: a course's level the radiotherapy planner cannot read (shared/clinical/irradiation.spinal_levels)
    matches no lesion, so RT-REIRR never sees the earlier course."""
    assert any("(rt.vertebral_level)" in p for p in refused(rt_course(a("rt.vertebral_level", {"valueString": "T99"}))))
    [course] = read(rt_course(a("rt.vertebral_level", {"valueString": "T7-T9"})))
    assert course.treatment.vertebral_level == "T7-T9"


def test_review_one_pain_per_lesion_in_an_assessment() -> None:
    """HAZ-23-R04: two pains for one lesion in one assessment: which one Mirels or SINS takes was left to chance."""
    doc = response(
        "assessment",
        [
            {"linkId": "lesion_pain", "item": [a("lesion_pain.lesion_id", {"valueString": "A"})]},
            {
                "linkId": "lesion_pain",
                "item": [a("lesion_pain.lesion_id", {"valueString": "A"}), a("lesion_pain.nrs", {"valueInteger": 9})],
            },
        ],
    )
    assert any("(lesion_pain.lesion_id)" in p and "« A »" in p for p in refused(doc))


def test_review_an_answer_outside_the_options_or_the_structure_is_refused() -> None:
    """HAZ-23-R04: a coding of another code system with a code that looks like an option, and answers nested under
    a question (FHIR allows them; these forms have none) were taken or silently dropped."""
    snomed = lesion("humerus", a("lesion_type", {"valueCoding": {"system": "http://snomed.info/sct", "code": "lytic"}}))
    assert any("(lesion_type)" in p and "snomed" in p for p in refused(snomed))
    ours = questionnaire(FORMS["lesion-finding"])
    [lesion_type] = [i for i in ours["item"] if i["linkId"] == "lesion_type"]
    assert read(lesion("humerus", a("lesion_type", {"valueCoding": lesion_type["answerOption"][0]["valueCoding"]})))
    nested_answer = lesion(
        "humerus", a("lesion_type", {**coding("lytic"), "item": [a("size_cm", {"valueDecimal": 2})]})
    )
    nested_item = lesion("humerus", {**a("lesion_type", coding("lytic")), "item": [a("size_cm", {"valueDecimal": 2})]})
    for doc in (nested_answer, nested_item):
        assert any("(lesion_type)" in p and "imbriqu" in p for p in refused(doc)), doc
    control = lesion("humerus")
    control["item"][0] = a("lesion_id", {"valueString": "femur\u0000R"})
    assert any("(lesion_id)" in p and "caractère" in p for p in refused(control))


def test_review_repeated_groups_are_bounded_and_say_so() -> None:
    """HAZ-23-R05: earlier courses were unbounded (the contract has no cap): one response of 1 MB could carry
    thousands, each weighed by RT-REIRR. The Questionnaire says its bound (questionnaire-maxOccurs)."""
    q = questionnaire(FORMS["local-treatment-request"])
    [previous] = [i for i in q["item"] if i["linkId"] == "previous"]
    [cap] = [e["valueInteger"] for e in previous["extension"] if e["url"].endswith("questionnaire-maxOccurs")]
    course = {
        "linkId": "previous",
        "item": [a("previous.on", {"valueDate": "2024-01-10"}), a("previous.fractions", {"valueInteger": 10})],
    }
    base = [
        a("request_id", {"valueString": "r1"}),
        a("lesion_id", {"valueString": "T8"}),
        a("modality", coding("sbrt")),
    ]
    [ok] = read(response("local-treatment-request", [*base, *[course] * cap]))
    assert len(ok.previous_courses) == cap
    too_many = response("local-treatment-request", [*base, *[course] * (cap + 1)])
    assert any("(previous)" in p and f"au plus {cap}" in p for p in refused(too_many))


def test_review_units_are_ucum_codes() -> None:
    """HAZ-23-R05: the life expectancy's unit was "mois" in the UCUM system (UCUM's month is "mo"); the doses had no
    unit, so an EHR's form engine could not show that they are in Gy (not cGy)."""
    units: dict[str, str] = {}
    for form in FORMS.values():
        for item in questionnaire(form)["item"]:
            for i in [item, *item.get("item", [])]:
                for e in i.get("extension", []):
                    if e["url"].endswith("questionnaire-unit"):
                        assert e["valueCoding"]["system"] == "http://unitsofmeasure.org"
                        units[i["linkId"]] = e["valueCoding"]["code"]
    assert units["life_expectancy_months"] == "mo"
    doses = {link for form in FORMS.values() for link in form.questions() if link.endswith(("_gy", "dmax_gy"))}
    assert doses and all(units.get(link) == "Gy" for link in doses), {d: units.get(d) for d in doses}


def test_review_a_response_to_another_version_of_the_form_is_refused() -> None:
    """HAZ-23-R04: `questionnaire` "<url>|<version>" was read whatever the version (its items may mean otherwise)."""
    served = questionnaire(FORMS["lesion-finding"])
    doc = lesion("humerus")
    assert read({**doc, "questionnaire": f"{served['url']}|{served['version']}"})
    other = f"{served['url']}|{served['version']}0"
    assert any("version" in p and "inconnue" in p for p in refused({**doc, "questionnaire": other}))


def test_review_a_huge_response_is_refused_in_a_short_answer() -> None:
    """HAZ-23-R05: every unknown item of a response near the 1 MB body limit gave a line of the 422 answer."""
    doc = lesion("humerus", *[a(f"x{i}", {"valueString": "y"}) for i in range(20_000)])
    assert len(json.dumps(doc)) > 500_000
    problems = refused(doc)
    assert len(problems) == PROBLEMS_SHOWN + 1 and problems[-1].startswith("… et ")
    assert int(problems[-1].split()[2]) == 20_000 - PROBLEMS_SHOWN


def test_review_enable_when_names_the_coding_an_ehr_form_engine_compares() -> None:
    """HAZ-23-R04: enableWhen's answerCoding had no system, while the answers carry one: a form engine comparing
    system and code never enables the spinal level (required for a spine), so an EHR could not send a vertebra.
    The name is a machine name (R4 que-0: an upper-case letter, then letters, digits or underscores)."""
    for form in FORMS.values():
        q = questionnaire(form)
        assert re.fullmatch(r"[A-Z][A-Za-z0-9_]{0,254}", q["name"]), q["name"]
        items = {i["linkId"]: i for top in q["item"] for i in [top, *top.get("item", [])]}
        for item in items.values():
            for cond in item.get("enableWhen", []):
                if "answerCoding" in cond:
                    options = [o["valueCoding"] for o in items[cond["question"]]["answerOption"]]
                    assert cond["answerCoding"] in options, (form.id, item["linkId"], cond)


def test_review_a_key_given_twice_is_refused_never_one_of_them_chosen() -> None:
    """HAZ-23-R04: two `subject` keys (or two of any key) in one JSON object: the last one silently won, while a proxy,
    an EHR's log or another reader may take the first (another patient)."""
    doc = response("assessment", [a("ecog", {"valueInteger": 1})])
    raw = json.dumps(doc).encode()
    assert read_response(raw, "dr-house", NOW, SKEW).patient_id == PID
    twice = raw.replace(b'"subject": {', b'"subject": {"reference": "Patient/p-other"}, "subject": {', 1)
    assert twice.count(b'"subject"') == 2
    with pytest.raises(Refused) as exc:
        read_response(twice, "dr-house", NOW, SKEW)
    assert any("« subject »" in p and "deux fois" in p for p in exc.value.problems)


def test_review_a_subject_naming_two_patients_is_refused() -> None:
    """HAZ-23-R04: `subject` with a reference to one patient and an identifier of another was read as the first."""
    same = response("assessment", [a("ecog", {"valueInteger": 1})], subject={"reference": f"Patient/{PID}"})
    same["subject"]["identifier"] = {"value": PID}
    assert read_response(same, "dr-house", NOW, SKEW).patient_id == PID
    other = {**same, "subject": {"reference": f"Patient/{PID}", "identifier": {"value": "p-other"}}}
    assert any(p.startswith("subject :") and "deux patients" in p for p in refused(other))


def test_review_a_time_that_cannot_be_moved_to_utc_is_refused() -> None:
    """HAZ-23-R03: year 9999 at UTC-14 is past the last UTC instant: refused as such (not published, not a crash)."""
    doc = {**response("assessment", [a("ecog", {"valueInteger": 1})]), "authored": "9999-12-31T23:59:59-14:00"}
    assert any(p.startswith("authored : hors des dates admises") for p in refused(doc))
